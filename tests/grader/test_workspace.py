"""Workspaces: starter + shared service files + solution overlay, and `grader sync`."""

from __future__ import annotations

import filecmp

import pytest

from grader import workspace
from grader.options import REPO_ROOT


def test_materialize_starter_has_shared_files_from_the_service(tmp_path):
    """Does exercise 03's workspace get app/ and requirements.txt from service/, not from stale copies?"""
    dest = workspace.materialize("03-permissions", tmp_path / "ws")
    # a learner who starts afresh: the Dockerfile 03 continues is the given checkpoint
    assert (dest / "Dockerfile").read_text() == (REPO_ROOT / "checkpoints/03-permissions/Dockerfile").read_text()
    assert filecmp.cmp(dest / "requirements.txt", REPO_ROOT / "service/requirements.txt", shallow=False)
    assert (dest / "app" / "main.py").read_text() == (REPO_ROOT / "service/app/main.py").read_text()
    assert not list(dest.rglob("__pycache__"))


def test_materialize_with_solution_overlays_only_the_solution_files(tmp_path):
    dest = workspace.materialize("01-first-image", tmp_path / "ws", with_solution=True)
    assert (dest / "Dockerfile").read_text() == (REPO_ROOT / "solutions/01-first-image/Dockerfile").read_text()
    assert (dest / "app" / "main.py").exists() and (dest / "requirements.txt").exists()


@pytest.mark.parametrize("exercise_id", ["01-first-image", "02-storage", "03-permissions", "04-networking"])
def test_solutions_hold_only_files_that_differ_from_the_starter(exercise_id):
    solution = workspace.solution_dir(exercise_id)
    files = [p for p in solution.rglob("*") if p.is_file()]
    assert files, f"{solution} is empty"
    for path in files:
        starter = workspace.starter_dir(exercise_id) / path.relative_to(solution)
        assert not starter.exists() or starter.read_bytes() != path.read_bytes(), f"{path} equals the starter"


def test_fill_shared_copies_only_what_is_missing(tmp_path):
    """Does sync leave existing copies alone unless forced?"""
    (tmp_path / "requirements.txt").write_text("mine\n")
    created = workspace.fill_shared("03-permissions", tmp_path)
    assert [p.name for p in created] == ["app"]
    assert (tmp_path / "requirements.txt").read_text() == "mine\n"
    workspace.fill_shared("03-permissions", tmp_path, force=True)
    assert (tmp_path / "requirements.txt").read_text() == (REPO_ROOT / "service/requirements.txt").read_text()


def test_shared_copies_are_git_ignored():
    """Are the copies `grader sync` makes ignored by git, so that service/ stays the only source?"""
    ignored = (REPO_ROOT / ".gitignore").read_text().splitlines()
    for exercise_id, files in workspace.SHARED_FILES.items():
        for rel in files:
            path = f"exercises/{exercise_id}/{rel}" + ("/" if (REPO_ROOT / files[rel]).is_dir() else "")
            assert path in ignored, f"{path} is not in .gitignore"


def test_seeded_files_are_git_ignored_and_not_committed():
    """Are the files `grader start` seeds the learner's (ignored by git), with no committed starter left?"""
    ignored = (REPO_ROOT / ".gitignore").read_text().splitlines()
    for exercise_id, files in workspace.STARTS_FROM.items():
        for rel in files:
            assert f"exercises/{exercise_id}/{rel}" in ignored, f"exercises/{exercise_id}/{rel} is not ignored"
            assert workspace.checkpoint(exercise_id, rel).is_file()
