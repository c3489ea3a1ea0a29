"""The command line: exit status 0/1/2, one clear line when it cannot grade, JSON alone on stdout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from grader import cli, registry
from grader.results import CheckResult, ExerciseReport, Status
from grader.options import REPO_ROOT


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, env={**os.environ, **(env or {})}, timeout=60)


NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def test_list_shows_every_exercise():
    proc = run_cli("list")
    assert proc.returncode == 0
    for exercise_id in ("01-first-image", "02-storage", "03-permissions", "04-networking"):
        assert exercise_id in proc.stdout


def test_no_engine_is_exit_2_with_one_line_that_is_not_the_learners_fault():
    """Does an unreachable engine give exit 2, nothing on stdout, and one line saying whose fault it is not?"""
    proc = run_cli("check", "01-first-image", "--json", env=NO_ENGINE)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "no Docker engine answers" in lines[0] and "not a problem with your work" in lines[0]


def test_grade_all_without_engine_is_exit_2():
    proc = run_cli("grade-all", "--only", "01-first-image", env=NO_ENGINE)
    assert proc.returncode == 2
    assert "no Docker engine answers" in proc.stderr


def test_unknown_exercise_is_exit_2():
    proc = run_cli("check", "99-nothing")
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("cannot grade: no exercise '99-nothing' (known: 01-first-image, 02-storage")


def test_missing_workspace_is_exit_2(tmp_path):
    proc = run_cli("check", "01-first-image", "--workspace", str(tmp_path / "nowhere"))
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def fake_report(full: bool) -> ExerciseReport:
    status = Status.PASSED if full else Status.FAILED
    return ExerciseReport("01-first-image", "t", "ws", (
        CheckResult("builds", Status.PASSED, 2.0, 2.0, "ok"),
        CheckResult("pinned_base", status, 1.0 if full else 0.0, 1.0, "m", "" if full else "h"),
    ))


@pytest.mark.parametrize("full, code", [(True, 0), (False, 1)])
def test_exit_status_follows_the_score(monkeypatch, capsys, full, code):
    """Is the exit status 0 on full marks and 1 when a check lost points, with exactly one JSON object?"""
    monkeypatch.setattr(cli, "grade", lambda *a, **k: fake_report(full))
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert cli.main(["check", "01-first-image", "--json"]) == code
    finally:
        signal.signal(signal.SIGTERM, previous)
    out = capsys.readouterr().out
    assert json.loads(out)["score"] == (3.0 if full else 2.0)
    assert out.count("\n") == 1


def test_grade_all_prints_tables_then_a_summary(monkeypatch, capsys):
    monkeypatch.setattr(cli, "grade", lambda exercise_id, **k: fake_report(exercise_id != "02-storage"))
    monkeypatch.setattr(cli, "_sync_default", lambda exercise_id: None)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert cli.main(["grade-all"]) == 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("grade: ") and "exercises with full marks" in out[-1]
    assert sum(1 for line in out if line.startswith("01-first-image \u2014")) == len(registry.all_exercises())


def test_a_taken_fixed_name_is_exit_2_and_says_which(monkeypatch, capsys):
    from grader.errors import ResourceInTheWay

    def taken(*args, **kwargs):
        raise ResourceInTheWay("a volume named genai-data already exists and may hold your data")
    monkeypatch.setattr(cli, "grade", taken)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert cli.main(["check", "02-storage", "--json"]) == 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == "cannot grade: a volume named genai-data already exists and may hold your data"
