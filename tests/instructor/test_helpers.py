"""Helpers of the instructor tooling that need no engine: copying into a box, bounded
commands, the in-box runner, the box image's context, the workflow's file handling."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course.instructor import boximage, jobs, settings, workflow
from course.instructor.box import _tar_tree, safe_name
from dockerkit.process import run_bounded
from course.instructor.errors import BoxImageError

ROOT = Path(__file__).resolve().parents[2]


def test_names_from_outside_become_docker_safe():
    """Is a student id with odd characters turned into a valid, bounded name fragment?"""
    assert safe_name("Alice O'Brien/../x") == "alice-o-brien-..-x"
    assert safe_name("///") == "x"
    assert len(safe_name("a" * 200)) == 40


def test_links_and_special_files_never_enter_a_box(tmp_path):
    """Are links (which could point at the instructor's files) and fifos left out of the copy?"""
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\n")
    (tmp_path / "run.sh").write_text("echo hi\n")
    (tmp_path / "run.sh").chmod(0o755)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("x = 1\n")
    (tmp_path / "secret").symlink_to("/etc/passwd")
    (tmp_path / "linked_dir").symlink_to(tmp_path / "app")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "nb.ipynb").write_text("{}")
    skipped: list[str] = []
    data = _tar_tree(tmp_path, 1000, 0o755, skipped, exclude=lambda rel: rel.endswith(".ipynb"))
    members = {m.name: m for m in tarfile.open(fileobj=io.BytesIO(data))}
    assert set(members) == {"Dockerfile", "run.sh", "app", "app/main.py"}
    assert sorted(skipped) == ["linked_dir", "pipe", "secret"]
    assert all(m.uid == 1000 and m.gid == 1000 for m in members.values())
    assert members["run.sh"].mode == 0o755 and members["Dockerfile"].mode == 0o644


def test_a_bounded_command_is_stopped_and_its_output_capped():
    """Does a command past its time limit get killed, and a flood of output get cut?"""
    code = run_bounded(["sleep", "30"], timeout=0.5, split=True).returncode
    assert code is None
    done = run_bounded([sys.executable, "-c", "print('x' * 100000)"], timeout=30, split=True, max_bytes=1000)
    code, out, overflow = done.returncode, done.output, done.overflowed
    assert code == 0 and len(out) == 1000 and overflow


def test_nothing_but_the_runner_writes_the_result():
    """Can a process started by the in-box runner write into its result channel? (it must not)"""
    script = ("from course.instructor import inbox; import subprocess, sys\n"
              "p = inbox._seal_stdout()\n"
              "subprocess.run(['sh', '-c', 'echo FORGED-BY-CHILD; echo FORGED >/proc/$PPID/fd/1 || true'])\n"
              "print('FORGED-BY-PRINT'); sys.stdout.flush()\n"
              "inbox._emit(p, {'ok': True})\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert json.loads(proc.stdout) == {"ok": True}
    assert "FORGED-BY-CHILD" in proc.stderr and "FORGED-BY-PRINT" in proc.stderr


def test_the_in_box_runner_executes_a_notebook(tmp_path):
    """Does the runner execute each cell, record errors and timeouts, and return the notebook?"""
    nb = new_notebook(cells=[new_code_cell("import os; print(os.getcwd())"),
                             new_code_cell("1 / 0"),
                             new_code_cell("import time; time.sleep(30)"),
                             new_code_cell("21 * 2")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    proc = subprocess.run([sys.executable, "-m", "course.instructor.inbox", "execute", "--workdir", str(tmp_path),
                           "--cell-timeout", "3"], input=nbformat.writes(nb), capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    document = json.loads(proc.stdout)
    cells = nbformat.reads(document["notebook"], as_version=4).cells
    assert cells[0].outputs[0]["text"].strip() == str(tmp_path)
    assert cells[1].outputs[0]["ename"] == "ZeroDivisionError"
    assert any(o.get("output_type") == "error" for o in cells[2].outputs)  # the timeout is an error
    assert cells[3].outputs[0]["data"]["text/plain"] == "42"


def test_box_requirements_are_pinned_to_this_venv():
    """Does the box get the grader's and nbclient's packages at the venv's versions, and never torch?"""
    text = boximage.requirements_text()
    pins = dict(line.split("==") for line in text.splitlines() if "==" in line)
    from importlib import metadata
    assert pins["docker"] == metadata.version("docker") and pins["nbclient"] == metadata.version("nbclient")
    assert "torch" not in pins and "ipykernel" in pins
    with pytest.raises(BoxImageError, match="not installed"):
        boximage.requirements_text(("no-such-package-xyz",))


def fake_plugins(tmp_path: Path) -> Path:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    for name in boximage.PLUGINS:
        (plugins / name).write_text(f"#!/bin/sh\necho {name}\n")
    return plugins


def test_box_context_is_staged_complete(tmp_path):
    """Does the staged context hold the Dockerfile, scripts, plugins, CA bundle and requirements?"""
    context = boximage.stage(tmp_path / "ctx", fake_plugins(tmp_path))
    names = {p.name for p in context.iterdir()}
    assert {"Dockerfile", "box-init.sh", "box-engine.sh", "box-exec.sh", "docker-compose", "docker-buildx",
            "host-ca-bundle.crt", "requirements.txt"} <= names
    dockerfile = (context / "Dockerfile").read_text()
    assert "# syntax=" not in dockerfile and "genai-course/debian-minbase:bookworm" in dockerfile
    assert "torch" not in (context / "requirements.txt").read_text()


def test_box_image_tag_follows_its_content(tmp_path, monkeypatch):
    """Is the tag stable for the same content, and new when a file of the box changes?"""
    plugins = fake_plugins(tmp_path)
    first = boximage.image_tag(plugins)
    assert first == boximage.image_tag(plugins) and first.startswith("genai-course/grading-box:")
    (plugins / "docker-compose").write_text("changed")
    assert boximage.image_tag(plugins) != first
    with pytest.raises(BoxImageError, match="make engine"):
        boximage.image_tag(tmp_path / "nowhere")


def test_links_in_the_exchange_are_never_collected(tmp_path, monkeypatch):
    """Are links and fifos removed from inbound submissions of the exercise (and only those)?"""
    monkeypatch.setenv("GENAI_EXCHANGE", str(tmp_path))
    inbound = tmp_path / settings.COURSE_ID / "inbound"
    mine = inbound / "mallory+01-first-image+2026-01-01 00:00:00 UTC+abc"
    other = inbound / "mallory+02-storage+2026-01-01 00:00:00 UTC+abc"
    for folder in (mine, other):
        (folder / "app").mkdir(parents=True)
        (folder / "Dockerfile").write_text("FROM x\n")
        (folder / "id_rsa").symlink_to(Path.home() / ".ssh" / "id_rsa")
    (mine / "app" / "etc").symlink_to("/etc")
    os.mkfifo(mine / "app" / "pipe")
    removed = workflow.remove_links("01-first-image").removed
    assert len(removed) == 3
    assert not (mine / "id_rsa").is_symlink() and (mine / "Dockerfile").is_file()
    assert (other / "id_rsa").is_symlink()  # another exercise's submissions are its own collect's business


def test_assignments_are_the_exercises_with_a_notebook(tmp_path, monkeypatch):
    """Are only exercises whose notebook exists assignments, in course order, and a typo refused?"""
    monkeypatch.setenv("GENAI_COURSE_ROOT", str(tmp_path))
    for ex in ("02-storage", "01-first-image"):
        (tmp_path / "exercises" / ex).mkdir(parents=True)
        (tmp_path / "exercises" / ex / f"{ex}.ipynb").write_text("{}")
    assert workflow.assignments() == ["01-first-image", "02-storage"]
    assert workflow.assignments("02-storage") == ["02-storage"]
    with pytest.raises(workflow.InstructorError, match="no exercise"):
        workflow.assignments("99-nope")
    with pytest.raises(workflow.InstructorError, match="no notebook"):
        workflow.assignments("03-permissions")


def test_a_self_paced_exercise_is_no_assignment(tmp_path, monkeypatch):
    """Is 09 (no grading box can host its cluster) left out of release and autograde, and refused by
    name with the reason and the way to grade it?"""
    monkeypatch.setenv("GENAI_COURSE_ROOT", str(tmp_path))
    for ex in ("08-capstone", "09-scale-out"):
        (tmp_path / "exercises" / ex).mkdir(parents=True)
        (tmp_path / "exercises" / ex / f"{ex}.ipynb").write_text("{}")
    assert workflow.assignments() == ["08-capstone"]
    with pytest.raises(workflow.InstructorError, match=r"self-paced only \(make grade EX=09-scale-out\): a swarm"):
        workflow.assignments("09-scale-out")


def test_cross_check_summary_reads_the_verdicts(tmp_path, monkeypatch):
    """Does the summary add up what each notebook claimed and what counted?"""
    monkeypatch.setenv("GENAI_COURSE_ROOT", str(tmp_path))
    (tmp_path / "exercises" / "01-first-image").mkdir(parents=True)
    (tmp_path / "exercises" / "01-first-image" / "01-first-image.ipynb").write_text("{}")
    folder = tmp_path / "autograded" / "carol" / "01-first-image"
    folder.mkdir(parents=True)
    (folder / "trusted-grade.json").write_text(json.dumps({
        "student": "carol", "exercise": "01-first-image", "report": {"score": 1.0},
        "cells": [{"grade_id": "check_builds", "notebook_score": 2.0, "score": 0.0, "action": "lowered"},
                  {"grade_id": "check_exec_form", "notebook_score": 1.0, "score": 1.0, "action": "kept"}]}))
    [row] = workflow.cross_check_summary()
    assert (row.student, row.notebook, row.trusted, row.counted) == ("carol", 3.0, 1.0, 1.0)
    assert row.flags == ("check_builds: lowered",)


def test_steps_skip_exercises_with_nothing_to_do(tmp_path, monkeypatch):
    """Do autograde and feedback skip an exercise nobody submitted, instead of failing the rest?"""
    monkeypatch.setenv("GENAI_COURSE_ROOT", str(tmp_path))
    for ex in ("01-first-image", "02-storage"):
        (tmp_path / "exercises" / ex).mkdir(parents=True)
        (tmp_path / "exercises" / ex / f"{ex}.ipynb").write_text("{}")
    (tmp_path / "submitted" / "alice" / "02-storage").mkdir(parents=True)
    ran: list[tuple[str, ...]] = []
    monkeypatch.setattr(boximage, "ensure_image", lambda announce=None: "box:test")

    def nbgrader(*args, exercise="", extra_env=None, **kw):
        phase = (extra_env or {}).get(jobs.PHASE_ENV, "")
        ran.append((*args, phase) if phase else args)
        return workflow.StepResult(exercise, args, 0, "")
    monkeypatch.setattr(workflow, "nbgrader", nbgrader)
    said: list[str] = []
    workflow.autograde(echo=said.append, progress=None)
    workflow.feedback(echo=said.append)
    # autograde's two nbgrader passes (plan the grading jobs, then grade from their results), 02 only
    assert ran == [("autograde", "02-storage", "plan"), ("autograde", "02-storage", "grade")]
    assert "autograde: nothing collected for 01-first-image; skipped" in said
    assert len([line for line in said if line.startswith("feedback: nothing autograded")]) == 2
