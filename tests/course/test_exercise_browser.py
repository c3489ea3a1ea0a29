"""A learner's first exercise in a real browser, through the lab `make lab` starts.

Exercise 01 is opened in the learner area (course.lab.learner_area), every cell is run
from JupyterLab's Run menu, and the Dockerfile is compared byte for byte afterwards:
with the starter untouched the notebook shows the starter's score (what the grader
gives those files, not full marks), and with an edited Dockerfile the edit is kept.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from nbgrader.utils import determine_grade, is_grade

from course.lab import LabServer, free_port, learner_area
from grader.grading import grade
from grader.workspace import materialize
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from tests.lessons.test_lessons_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.docker, pytest.mark.slow]
EXERCISE = "01-first-image"
NOTEBOOK = f"exercises/{EXERCISE}/{EXERCISE}.ipynb"
LAST_CHECK = f'check_points("{EXERCISE}", "deps_before_code")'


def run_all_cells(page, attempts: int = 3) -> None:
    """Run > Run All Cells, until a cell shows it ran or is running. On a lab's very first start the menu
    item can be clicked before the notebook is ready for it, and nothing runs (seen in a fresh clone)."""
    started = page.locator(".jp-InputPrompt", has_text="[*]").or_(
        page.locator(".jp-InputPrompt", has_text="[1]"))
    for _ in range(attempts):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            started.first.wait_for(timeout=30_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")  # close the menu if it stayed open
    raise AssertionError(f"Run All Cells started no cell in {attempts} attempts")


def run_all(lab: LabServer, browser, notebook: Path, screenshot: Path) -> tuple[float, bool]:
    """Open exercise 01, run all cells, save; the points its autograded cells earned (read from the
    saved notebook: JupyterLab draws only the cells in view), and whether the link opened the editor."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{lab.base_url}/lab/tree/{NOTEBOOK}?token={lab.token}&reset")  # no layout from an earlier lab
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=90_000)
        run_all_cells(page)
        deadline = time.monotonic() + 600
        graded: list = []
        while time.monotonic() < deadline:
            time.sleep(5)
            dialogs = page.locator(".jp-Dialog")
            if dialogs.count():
                raise AssertionError(f"JupyterLab asked: {dialogs.first.inner_text()!r}")
            page.locator(".jp-Notebook").first.click()
            page.keyboard.press("Control+s")
            try:
                nb = nbformat.read(notebook, as_version=4)
            except (ValueError, OSError):  # caught while the lab writes it
                continue
            graded = [c for c in nb.cells if is_grade(c)]
            if graded and graded[-1].get("outputs") and any(
                    o.get("output_type") in ("execute_result", "error") for o in graded[-1].outputs):
                break
        page.screenshot(path=str(screenshot))
        points = sum(determine_grade(c)[0] or 0 for c in graded)
        page.locator(".jp-NotebookPanel .jp-WindowedPanel-outer").first.evaluate("e => { e.scrollTop = 0; }")
        page.get_by_text("Open Dockerfile in the editor").first.click()
        page.locator(".jp-FileEditor").first.wait_for(timeout=30_000)
        return points, True
    finally:
        page.close()


@pytest.fixture
def lab_area(tmp_path, docker_client):
    """A course with exercise 01's starter workspace, served the way `make lab` serves it."""
    repo = tmp_path / "repo"
    (repo / "lessons").mkdir(parents=True)
    workspace = materialize(EXERCISE, repo / "exercises" / EXERCISE)
    before = {t for i in docker_client.images.list() for t in i.tags if t.startswith("genai-course/exercise-01")}
    yield learner_area(tmp_path / "area", repo=repo), workspace
    for image in docker_client.images.list():
        for tag in set(image.tags) - before:
            if tag.startswith("genai-course/exercise-01"):
                docker_client.images.remove(tag, force=True)


@pytest.mark.parametrize("edited", [False, True], ids=["starter", "edited"])
def test_run_all_keeps_the_dockerfile_and_shows_the_graders_score(lab_area, edited):
    """Does Run All leave the Dockerfile byte-identical (the starter, or the learner's edit), show the
    score the grader gives it (the starter's, not full marks), and open the file in the editor?"""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/browser-deps.sh", pytrace=False)
    from playwright.sync_api import sync_playwright

    area, workspace = lab_area
    dockerfile: Path = workspace / "Dockerfile"
    if edited:
        dockerfile.write_text(dockerfile.read_text() + "FROM python:3.11-slim\n# my own line, mine to keep\n")
    saved = dockerfile.read_bytes()
    with LabServer(port=free_port(), root=area) as lab, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            shot = workspace.parents[2] / f"exercise01-{'edited' if edited else 'starter'}.png"
            points, opened = run_all(lab, browser, workspace / f"{EXERCISE}.ipynb", shot)
        finally:
            browser.close()
    assert dockerfile.read_bytes() == saved
    report = grade(EXERCISE, workspace)
    assert points == pytest.approx(report.score) and points < report.max_score
    assert opened
