"""Is the learner's JupyterLab a learner's: no nbgrader instructor tools, no news prompt, the
Assignments list kept; and does the instructor's keep the formgrader?

The browser tests drive Debian's chromium with Playwright, as the lessons' browser test does;
they need no Docker engine. A plain JupyterLab (no role settings) is the control that shows what
the checks would see if the settings did nothing.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import course.lab
from course.lab import LabServer, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
INSTRUCTOR_PLUGINS = {"@jupyter/nbgrader:menu", "@jupyter/nbgrader:create-assignment",
                      "@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:course-list"}
NEWS_PLUGIN = "@jupyterlab/apputils-extension:announcements"
NEWS_PROMPT = re.compile("Jupyter news", re.I)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def page_config(lab: LabServer) -> dict:
    status, html = get(f"{lab.base_url}/lab?token={lab.token}")
    assert status == 200
    found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


@pytest.fixture
def plain_settings(monkeypatch, tmp_path):
    """Role settings folders with nothing in them: JupyterLab's and nbgrader's defaults."""
    for role in ("learner", "instructor"):
        (tmp_path / role).mkdir()
    monkeypatch.setattr(course.lab, "LAB_SETTINGS", tmp_path)


def test_learner_lab_serves_no_instructor_tools(tmp_path):
    """Does the learner's lab disable nbgrader's instructor plugins and the news plugin, keep
    the assignment list, and answer 404 for the formgrader, where the instructor's answers?"""
    with LabServer(port=free_port(), root=tmp_path) as lab:
        disabled = set(page_config(lab)["disabledExtensions"])
        assert INSTRUCTOR_PLUGINS | {NEWS_PLUGIN} <= disabled
        assert "@jupyter/nbgrader:assignment-list" not in disabled
        assert get(f"{lab.base_url}/formgrader?token={lab.token}")[0] == 404
        assert get(f"{lab.base_url}/assignments?token={lab.token}")[0] != 404
    with LabServer(port=free_port(), root=tmp_path, instructor=True) as lab:
        assert not INSTRUCTOR_PLUGINS & set(page_config(lab)["disabledExtensions"])
        assert get(f"{lab.base_url}/formgrader?token={lab.token}")[0] == 200


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `make test-deps` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_lab(browser, lab: LabServer):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{lab.base_url}/lab?token={lab.token}")
    # The Help menu is the main menu's last: once it is there, every plugin has been activated.
    page.locator(".lm-MenuBar-itemLabel", has_text="Help").wait_for(timeout=90_000)
    return page


def menu_labels(page) -> list[str]:
    return page.locator(".lm-MenuBar-itemLabel").all_inner_texts()


def wait_for_news_prompt(page, timeout_s: float) -> float | None:
    """Seconds until the news prompt showed, or None if it did not within timeout_s."""
    t0 = time.monotonic()
    try:
        page.get_by_text(NEWS_PROMPT).first.wait_for(timeout=timeout_s * 1000)
        return time.monotonic() - t0
    except Exception:  # playwright's TimeoutError: no prompt
        return None


def test_learner_lab_in_chromium(browser, tmp_path, plain_settings, monkeypatch):
    """In a real browser, does a plain JupyterLab show the Nbgrader menu and the news prompt,
    and the learner's lab neither, with File > Assignment List opening the Assignments list?"""
    with LabServer(port=free_port(), root=tmp_path) as lab:
        page = open_lab(browser, lab)
        shown_after = wait_for_news_prompt(page, 60)
        labels = menu_labels(page)
        page.close()
    assert "Nbgrader" in labels, f"control: a plain lab has the Nbgrader menu ({labels})"
    assert shown_after is not None, "control: a plain lab shows the news prompt"

    monkeypatch.undo()  # the course's own settings from here on
    with LabServer(port=free_port(), root=tmp_path) as lab:
        page = open_lab(browser, lab)
        assert wait_for_news_prompt(page, max(10.0, 3 * shown_after)) is None
        labels = menu_labels(page)
        assert "Nbgrader" not in labels, labels
        page.locator(".lm-MenuBar-itemLabel", has_text="File").click()
        page.locator(".lm-Menu-itemLabel", has_text="Assignment List").click()
        page.locator(".lm-TabBar-tabLabel", has_text="Assignments").wait_for(timeout=30_000)
        page.close()


def test_instructor_lab_in_chromium(browser, tmp_path):
    """Does the instructor's lab show the Nbgrader menu with the Formgrader?"""
    with LabServer(port=free_port(), root=tmp_path, instructor=True) as lab:
        page = open_lab(browser, lab)
        page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").click()
        page.locator(".lm-Menu-itemLabel", has_text="Formgrader").first.wait_for(timeout=30_000)
        page.close()
