"""Do the widgets react to a learner's clicks and typing as they should (no browser needed:
ipywidgets objects work without a front end)?"""

from __future__ import annotations

import pytest

from course import widgets as w
from tests.lessons.fakes import FakeClient


def _find(widget, kind, **attrs):
    """All descendants of `widget` of type `kind` whose attributes match."""
    import ipywidgets

    found = []
    stack = [widget]
    while stack:
        node = stack.pop(0)
        if isinstance(node, getattr(ipywidgets, kind)) and all(getattr(node, k) == v for k, v in attrs.items()):
            found.append(node)
        stack.extend(getattr(node, "children", ()))
    return found


def test_permission_calculator_syncs_octal_and_boxes():
    """Does typing 640 tick the right boxes, and does ticking a box change the number?"""
    box = w.permission_widget("755")
    octal = _find(box, "Text")[0]
    checks = _find(box, "Checkbox")
    out = _find(box, "HTML")[0]
    octal.value = "640"
    assert [c.value for c in checks] == [True, True, False, True, False, False, False, False, False]
    assert "rw-r-----" in out.value and "u=rw,g=r,o=" in out.value
    checks[8].value = True  # others: execute
    assert octal.value == "641" and "rw-r----x" in out.value


def test_permission_calculator_explains_a_typo():
    """Is a malformed number answered with the reason, not an exception?"""
    box = w.permission_widget("755")
    octal = _find(box, "Text")[0]
    octal.value = "79"
    assert "like 755" in _find(box, "HTML")[0].value


def test_deployment_helper_changes_its_advice():
    """Does answering 'yes, a GPU' turn the advice from containers to a VM and rule out serverless?"""
    box = w.deployment_widget(w.Needs())
    answer = _find(box, "HTML")[-1]
    assert "containers on VMs" in answer.value
    _find(box, "ToggleButtons")[0].value = True
    assert "a virtual machine" in answer.value and "functions get no GPU" in answer.value


def test_quiz_gives_feedback_and_keeps_score():
    """Does Check grade the chosen answer and update the score?"""
    questions = [w.Question("2 + 2?", ("3", "4"), 1, "Arithmetic."), w.Question("1 + 1?", ("2", "3"), 0, "Again.")]
    box = w.quiz_widget(questions, "Quiz")
    radios = _find(box, "RadioButtons")
    buttons = _find(box, "Button", description="Check")
    radios[0].value = 1
    buttons[0].click()
    radios[1].value = 1
    buttons[1].click()
    html = [h.value for h in _find(box, "HTML")]
    assert any("Right. Arithmetic." in h for h in html)
    assert any("Not quite" in h and "Again." in h for h in html)
    assert any("1 / 2" in h for h in html)


def test_unanswered_question_asks_for_a_choice():
    """Does Check without a choice ask for one instead of grading?"""
    box = w.quiz_widget([w.Question("?", ("a", "b"), 0, "")])
    _find(box, "Button", description="Check")[0].click()
    assert any("Pick an answer first." in h.value for h in _find(box, "HTML"))


def test_dashboard_and_network_map_render_and_refresh():
    """Do the dashboard and the network map draw the engine's data and redraw on Refresh?"""
    board = w.Dashboard(client=FakeClient()).widget()
    body = _find(board, "HTML")[0]
    assert "demo:1.0, demo:latest" in body.value and "demo-data" in body.value
    body.value = ""
    _find(board, "Button", description="Refresh")[0].click()
    assert "demo-net" in body.value
    net = w.NetworkMap(client=FakeClient()).widget()
    assert "api ↔ client via demo-net" in _find(net, "HTML")[0].value


def test_layer_explorer_redraws_for_the_picked_image():
    """Does picking another image redraw the bars for that image?"""
    explorer = w.LayerExplorer("demo:1.0", images=["demo:1.0", "demo:latest"], client=FakeClient())
    box = explorer.widget()
    chart = _find(box, "HTML")[0]
    assert "<b>demo:1.0</b>" in chart.value and "RUN pip install numpy" in chart.value
    _find(box, "Dropdown")[0].value = "demo:latest"
    assert "<b>demo:latest</b>" in chart.value and explorer.image == "demo:latest"


@pytest.mark.docker
def test_build_progress_streams_into_the_widget(docker_client, monkeypatch, tmp_path):
    """In a front end, does build_live stream the build log into its widget and report the result?"""
    monkeypatch.setenv("COURSE_WIDGETS", "on")
    shown = []
    monkeypatch.setattr(w.build, "_display", shown.append)  # where build_live looks it up
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\nRUN echo built-for-the-widget-test\n")
    tag = "lesson99-build-widget:test"
    try:
        result = w.build_live(tmp_path, tag, labels={"org.genai-course.managed": "true",
                                                     "org.genai-course.lesson": "99"})
        status, log = shown[0].children
        assert result.ok and "RUN echo built-for-the-widget-test" in log.value
        assert result.summary() in status.value
    finally:
        docker_client.images.remove(tag, force=True)


@pytest.mark.docker
def test_failed_build_raises_with_the_log_tail(docker_client, monkeypatch, tmp_path, capsys):
    """Does a failing build raise BuildFailed showing the failing step's output?"""
    monkeypatch.setenv("COURSE_WIDGETS", "plain")
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\nRUN echo about-to-fail && exit 3\n")
    with pytest.raises(w.BuildFailed, match="about-to-fail"):
        w.build_live(tmp_path, "lesson99-build-fails:test")
    result = w.build_live(tmp_path, "lesson99-build-fails:test", check=False)
    assert not result.ok and "FAILED to build" in capsys.readouterr().out
