"""Reporters only render: the terminal table, the contract's JSON, the notebook cell form."""

from __future__ import annotations

import json

from grader import registry, reporters
from grader.results import CheckResult, ExerciseReport, Status

REPORT = ExerciseReport("03-permissions", "A non-root service", "exercises/03-permissions", (
    CheckResult("builds", Status.PASSED, 2.0, 2.0, "the Dockerfile builds", "", {"image_id": "sha256:1"}),
    CheckResult("non_root", Status.FAILED, 0.0, 2.0, "the image's user is root; expected a non-root user",
                "Add USER (see lessons/04-permissions.ipynb)", {"image_user": ""}),
    CheckResult("user_ids", Status.SKIPPED, 0.0, 1.5, "skipped: needs non_root, which failed",
                "make non_root pass first"),
    CheckResult("serves_http", Status.FAILED, 0.0, 1.0, "the service stopped\nline one of the logs", "read logs"),
), duration_s=1.25)


def test_json_follows_the_contract_exactly():
    """Are the top-level keys exactly the contract's, and each check's listed keys present with the right types?"""
    data = json.loads(reporters.render_json(REPORT))
    assert list(data) == ["exercise", "score", "max_score", "checks"]
    assert data["exercise"] == "03-permissions"
    assert data["score"] == 2.0 and data["max_score"] == 6.5
    assert isinstance(data["score"], float) and isinstance(data["max_score"], float)
    for check in data["checks"]:
        assert list(check)[:6] == list(reporters.CONTRACT_CHECK_KEYS)
        assert check["status"] in ("passed", "failed", "skipped")
        assert isinstance(check["points"], float) and isinstance(check["max_points"], float)
        assert isinstance(check["message"], str) and isinstance(check["hint"], str)
    assert [c["id"] for c in data["checks"]] == ["builds", "non_root", "user_ids", "serves_http"]
    assert data["checks"][0]["evidence"] == {"image_id": "sha256:1"}


def test_json_evidence_is_always_serialisable():
    odd = ExerciseReport("x", "t", "w", (CheckResult("a", "passed", 1, 1, "m", "", {"p": {1, 2}, "o": object()}),))
    data = json.loads(reporters.render_json(odd))
    assert sorted(data["checks"][0]["evidence"]["p"]) == [1, 2]


def test_table_shows_each_check_points_hints_for_lost_points_and_total():
    table = reporters.render_table(REPORT)
    lines = table.splitlines()
    assert lines[0] == "03-permissions \u2014 A non-root service"
    assert any("builds" in ln and "pass" in ln and "2/2" in ln for ln in lines)
    assert any("non_root" in ln and "FAIL" in ln and "0/2" in ln for ln in lines)
    assert any("user_ids" in ln and "skip" in ln and "0/1.5" in ln for ln in lines)
    assert "hint: Add USER" in table
    assert "hint:" not in next(ln for ln in lines if "builds" in ln)  # no hint where no point was lost
    assert "| line one of the logs" in table  # multi-line messages stay attached to their row
    assert "total" in lines[-1] and "2/6.5" in lines[-1]


def test_table_colours_only_when_asked():
    assert "\033[" not in reporters.render_table(REPORT)
    assert "\033[31mFAIL" in reporters.render_table(REPORT, colour=True)


def test_cell_form_is_the_verdict_message_and_hint():
    failed = reporters.render_for_cell(REPORT.check("non_root"))
    assert failed.splitlines()[0] == "non_root: failed, 0/2 points"
    assert "expected a non-root user" in failed and "hint: Add USER" in failed
    assert "hint" not in reporters.render_for_cell(REPORT.check("builds"))


def test_summary_is_one_line():
    line = reporters.render_summary([REPORT], {"02-storage": "cannot grade: no engine"})
    assert "\n" not in line
    assert "03-permissions 2/6.5" in line and "02-storage not graded" in line
    assert "0/2 exercises with full marks" in line


def test_checks_list_names_every_check_with_points():
    text = reporters.render_checks_list(registry.get("01-first-image"))
    assert "10 points" in text.splitlines()[0]
    assert "deps_before_code" in text and "[needs builds]" in text
