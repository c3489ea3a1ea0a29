"""Live progress of a grading: the events a grading emits, and how the views render them."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from dockerkit.process import run_bounded
from grader import progress
from grader.grading import run_checks
from grader.options import REPO_ROOT
from grader.progress import CHECK, DONE, STEP, Event
from grader.progress_view import TerminalProgress, plain_line
from grader.hints import Tiers
from grader.registry import CheckSpec, fail, passed


def spec(check_id: str, ok: bool, requires: tuple[str, ...] = ()) -> CheckSpec:
    def run(ctx):
        return passed("fine") if ok else fail("broken")
    tiers = Tiers(f"why {check_id} (see x)", (f"{check_id}: {{found}}",), f"fix {check_id}")
    return CheckSpec(check_id, 1.0, f"{check_id} works", tiers, requires, run)


def test_each_check_is_announced_then_judged():
    """Does a grading say which check it starts, then its verdict, in order, skipped ones too?"""
    seen: list[Event] = []
    with progress.listening(seen.append):
        run_checks([spec("builds", False), spec("runs", True, ("builds",)), spec("static", True)], ctx=None)
    assert [(e.kind, e.check) for e in seen] == [
        (CHECK, "builds"), (DONE, "builds"), (DONE, "runs"), (CHECK, "static"), (DONE, "static")]
    assert seen[1].text == "builds: failed, 0/1" and seen[1].status == "failed"
    assert "skipped" in seen[2].text


def test_no_listener_costs_nothing():
    """Without a listener, is a grading's progress dropped (and a build watched by nobody)?"""
    assert progress.build_output_watcher() is None
    progress.emit(CHECK, "nobody listens")  # must not raise


def test_a_broken_view_never_breaks_the_grading():
    def broken(event: Event) -> None:
        raise RuntimeError("view crashed")
    with progress.listening(broken):
        results = run_checks([spec("builds", True)], ctx=None)
    assert results[0].status.value == "passed"


def test_build_steps_are_read_across_chunks():
    """Is each BuildKit step reported once, when its header line is complete, internal steps left out?"""
    seen: list[Event] = []
    with progress.listening(seen.append):
        watch = progress.build_output_watcher()
    assert watch is not None
    log = (b"#1 [internal] load build definition from Dockerfile\n#1 DONE 0.0s\n"
           b"#5 [2/4] RUN pip install --no-cache-dir -r requirements.txt\n#5 0.3 Collecting x\n"
           b"#5 [2/4] RUN pip install --no-cache-dir -r requirements.txt\n#6 [3/4] COPY app/ app/\n")
    for i in range(0, len(log), 7):  # chunk boundaries fall inside lines
        watch(log[i:i + 7])
    assert [e.text for e in seen] == ["[2/4] RUN pip install --no-cache-dir -r requirements.txt",
                                      "[3/4] COPY app/ app/"]
    assert all(e.kind == STEP for e in seen)


def test_output_is_seen_as_it_arrives(tmp_path):
    """Does a bounded process hand its output over while it runs? (The child waits for a file that the
    watcher creates on seeing its first line: read only at the end, it would time out.)"""
    mark = tmp_path / "seen"

    def watch(chunk: bytes) -> None:
        if b"first" in chunk:
            mark.touch()
    script = f"echo first; until [ -e {mark} ]; do sleep 0.05; done; echo second"
    done = run_bounded(["bash", "-c", script], timeout=20, on_output=watch)
    assert not done.timed_out and done.text == "first\nsecond\n"


def test_plain_view_outside_a_terminal():
    """Where stderr is no terminal (CI, a pipe), are the events plain lines without escape codes?"""
    out = io.StringIO()
    with TerminalProgress(out) as view:
        assert not view.live
        view(Event(CHECK, "builds: the Dockerfile builds", "builds"))
        view(Event(STEP, "[2/4] RUN pip install [extra]"))
        view(Event(DONE, "builds: passed, 2/2", "builds", "passed"))
    text = out.getvalue()
    assert text.splitlines() == ["… builds: the Dockerfile builds", "  build [2/4] RUN pip install [extra]",
                                 "✓ builds: passed, 2/2"]
    assert "\x1b" not in text


def test_no_color_is_honoured(monkeypatch):
    """In a terminal with NO_COLOR set, are verdicts printed without colour?"""
    monkeypatch.setenv("NO_COLOR", "1")
    out = io.StringIO()
    with TerminalProgress(out, force_terminal=True) as view:
        view(Event(DONE, "builds: failed, 0/2", "builds", "failed"))
    assert view.console.no_color
    assert "✗ builds: failed, 0/2" in out.getvalue()
    assert "\x1b[31m" not in out.getvalue() and "\x1b[1;31m" not in out.getvalue()


def test_plain_line_marks_each_verdict():
    assert plain_line(Event(DONE, "runs: skipped (needs builds)", "runs", "skipped")).startswith("–")
    assert plain_line(Event(DONE, "runs: failed, 0/2", "runs", "failed")).startswith("✗")


@pytest.mark.docker
def test_the_cli_shows_build_steps_and_verdicts_while_grading(tmp_path):
    """Does `python -m grader check --json` show the build's steps and each verdict on stderr as it goes,
    and still print exactly one JSON object on stdout?"""
    import json

    from grader.workspace import materialize

    workspace = materialize("01-first-image", tmp_path / "ws", with_solution=True)
    proc = subprocess.run([sys.executable, "-m", "grader", "check", "01-first-image", "--workspace",
                           str(workspace), "--json"], capture_output=True, text=True, timeout=900,
                          cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["score"] == report["max_score"]
    lines = proc.stderr.splitlines()
    assert any(line.startswith("  build [") and "FROM" in line for line in lines), proc.stderr
    assert "✓ builds: passed, 2/2" in lines
    assert lines.index("… builds: the Dockerfile builds") < lines.index("✓ builds: passed, 2/2")


@pytest.mark.docker
def test_check_my_work_shows_what_it_is_doing(tmp_path, monkeypatch, capsys):
    """Does *Check my work* (as printed text) show each check as it starts and its verdict, then the table?"""
    from grader import notebook
    from grader.workspace import materialize

    monkeypatch.setenv("COURSE_WIDGETS", "plain")
    workspace = materialize("01-first-image", tmp_path / "ws", with_solution=True)
    notebook.check_my_work("01-first-image", workspace)
    out = capsys.readouterr().out
    assert out.index("… builds: the Dockerfile builds") < out.index("✓ builds: passed, 2/2")
    assert out.index("✓ deps_before_code: passed") < out.index("10/10")
