"""Does every lesson run top to bottom against the real engine, and leave nothing behind?"""

from __future__ import annotations

import json
import time

import nbformat
import pytest
from nbclient import NotebookClient

from course.lessonkit import Lesson
from course.manifest import load

COURSE = load()
# These build the service image (pip installs of its runtime): slow on a cold cache; 10 also
# makes a three-node swarm and pushes the images to its registry.
SLOW_LESSONS = {"06", "07", "09", "10"}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _lesson_params():
    for lesson in COURSE.lessons:
        marks = [pytest.mark.docker] + ([pytest.mark.slow] if lesson.id in SLOW_LESSONS else [])
        yield pytest.param(lesson, id=lesson.slug, marks=marks)


@pytest.mark.parametrize("lesson", list(_lesson_params()))
def test_lesson_runs_top_to_bottom(lesson, docker_client, models_dir, repo_root):
    """Does the lesson execute without an error, print its widgets as text (headless), and
    leave no container, network, volume or image carrying its label?"""
    path = repo_root / lesson.notebook
    nb = nbformat.read(path, as_version=4)
    kit = Lesson(lesson.id)
    scratch_before = kit.scratch_folders()
    artifacts = repo_root / "test-artifacts" / "lessons"
    artifacts.mkdir(parents=True, exist_ok=True)
    # The kernel starts in lessons/, as JupyterLab starts it next to the notebook.
    client = NotebookClient(nb, kernel_name="python3", timeout=600, allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.monotonic()
    left_behind = left_scratch = None
    try:
        client.execute()
        # what the lesson's own last cell failed to remove
        left_behind = kit.resources()
        left_scratch = kit.scratch_folders() - scratch_before
    finally:
        seconds = time.monotonic() - started
        nbformat.write(nb, artifacts / path.name)  # the executed notebook, to read when it fails
        (artifacts / f"{lesson.id}.json").write_text(json.dumps({"lesson": lesson.id, "seconds": round(seconds, 1)}))
        kit.cleanup(quiet=True)
        for folder in kit.scratch_folders() - scratch_before:
            kit.remove_tree(folder)
        assert not kit.resources(), f"lesson {lesson.id}'s resources survived the test's clean-up"
    print(f"lesson {lesson.id} ran in {seconds:.1f} s")
    assert not left_behind, f"lesson {lesson.id} left {left_behind.summary()}: {left_behind}"
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not any(WIDGET_VIEW in o.get("data", {}) for o in outputs), \
        "a widget was displayed headless: it must print plain text instead"
    assert not left_scratch, f"the lesson left its scratch folder(s) {left_scratch}"
    echoed = [line for o in outputs if o.get("output_type") == "stream"
              for line in o.get("text", "").splitlines() if line.startswith("$ ") and "--label" in line]
    assert not echoed, f"lesson {lesson.id} echoed commands with the clean-up labels a learner would not type: {echoed[:3]}"
