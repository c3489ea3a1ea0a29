"""Fixtures for grading real workspaces on the engine: assemble a workspace (starter, solution,
known-bad fixture on top), grade it, and prove that the grading left nothing behind."""

from __future__ import annotations

import itertools
import os
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Callable

import pytest

from grader import registry
from grader.engine import Engine
from grader.grading import grade
from grader.lock import grading_lock
from grader.options import MANAGED_LABEL, SESSION_LABEL, GradingOptions
from grader.results import ExerciseReport, Status
from grader.workspace import materialize, overlay
from tests.helpers import Snapshot, new_since, snapshot

FIXTURES = Path(__file__).with_name("fixtures")
# Local images that stand for a non-slim base and an untagged one (nothing can be pulled here).
FIXTURE_BASES = {"genai-course/fixture-python:3.11": "python:3.11-slim",
                 "genai-course/fixture-python-slim": "python:3.11-slim"}


@pytest.fixture(scope="session")
def base_options() -> GradingOptions:
    """Generous limits for real gradings; tests that prove a limit set their own, small, one."""
    return GradingOptions(build_timeout=600, start_timeout=60, script_timeout=60, http_timeout=10,
                          lock_timeout=600)


@pytest.fixture(scope="session")
def engine(docker_client) -> Engine:
    return Engine(docker_client)


@pytest.fixture(scope="session")
def fixture_bases(docker_client):
    """Labelled local images for fixtures whose FROM must build but be judged unpinned or not slim."""
    for tag, base in FIXTURE_BASES.items():
        subprocess.run(["docker", "build", "-q", "-t", tag, "--label", f"{MANAGED_LABEL}=true",
                        "--label", f"{SESSION_LABEL}=tests", "-"],
                       input=f"FROM {base}\n", text=True, check=True, capture_output=True, timeout=120,
                       env={**os.environ, "DOCKER_BUILDKIT": "1"})
    yield list(FIXTURE_BASES)
    for tag in FIXTURE_BASES:
        try:
            docker_client.images.remove(tag)
        except Exception:  # another test process may still use it; `make clean` removes it by label
            pass


def leftovers(client, session_id: str, exercise_id: str, before: Snapshot | None = None) -> list[str]:
    """Everything the grading created that still exists: by session label, the fixed names, and,
    given a snapshot from before the grading, anything new that carries no other owner's label."""
    label = {"label": f"{SESSION_LABEL}={session_id}"}
    found = new_since(client, before, (SESSION_LABEL, session_id)) if before is not None else []
    found += [f"container {c.name}" for c in client.containers.list(all=True, filters=label)]
    found += [f"network {n.name}" for n in client.networks.list(filters=label)]
    found += [f"volume {v.name}" for v in client.volumes.list(filters=label)]
    found += [f"image {i.tags or i.short_id}" for i in client.images.list(filters=label)]
    names = registry.get(exercise_id).fixed_names
    if names:
        with grading_lock(600):  # no other grading is running: a fixed name now is a leftover
            found += [f"container {c.name}" for c in client.containers.list(all=True)
                      if c.name in names.containers]
            found += [f"volume {v.name}" for v in client.volumes.list() if v.name in names.volumes]
            found += [f"network {n.name}" for n in client.networks.list() if n.name in names.networks]
    return found


@pytest.fixture
def grade_workspace(tmp_path, engine, docker_client, base_options, request) -> Callable[..., ExerciseReport]:
    """grade_workspace(exercise, solution=True, fixture=None, edit=None, **limits) -> report."""
    counter = itertools.count()

    def run(exercise_id: str, *, solution: bool = True, fixture: str | None = None,
            edit: Callable[[Path], None] | None = None, **limits) -> ExerciseReport:
        exercise = registry.get(exercise_id)
        options = replace(base_options, **limits)
        if "service_image" in exercise.needs and options.service_image is None:
            options = replace(options, service_image=request.getfixturevalue("service_image"))
        workspace = materialize(exercise_id, tmp_path / f"ws{next(counter)}", with_solution=solution)
        if fixture is not None:
            source = FIXTURES / exercise_id / fixture
            assert source.is_dir(), f"no fixture {source}"
            overlay(source, workspace)
        if edit is not None:
            edit(workspace)
        before = snapshot(docker_client)
        report = grade(exercise_id, workspace, options=options, engine=engine)
        left = leftovers(docker_client, report.session_id, exercise_id, before)
        assert not left, f"the grading left {left}"
        return report
    return run


def table(report: ExerciseReport) -> str:
    from grader.reporters import render_table
    return render_table(report)


def dependents(exercise_id: str, check_id: str) -> set[str]:
    """The checks that need `check_id`, directly or through another check."""
    needs = {c.id: set(c.requires) for c in registry.get(exercise_id).checks}
    found: set[str] = set()
    grew = True
    while grew:
        grew = False
        for cid, reqs in needs.items():
            if cid not in found and (check_id in reqs or reqs & found):
                found.add(cid)
                grew = True
    return found


def assert_fails_exactly(report: ExerciseReport, check_id: str, fragment: str) -> None:
    """`check_id` failed with `fragment` in its message; the checks that need it are skipped; all others pass."""
    result = report.check(check_id)
    assert result.status is Status.FAILED, table(report)
    assert fragment in result.message, f"{fragment!r} not in {result.message!r}"
    assert result.hint, "a failed check gives a hint"
    skipped = dependents(report.exercise, check_id)
    for other in report.checks:
        if other.id == check_id:
            continue
        expected = Status.SKIPPED if other.id in skipped else Status.PASSED
        assert other.status is expected, f"{other.id} should be {expected.value}:\n{table(report)}"
