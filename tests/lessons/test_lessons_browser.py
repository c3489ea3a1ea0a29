"""Does the first lesson open in JupyterLab in a real browser, and does its widget render?"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from course.lab import LabServer, free_port
from course.manifest import load

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
WIDGET_CELL = "deployment_helper("  # lesson 01's decision helper: a self-contained widget cell


@pytest.mark.docker
@pytest.mark.slow
def test_first_lesson_renders_its_widget_in_chromium(repo_root, tmp_path, docker_client):
    """Started the way `make lab` starts it, does JupyterLab open lesson 01 in Debian's chromium,
    run the decision helper's cell and draw the widget, with no console error?"""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/browser-deps.sh", pytrace=False)
    from playwright.sync_api import sync_playwright

    first = load().lessons[0].notebook
    # Lab serves a copy, so that autosave can never write outputs into the committed notebook.
    (tmp_path / first).parent.mkdir(parents=True)
    shutil.copy(repo_root / first, tmp_path / first)
    artifacts = repo_root / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    errors: list[str] = []

    with LabServer(port=free_port(), root=tmp_path) as lab, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            page.goto(f"{lab.base_url}/lab/tree/{first.as_posix()}?token={lab.token}")
            page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=90_000)
            cell = page.locator(".jp-CodeCell", has_text=WIDGET_CELL).first
            cell.scroll_into_view_if_needed()
            cell.locator(".jp-InputArea-editor").click()
            page.keyboard.press("Shift+Enter")
            widget = cell.locator(".jp-OutputArea-output .widget-vbox").first
            widget.wait_for(timeout=60_000)
            recommendation = cell.locator(".jp-OutputArea-output", has_text="Recommended:").first
            recommendation.wait_for(timeout=10_000)
            # The widget answers the learner: pick "yes" for a GPU, the advice changes.
            cell.get_by_role("button", name="yes").click()
            cell.locator(".jp-OutputArea-output", has_text="Ruled out:").first.wait_for(timeout=10_000)
            widget.scroll_into_view_if_needed()
            page.screenshot(path=str(artifacts / "lesson01-widget.png"))
            text = widget.inner_text()
        finally:
            browser.close()
    assert "Recommended:" in text and "serverless functions" in text
    assert not errors, "\n".join(errors)
