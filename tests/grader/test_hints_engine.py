"""Hint tiers on the engine: a known-bad fixture's failing check escalates across gradings, and
`--hints all` shows the fix at once; the learner's workspace gets no file from either."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from grader import hints
from grader.grading import grade
from grader.options import REPO_ROOT
from grader.results import Status
from grader.workspace import materialize, overlay
from tests.grader.conftest import FIXTURES

pytestmark = pytest.mark.docker
EXERCISE = "01-first-image"


def _workspace(tmp_path, fixture: str):
    workspace = materialize(EXERCISE, tmp_path / "ws", with_solution=True)
    overlay(FIXTURES / EXERCISE / fixture, workspace)
    return workspace


def _files(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_failing_check_escalates_across_three_gradings(tmp_path, engine, base_options):
    """Graded three times, does pinned_base show tier 1, then 1-2, then 1-3, with tier 2 naming
    what this submission's FROM says, and the workspace untouched?"""
    workspace = _workspace(tmp_path, "pinned_base-untagged")
    before = _files(workspace)
    store = hints.AttemptStore(tmp_path / "state" / "attempts.json")
    seen = []
    for _ in range(3):
        report = grade(EXERCISE, workspace, options=base_options, only=["pinned_base"], engine=engine)
        assert report.check("pinned_base").shown == hints.FEEDBACK_TIERS  # grade() alone: tiers 1-2, always
        revealed = hints.reveal(report, store=store, fix_after=3)
        seen.append(revealed.report.check("pinned_base"))
    assert [r.shown for r in seen] == [1, 2, 3]
    concept, problem, fix = seen[-1].tiers
    assert "genai-course/fixture-python-slim" in problem  # from this failure's evidence
    idea = concept[:concept.rfind(" (see ")]  # the section's own title may quote code
    assert "genai-course/fixture-python-slim" not in idea and "`" not in idea
    assert seen[-1].hint == fix and "FROM python:3.11-slim" in fix
    assert _files(workspace) == before


def test_hints_all_shows_the_fix_at_once_through_the_cli(tmp_path):
    """Does `grader check --hints all` show every tier of every failed check on the first grading,
    while a plain first grading shows tier 1, with the attempts kept outside the workspace?"""
    workspace = _workspace(tmp_path, "broken-syntax-error")
    before = _files(workspace)
    state = tmp_path / "state" / "attempts.json"
    env = {**os.environ, hints.STATE_VARIABLE: str(state)}
    env.pop(hints.FIX_AFTER_VARIABLE, None)

    def check(*extra: str) -> dict:
        proc = subprocess.run([sys.executable, "-m", "grader", "check", EXERCISE, "--workspace", str(workspace),
                               "--json", *extra], capture_output=True, text=True, cwd=REPO_ROOT, env=env,
                              timeout=600)
        assert proc.returncode == 1, proc.stderr
        return json.loads(proc.stdout)

    first = [c for c in check()["checks"] if c["status"] == Status.FAILED.value]
    assert first and all(c["hint_tier"] == 1 and len(c["hints"]) == 1 for c in first)
    asked = [c for c in check("--hints", "all")["checks"] if c["status"] == Status.FAILED.value]
    assert {c["id"] for c in asked} == {c["id"] for c in first}
    for c in asked:
        assert [h["tier"] for h in c["hints"]] == [1, 2, 3] and c["hint"] == c["hints"][-1]["text"]
    assert hints.AttemptStore(state).counts(EXERCISE, str(workspace.resolve()))["builds"] == 2
    assert _files(workspace) == before
