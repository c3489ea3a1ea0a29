"""02-storage on the learner's own image: run.sh gets the image of the learner's Dockerfile of
exercise 01 (a sibling workspace) when it builds the service and answers /health with the model,
else the reference image; the report says which and why. 02 grades only run.sh: its reference
scores full marks on either image, also on solutions/01's image, which runs as root."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.options import REPO_ROOT
from grader.workspace import solution_dir
from tests.grader.conftest import table

pytestmark = pytest.mark.docker
EXERCISE = "02-storage"


def earlier_dockerfile(root: Path, text: str | None = None) -> None:
    """The learner's exercise 01 next to the workspace grade_workspace makes (its tmp_path)."""
    folder = root / "01-first-image"
    folder.mkdir()
    if text is None:
        shutil.copy2(solution_dir("01-first-image") / "Dockerfile", folder / "Dockerfile")
    else:
        (folder / "Dockerfile").write_text(text)


@pytest.mark.slow
def test_run_sh_runs_the_learners_own_image(grade_workspace, tmp_path):
    earlier_dockerfile(tmp_path)
    report = grade_workspace(EXERCISE)
    assert report.notices == ("run.sh ran the image built from your 01-first-image/Dockerfile",), table(report)
    assert report.full_marks, table(report)


@pytest.mark.parametrize("text, why", [
    ("FROM python:3.11-slim\nRUN exit 3\n", "your 01-first-image/Dockerfile does not build the service"),
    ("FROM python:3.11-slim\nCMD [\"false\"]\n",
     "the image of your 01-first-image/Dockerfile does not answer GET /health with the model mounted"),
], ids=["does-not-build", "does-not-serve"])
def test_a_broken_earlier_dockerfile_falls_back_to_the_reference(grade_workspace, tmp_path, service_image,
                                                                 text, why):
    earlier_dockerfile(tmp_path, text)
    report = grade_workspace(EXERCISE)
    assert report.full_marks, table(report)
    (notice,) = report.notices
    assert notice.startswith(f"run.sh ran the reference service image {service_image}: {why}"), notice


@pytest.mark.parametrize("dockerfile, notice", [
    ("FROM python:3.11-slim\nRUN exit 3\n",
     "graded with the given checkpoint checkpoints/05-compose/Dockerfile in place of your Dockerfile: your "
     "Dockerfile does not build the service"),
    (None, "the stack runs the image of your Dockerfile (it builds and answers /health)"),
], ids=["broken-falls-back", "own-image-serves"])
def test_05_grades_the_compose_files_on_the_learners_image_or_the_checkpoint(
        tmp_path, engine, docker_client, base_options, dockerfile, notice):
    """05 grades only the compose files: a Dockerfile of the learner's that does not build costs nothing
    (the checkpoint takes its place, in the grading's copy), one that serves is the one the stack runs."""
    from grader.grading import grade
    from tests.grader.conftest import leftovers
    from tests.grader.grading_kit import compose_leftovers, workspace_for
    from tests.helpers import snapshot

    workspace = workspace_for("05-compose", tmp_path / "05-compose")
    mine = dockerfile if dockerfile is not None else (REPO_ROOT / "service/Dockerfile").read_text()
    (workspace / "Dockerfile").write_text(mine)
    before = snapshot(docker_client)
    report = grade("05-compose", workspace, base_options, engine=engine)
    assert not leftovers(docker_client, report.session_id, "05-compose", before) + \
        compose_leftovers(docker_client, report.session_id)
    assert (workspace / "Dockerfile").read_text() == mine
    assert report.full_marks, table(report)
    assert any(n.startswith(notice) for n in report.notices), report.notices
