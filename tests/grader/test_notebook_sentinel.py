"""Running every cell of an exercise notebook never changes a learner's file, and its score is the
grader's: for the version `make lab` opens and the released one, each exercise notebook is run top
to bottom over a workspace whose deliverables carry a sentinel line. Afterwards each deliverable is
byte-identical, and every autograded cell earned exactly the points `python -m grader check --json`
gives those files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from nbclient import NotebookClient
from nbgrader.utils import determine_grade, is_grade

from grader import registry
from grader.options import REPO_ROOT
from grader.workspace import materialize
from tests.grader.notebook_versions import EXERCISES, VERSIONS

pytestmark = [pytest.mark.docker, pytest.mark.slow]
TRY_PREFIX = "genai-course/exercise-"  # what the notebooks' "Try it" cells build


@pytest.fixture
def remove_try_images(docker_client):
    def tags():
        return {t for image in docker_client.images.list() for t in image.tags if t.startswith(TRY_PREFIX)}
    before = tags()
    yield
    for tag in tags() - before:
        docker_client.images.remove(tag, force=True)


def sentinel_workspace(exercise_id: str, folder) -> dict[str, bytes]:
    """The starter workspace, each deliverable ending in a comment line no other file holds."""
    workspace = materialize(exercise_id, folder)
    mark = f"\n# sentinel {uuid.uuid4().hex}: the learner's own line\n"
    saved = {}
    for name in registry.get(exercise_id).deliverables:
        path = workspace / name
        path.write_bytes((path.read_bytes() if path.exists() else b"") + mark.encode())
        saved[name] = path.read_bytes()
    return saved


def grader_points(exercise_id: str, workspace, env: dict) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-m", "grader", "check", exercise_id, "--workspace", str(workspace),
                           "--json"], cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=1800)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return {c["id"]: float(c["points"]) for c in json.loads(proc.stdout)["checks"]}


@pytest.mark.parametrize("version", sorted(VERSIONS))
@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_running_all_cells_keeps_the_files_and_scores_what_the_grader_gives(
        exercise_id, version, tmp_path, monkeypatch, request, remove_try_images):
    """Does Run All leave every deliverable byte-identical, and does each autograded cell earn what the
    grader's command line gives the same files?"""

    monkeypatch.setenv("COURSE_WIDGETS", "plain")
    if "service_image" in registry.get(exercise_id).needs:
        monkeypatch.setenv("GENAI_SERVICE_IMAGE", request.getfixturevalue("service_image"))
    workspace = tmp_path / "ws"
    saved = sentinel_workspace(exercise_id, workspace)
    nb = VERSIONS[version](exercise_id)
    NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=False,
                   resources={"metadata": {"path": str(workspace)}}).execute()
    for name, content in saved.items():
        assert (workspace / name).read_bytes() == content, f"running the notebook changed {name}"
    earned = {c.metadata.nbgrader["grade_id"].removeprefix("check_"): determine_grade(c)[0]
              for c in nb.cells if is_grade(c)}
    assert earned
    expected = grader_points(exercise_id, workspace, dict(os.environ))
    assert earned == {check: expected[check] for check in earned}
    assert sum(earned.values()) < sum(c.points for c in registry.get(exercise_id).checks)  # the starter's score
