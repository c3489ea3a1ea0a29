"""Each exercise grades only its own deliverables: a file it continues from an earlier exercise but does
not grade (07's compose.yaml and .dockerignore, 08's .dockerignore) is the learner's own where it passes
its kind's trial, else the given checkpoint takes its place in the grading's copy, with a notice saying
why; the learner's folder never changes. Where the checkpoint fails the same trial, the learner's file
stays: the fault is then in the exercise's own files, which its checks report.

The .dockerignore trial needs no engine; the compose trial runs `docker compose config` (marked docker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader import registry, workspace
from grader.grading import (Environment, dockerignore_excludes, grade, open_grading, trial_kind,
                            with_checkpoints)
from grader.options import REPO_ROOT
from tests.grader.conftest import leftovers, table
from tests.grader.grading_kit import compose_leftovers
from tests.grader.test_start import FakeSession
from tests.helpers import snapshot

APP = [f"app/{p.name}" for p in sorted((REPO_ROOT / "service/app").glob("*.py"))]


def graded_folder(exercise_id: str, tmp_path: Path, dockerignore: str | None) -> tuple[Path, Path, list[str]]:
    """(the learner's workspace, the folder the checks read, the notices) for this .dockerignore."""
    ws = workspace.materialize(exercise_id, tmp_path / "learner" / exercise_id, with_solution=True)
    if dockerignore is not None:
        (ws / ".dockerignore").write_text(dockerignore)
    graded, notices = with_checkpoints(registry.get(exercise_id), ws, FakeSession(tmp_path / "s"), Environment())
    return ws, graded, notices


def test_every_continued_file_has_a_trial():
    """Does every file an exercise builds on but does not grade get a trial of its kind (so a new kind
    of continued file cannot silently make an exercise pay for an earlier one's mistake)?"""
    continued = {f"{e.id}/{rel}": trial_kind(rel) for e in registry.all_exercises() for rel in e.facts.continued()}
    assert continued and all(continued.values()), continued


# -- .dockerignore: it must let through the service's code the build copies ------------------------

def test_the_build_inputs_are_the_service_code_the_exercise_shares():
    """Are app/'s modules and the requirements the exercise shares the inputs, without caches or Dockerfiles?"""
    assert workspace.shared_files("07-gpu") == [*APP, "requirements.txt"]
    assert workspace.shared_files("08-capstone") == [*APP, "requirements.txt", "requirements-dev.txt"]


@pytest.mark.parametrize("text, excluded", [
    ("*\n!app/\n!requirements.txt\n", ["requirements-dev.txt"]),
    ("app/\n", APP),
    ("# keep the lock files out\nrequirements*\n", ["requirements.txt", "requirements-dev.txt"]),
    ("*.txt\n!requirements.txt\n", ["requirements-dev.txt"]),
    ("app/*\n!app/main.py\n", [p for p in APP if p != "app/main.py"]),
    ("**/main.py\n", ["app/main.py"]),
    ("*\n!app\n!requirements*.txt\n**/__pycache__\n**/*.py[cod]\n", []),
    ("Dockerfile*\n*.md\n.git\n", []),
], ids=["allow-list-without-dev", "app", "requirements", "txt-but-one", "app-but-main", "double-star", "allow-list",
        "dockerfiles"])
def test_dockerignore_excludes_reads_patterns_as_buildkit_does(tmp_path, text, excluded):
    """Does the matcher agree with BuildKit on these patterns (each was tried with a real build)?"""
    (tmp_path / ".dockerignore").write_text(text)
    assert dockerignore_excludes(tmp_path / ".dockerignore", workspace.shared_files("08-capstone")) == excluded


@pytest.mark.parametrize("exercise_id", ["07-gpu", "08-capstone"])
def test_a_dockerignore_that_lets_the_code_through_is_the_learners(tmp_path, exercise_id):
    """The service's own .dockerignore (06's reference: an allow-list that also leaves out every Dockerfile)
    is used as it is: no copy, no notice."""
    ws, graded, notices = graded_folder(exercise_id, tmp_path, (REPO_ROOT / "service/.dockerignore").read_text())
    assert (graded, notices) == (ws, [])


@pytest.mark.parametrize("exercise_id", ["07-gpu", "08-capstone"])
def test_a_dockerignore_that_keeps_the_code_out_is_replaced_in_a_copy(tmp_path, exercise_id):
    mine = "app/\nrequirements.txt\n"
    ws, graded, notices = graded_folder(exercise_id, tmp_path, mine)
    assert graded != ws and (ws / ".dockerignore").read_text() == mine
    given = workspace.checkpoint(exercise_id, ".dockerignore")
    assert (graded / ".dockerignore").read_bytes() == given.read_bytes()
    assert notices == [f"graded with the given checkpoint checkpoints/{exercise_id}/.dockerignore in place of your "
                       f".dockerignore: it keeps {', '.join(APP[:3])} and {len(APP) - 2} more out of the build "
                       f"context, which the build needs"]


def test_what_the_build_needs_is_the_exercises_own_list(tmp_path):
    """requirements-dev.txt left out: harmless in 07 (its builds never copy it), fatal in 08 (whose
    Dockerfile's development stage installs it, as 06's did)."""
    mine = "requirements-dev.txt\n"
    ws07, graded07, notices07 = graded_folder("07-gpu", tmp_path / "07", mine)
    assert (graded07, notices07) == (ws07, [])
    _, graded08, notices08 = graded_folder("08-capstone", tmp_path / "08", mine)
    assert notices08 == ["graded with the given checkpoint checkpoints/08-capstone/.dockerignore in place of your "
                         ".dockerignore: it keeps requirements-dev.txt out of the build context, which the build "
                         "needs"]


def test_the_learners_dockerignore_stays_where_the_checkpoint_fails_too(tmp_path, monkeypatch):
    """Had the course's checkpoint kept the code out as well, the learner's file would be graded: the
    trial only ever swaps a failing file for a passing one."""
    strict = tmp_path / "given.dockerignore"
    strict.write_text("app/\n")
    monkeypatch.setattr(workspace, "checkpoint", lambda exercise_id, rel: strict)
    ws, graded, notices = graded_folder("08-capstone", tmp_path, "app\nrequirements.txt\n")
    assert (graded, notices) == (ws, [])


# -- compose files: `docker compose config` must accept them as the exercise uses them -------------

REFERENCE_05 = (REPO_ROOT / "service/compose.yaml").read_text()
NOT_YAML = "services:\n  server:\n    ports: \"8000\n"
INLINE = "services:\n  server:\n    build:\n      context: .\n      dockerfile_inline: \"FROM python:3.11-slim\"\n"


@pytest.fixture
def gpu_workspace(tmp_path) -> Path:
    """07's reference deliverables, over which a test writes the learner's compose.yaml of 05."""
    return workspace.materialize("07-gpu", tmp_path / "07-gpu", with_solution=True)


@pytest.mark.docker
def test_a_compose_file_compose_accepts_is_the_learners(gpu_workspace, engine, base_options):
    """05's reference compose.yaml under 07's compose.gpu.yaml: the checks read the learner's folder."""
    (gpu_workspace / "compose.yaml").write_text(REFERENCE_05)
    with open_grading("07-gpu", gpu_workspace, base_options, engine=engine) as grading:
        assert grading.context.workspace == gpu_workspace.resolve() and grading.notices == ()
    report = grade("07-gpu", gpu_workspace, base_options, only=["compose_gpu"], engine=engine)
    assert report.full_marks and report.notices == (), table(report)


@pytest.mark.docker
@pytest.mark.parametrize("mine, refused", [
    (NOT_YAML, "`docker compose -f compose.yaml config` refuses it (yaml: line 3: found unexpected end of stream)"),
    (INLINE, "`docker compose -f compose.yaml -f compose.gpu.yaml config` refuses it (service \"server\" declares "
             "mutualy exclusive dockerfile and dockerfile_inline"),
], ids=["not-yaml", "valid-alone-not-under-compose.gpu.yaml"])
def test_a_compose_file_compose_refuses_is_replaced_in_a_copy(gpu_workspace, engine, docker_client, base_options,
                                                              mine, refused):
    """A compose.yaml of 05 that compose refuses, alone or with 07's own file merged over it, costs 07
    nothing: compose_gpu passes on the checkpoint, and the notice quotes compose's first error line."""
    (gpu_workspace / "compose.yaml").write_text(mine)
    before = snapshot(docker_client)
    report = grade("07-gpu", gpu_workspace, base_options, only=["compose_gpu"], engine=engine)
    assert not leftovers(docker_client, report.session_id, "07-gpu", before) + \
        compose_leftovers(docker_client, report.session_id)
    assert report.full_marks, table(report)
    (notice,) = report.notices
    assert notice.startswith("graded with the given checkpoint checkpoints/07-gpu/compose.yaml in place of your "
                             f"compose.yaml: {refused}"), notice
    assert (gpu_workspace / "compose.yaml").read_text() == mine


@pytest.mark.docker
def test_a_deliverable_compose_refuses_keeps_the_learners_base(gpu_workspace, engine, base_options):
    """compose.gpu.yaml broken: the checkpoint under it fails too, so the learner's valid compose.yaml is
    graded and compose_gpu fails on the learner's own deliverable, quoting compose."""
    (gpu_workspace / "compose.yaml").write_text(REFERENCE_05)
    (gpu_workspace / "compose.gpu.yaml").write_text("services:\n  server:\n    deploy: [gpu]\n")
    report = grade("07-gpu", gpu_workspace, base_options, only=["compose_gpu"], engine=engine)
    assert report.notices == (), report.notices
    check = report.check("compose_gpu")
    assert not report.full_marks and "`docker compose -f compose.yaml -f compose.gpu.yaml config` failed" in \
        check.message, table(report)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("mine, replaced", [((REPO_ROOT / "service/.dockerignore").read_text(), False),
                                            ("app/\n", True)], ids=["06-reference", "keeps-app-out"])
def test_08_builds_its_image_whatever_06s_dockerignore_kept_out(tmp_path, engine, docker_client, base_options,
                                                                 mine, replaced):
    """08's server image builds with the learner's 06 .dockerignore where it lets the code through, and
    with the checkpoint where it keeps app/ out (which would fail the build): size_budget passes both ways."""
    ws = workspace.materialize("08-capstone", tmp_path / "08-capstone", with_solution=True)
    (ws / ".dockerignore").write_text(mine)
    before = snapshot(docker_client)
    report = grade("08-capstone", ws, base_options, only=["size_budget"], engine=engine)
    assert not leftovers(docker_client, report.session_id, "08-capstone", before) + \
        compose_leftovers(docker_client, report.session_id)
    assert report.full_marks, table(report)
    assert bool(report.notices) is replaced, report.notices
    assert (ws / ".dockerignore").read_text() == mine
