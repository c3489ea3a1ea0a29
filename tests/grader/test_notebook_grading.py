"""Exercise notebooks executed the way nbgrader autogrades them: the autograded cells print to stdout
only and their value is the partial credit nbgrader records."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient
from nbgrader.utils import determine_grade, is_grade

from grader.workspace import materialize
from tests.grader.notebook_versions import instructor, released

pytestmark = pytest.mark.docker


def execute(exercise_id: str, workspace, student: bool) -> nbformat.NotebookNode:
    """Execute in `workspace`; the kernel inherits this process's environment (set with monkeypatch)."""
    nb = released(exercise_id) if student else instructor(exercise_id)
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=False,
                   resources={"metadata": {"path": str(workspace)}}).execute()
    return nb


TRY_IMAGES = ("genai-course/exercise-01:try", "genai-course/exercise-03:try")


@pytest.fixture(autouse=True)
def remove_try_images(docker_client):
    """The notebooks' "Try it" cells build genai-course/exercise-NN:try: remove those this test made."""
    def present():
        return {tag for tag in TRY_IMAGES if docker_client.images.list(name=tag)}
    before = present()
    yield
    for tag in present() - before:
        docker_client.images.remove(tag)


def grades(nb) -> dict[str, tuple[float, float]]:
    return {c.metadata.nbgrader["grade_id"]: determine_grade(c) for c in nb.cells if is_grade(c)}


@pytest.mark.parametrize("exercise_id", ["01-first-image", "02-storage"])
def test_instructor_version_earns_full_marks(tmp_path, exercise_id, request, monkeypatch):
    """Run the instructor's version top to bottom on the reference files (no cell writes them): does
    every autograded cell earn all its points?"""
    monkeypatch.setenv("COURSE_WIDGETS", "plain")
    if exercise_id != "01-first-image":
        monkeypatch.setenv("GENAI_SERVICE_IMAGE", request.getfixturevalue("service_image"))
    nb = execute(exercise_id, materialize(exercise_id, tmp_path / "ws", with_solution=True), student=False)
    earned = grades(nb)
    assert earned and all(score == top for score, top in earned.values()), earned
    for cell in nb.cells:
        if is_grade(cell):
            assert all(o.get("name") != "stderr" for o in cell.outputs)


def test_student_version_of_the_starter_earns_nothing_and_says_why(tmp_path, monkeypatch):
    """Does the released notebook, run over the untouched starter, leave it as it is and earn nothing?"""
    monkeypatch.setenv("COURSE_WIDGETS", "plain")
    nb = execute("01-first-image", materialize("01-first-image", tmp_path / "ws"), student=True)
    earned = grades(nb)
    assert all(score == 0 for score, _ in earned.values()), earned
    builds = next(c for c in nb.cells if is_grade(c) and c.metadata.nbgrader["grade_id"] == "check_builds")
    printed = "".join(o.get("text", "") for o in builds.outputs)
    assert "builds: failed, 0/2 points" in printed and "holds no instructions yet" in printed  # the starter, untouched


def test_try_script_shows_what_run_sh_made_and_leaves_nothing(tmp_path, service_image, docker_client,
                                                             monkeypatch, capsys):
    """Does "Try run.sh" run the reference run.sh as the grader does, show what it created, and
    leave no container, network, volume or image behind (and no engine connection open)?"""
    from grader.notebook import try_script
    from grader.runner import GradingSession
    from tests.helpers import new_since, snapshot

    monkeypatch.setenv("GENAI_SERVICE_IMAGE", service_image)
    sessions: list[str] = []
    enter = GradingSession.__enter__
    monkeypatch.setattr(GradingSession, "__enter__", lambda self: sessions.append(self.id) or enter(self))
    workspace = materialize("02-storage", tmp_path / "ws", with_solution=True)
    before = snapshot(docker_client)
    try_script("02-storage", workspace)
    out = capsys.readouterr().out
    assert "bash run.sh" in out and "run.sh exited 0" in out, out
    assert "container genai-storage: running" in out and "/data (volume genai-data" in out, out
    assert "(removed again" in out
    assert len(sessions) == 1
    assert new_since(docker_client, before, ("org.genai-course.session", sessions[0])) == [], \
        "try_script left something behind"
