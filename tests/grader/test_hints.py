"""Hints in three tiers: what each check declares, which tiers a learner sees, the attempts file
(no engine needed; the engine test is in test_hints_engine.py)."""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest

from grader import hints, registry, reporters
from grader.errors import CannotGrade
from grader.options import REPO_ROOT
from grader.results import CheckResult, ExerciseReport, Status

TIERS = ("why it matters (see lessons/02-images-and-layers.ipynb, section \u201cS\u201d)",
         "your FROM python has no tag", "write `FROM python:3.11-slim`")


def failed(check_id: str = "pinned_base", shown: int = 2, **evidence) -> CheckResult:
    return hints.show(CheckResult(check_id, Status.FAILED, 0.0, 1.0, "FROM python has no tag; expected a tag", "",
                                  evidence or {"unpinned": ["python"]}, 0.0, TIERS), shown)


def report_of(*checks: CheckResult, workspace: str = "/tmp/ws-a") -> ExerciseReport:
    return ExerciseReport("01-first-image", "Your first image", workspace, checks)


def _all_checks():
    for exercise in registry.all_exercises():
        for check in exercise.checks:
            yield pytest.param(check, id=f"{exercise.id}/{check.id}")


# -- what every check declares ------------------------------------------------------------------

@pytest.mark.parametrize("check", list(_all_checks()))
def test_every_check_has_three_tiers_and_tier_one_holds_no_fix(check):
    """Has every check a concept, a problem and a fix, and is the concept free of command lines
    and of the fix's own text?"""
    concept, problem, fix = check.tiers.concept, check.tiers.problem, check.tiers.fix
    assert concept.strip() and fix.strip() and problem and all(p.strip() for p in problem)
    idea = concept[:concept.rfind(" (see ")]
    assert idea.strip(), "tier 1 is only a pointer"
    assert idea != registry.LEGACY_CONCEPT.format(summary=check.summary), "declared with hint= alone: no tiers"
    assert "`" not in idea, f"tier 1 quotes code: {idea!r}"
    assert not re.search(r"(^|\s)--?[a-z]", idea), f"tier 1 names a command-line flag: {idea!r}"
    assert not re.search(r"\bdocker (run|build|compose|network|volume)\b", idea), idea
    assert fix not in concept and idea not in fix
    for span in re.findall(r"`([^`]+)`", fix):
        if re.search(r"[\s=:/.-]", span):  # code, not a single word such as latest
            assert span not in idea, f"tier 1 holds the fix's {span!r}"


@pytest.mark.parametrize("check", list(_all_checks()))
def test_some_problem_template_always_applies(check):
    """Does the last tier-2 template need nothing but what every failure has (its message), so that
    tier 2 is never empty?"""
    last = check.tiers.problem[-1]
    names = {n for _, n, _, _ in string.Formatter().parse(last) if n}
    assert names <= {"found"}, f"the last template needs {names - {'found'}}"
    text = hints.problem_text(check.tiers, {}, "this is what was found; expected more")
    assert "{" not in text and text.strip()


# -- tier 2 from the evidence ------------------------------------------------------------------

def test_problem_uses_the_first_template_the_evidence_fills():
    """Is tier 2 written from this failure's evidence, falling back to what its message found?"""
    tiers = hints.Tiers("idea (see x)", ("starts from {unpinned}", "in yours, {found}"), "fix")
    assert hints.problem_text(tiers, {"unpinned": ["python", "node"]}, "m") == "starts from python, node"
    assert hints.problem_text(tiers, {"other": 1}, "line 1: FROM python; expected a tag") == \
        "in yours, line 1: FROM python"


def test_problem_adds_the_failures_own_finding_and_lint_notes():
    tiers = hints.Tiers("idea (see x)", ("in yours, {found}",), "fix")
    text = hints.problem_text(tiers, {}, "shell form; expected JSON", "a # syntax= line", ["(hadolint DL3025)"])
    assert text == "in yours, shell form a # syntax= line (hadolint DL3025)"


def test_an_engine_refusal_is_the_problem_found():
    tiers = hints.Tiers("idea (see x)", ("in yours, {found}",), "fix")
    assert "unable to find user fastapi" in hints.problem_text(tiers, {"engine_error": "unable to find user fastapi"})


def test_a_check_without_its_three_tiers_is_refused():
    with pytest.raises(ValueError, match="three non-empty hint tiers"):
        hints.Tiers("idea", ("",), "fix")
    exercise = registry.Exercise("01-first-image")
    with pytest.raises(ValueError, match="needs its fix"):
        exercise.check("x", points=1, summary="s", section="S", concept="c")


# -- which tiers are shown ---------------------------------------------------------------------

@pytest.mark.parametrize("fix_after, expected", [(3, [1, 2, 3, 3]), (2, [1, 3, 3, 3]), (1, [3, 3, 3, 3]),
                                                 (5, [1, 2, 2, 2])])
def test_tier_grows_with_failed_attempts(fix_after, expected):
    assert [hints.level_for(n, fix_after) for n in (1, 2, 3, 4)] == expected


def test_showing_a_tier_makes_it_the_legacy_hint():
    """Is `hint` the highest tier shown, and are passed and skipped checks left alone?"""
    assert failed(shown=1).hint == TIERS[0]
    assert failed(shown=3).hint == TIERS[2]
    assert failed(shown=9).shown == 3
    ok = CheckResult("builds", Status.PASSED, 1.0, 1.0, "builds")
    assert hints.show(ok, 3) is ok
    skipped = CheckResult("x", Status.SKIPPED, 0.0, 1.0, "skipped: needs builds", "make builds pass first")
    assert hints.show(skipped, 3) is skipped


def test_bad_fix_after_setting_is_one_clear_error(monkeypatch):
    monkeypatch.setenv(hints.FIX_AFTER_VARIABLE, "soon")
    with pytest.raises(CannotGrade, match="GENAI_HINT_FIX_AFTER='soon' must be a whole number"):
        hints.fix_after_setting()
    monkeypatch.setenv(hints.FIX_AFTER_VARIABLE, "0")
    with pytest.raises(CannotGrade):
        hints.fix_after_setting()
    monkeypatch.delenv(hints.FIX_AFTER_VARIABLE)
    assert hints.fix_after_setting() == hints.DEFAULT_FIX_AFTER


def test_state_file_defaults_to_the_users_state_directory(monkeypatch, tmp_path):
    """Is the attempts file under XDG_STATE_HOME (or ~/.local/state), never in the repository?"""
    monkeypatch.delenv(hints.STATE_VARIABLE, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert hints.state_path() == tmp_path / "genai-course" / "hint-attempts.json"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert REPO_ROOT not in hints.state_path().parents
    monkeypatch.setenv(hints.STATE_VARIABLE, str(tmp_path / "mine.json"))
    assert hints.state_path() == tmp_path / "mine.json"


# -- the attempts file ------------------------------------------------------------------------

def test_reveal_escalates_with_attempts_and_a_pass_resets_nothing(tmp_path):
    """Tier 1 at the first failure, 1-2 at the second, 1-3 from the third; does a pass in between
    keep the tier reached?"""
    store = hints.AttemptStore(tmp_path / "state" / "attempts.json")
    seen = [hints.reveal(report_of(failed()), store=store, fix_after=3).report.check("pinned_base").shown
            for _ in range(2)]
    passed = CheckResult("pinned_base", Status.PASSED, 1.0, 1.0, "pinned")
    hints.reveal(report_of(passed), store=store, fix_after=3)
    seen.append(hints.reveal(report_of(failed()), store=store, fix_after=3).report.check("pinned_base").shown)
    assert seen == [1, 2, 3]
    assert store.counts("01-first-image", "/tmp/ws-a") == {"pinned_base": 3}


def test_all_hints_on_request_show_the_fix_at_once(tmp_path):
    store = hints.AttemptStore(tmp_path / "attempts.json")
    revealed = hints.reveal(report_of(failed()), "all", store=store, fix_after=3)
    assert revealed.report.check("pinned_base").hint == TIERS[2]
    assert not revealed.more_available
    assert hints.reveal_all(report_of(failed(shown=1))).check("pinned_base").shown == 3
    with pytest.raises(CannotGrade, match="expected one of auto, all"):
        hints.reveal(report_of(failed()), "some", store=store)


def test_attempts_are_counted_per_workspace_and_check(tmp_path):
    store = hints.AttemptStore(tmp_path / "attempts.json")
    for _ in range(2):
        hints.reveal(report_of(failed(), failed("exec_form"), workspace="/a"), store=store, fix_after=3)
    revealed = hints.reveal(report_of(failed(), workspace="/b"), store=store, fix_after=3)
    assert revealed.report.check("pinned_base").shown == 1
    assert store.counts("01-first-image", "/a") == {"pinned_base": 2, "exec_form": 2}
    assert store.counts("01-first-image", "/b") == {"pinned_base": 1}
    assert store.counts("02-storage", "/a") == {}


def _record_once(path: str) -> None:
    hints.AttemptStore(Path(path)).record("01-first-image", "/ws", ["pinned_base"])


def test_gradings_at_once_lose_no_attempt(tmp_path):
    """Do 12 processes that record at the same time leave a count of 12 and a readable file?"""
    path = tmp_path / "attempts.json"
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        pool.map(_record_once, [str(path)] * 12)
    assert hints.AttemptStore(path).counts("01-first-image", "/ws") == {"pinned_base": 12}
    assert json.loads(path.read_text())["version"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attempts.json", "attempts.json.lock"]


def test_a_corrupt_file_degrades_to_tier_one_with_a_note(tmp_path):
    """Is a corrupt attempts file set aside (not lost), with tier 1 and a note, and counting restarted?"""
    path = tmp_path / "attempts.json"
    path.write_text("{not json")
    revealed = hints.reveal(report_of(failed()), store=hints.AttemptStore(path), fix_after=3)
    assert revealed.report.check("pinned_base").shown == 1
    assert any("unreadable" in n and "counting starts again" in n for n in revealed.notes)
    assert (tmp_path / "attempts.json.corrupt").read_text() == "{not json"
    assert hints.AttemptStore(path).counts("01-first-image", "/tmp/ws-a") == {"pinned_base": 1}


def test_an_unwritable_state_degrades_to_tier_one_with_a_note(tmp_path):
    """Where the attempts file cannot be written (its folder is a file here: root or not), is the
    grading shown with tier 1 and a note, even where the fix would come at once?"""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    revealed = hints.reveal(report_of(failed(shown=3)), store=hints.AttemptStore(blocker / "a.json"), fix_after=1)
    assert revealed.report.check("pinned_base").shown == 1
    assert any("not counted" in n and hints.STATE_VARIABLE in n for n in revealed.notes)


def test_a_state_file_inside_the_workspace_is_never_written(tmp_path):
    """Is nothing written into the learner's workspace, even when the setting points there?"""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    store = hints.AttemptStore(workspace / "attempts.json")
    revealed = hints.reveal(report_of(failed(), workspace=str(workspace)), store=store, fix_after=1)
    assert revealed.report.check("pinned_base").shown == 1
    assert "inside the workspace" in revealed.notes[0]
    assert list(workspace.iterdir()) == []


# -- renderers and the JSON report -----------------------------------------------------------------

def test_json_keeps_the_contract_keys_and_adds_the_tiers_shown():
    data = json.loads(reporters.render_json(report_of(failed(shown=2), CheckResult("b", "passed", 1, 1, "ok"))))
    assert list(data) == ["exercise", "score", "max_score", "checks"]
    lost, ok = data["checks"]
    assert list(lost)[:6] == list(reporters.CONTRACT_CHECK_KEYS)
    assert lost["hints"] == [{"tier": 1, "text": TIERS[0]}, {"tier": 2, "text": TIERS[1]}]
    assert (lost["hint_tier"], lost["hint_tiers"], lost["hint"]) == (2, 3, TIERS[1])
    assert (ok["hints"], ok["hint_tier"], ok["hint"]) == ([], 0, "")


def test_table_labels_each_tier_and_says_how_to_get_more():
    table = reporters.render_table(report_of(failed(shown=1)), more="stuck? ask for all hints")
    assert "hint 1/3, the idea: why it matters" in table
    assert "your FROM python" not in table and "stuck? ask for all hints" in table
    everything = reporters.render_table(report_of(failed(shown=3)), more="stuck? ask for all hints")
    assert "hint 2/3, in your work: your FROM python has no tag" in everything
    assert "hint 3/3, the fix: write `FROM python:3.11-slim`" in everything
    assert "stuck?" not in everything  # nothing held back


def test_notebook_cell_shows_evidence_and_two_tiers_never_the_fix():
    """Does the autograded cell (what nbgrader's feedback shows) hold the evidence and tiers 1-2,
    but never tier 3, even for a result where all tiers were revealed?"""
    for shown in (2, 3):
        cell = reporters.render_for_cell(failed(shown=shown))
        assert "evidence:" in cell and 'unpinned: ["python"]' in cell
        assert "hint 1/3" in cell and "hint 2/3" in cell
        assert "FROM python:3.11-slim" not in cell and "hint 3/3" not in cell


def test_cli_refuses_an_unknown_hints_mode_and_a_bad_setting():
    run = [sys.executable, "-m", "grader", "check", "01-first-image"]
    proc = subprocess.run([*run, "--hints", "some"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert proc.returncode == 2 and "invalid choice: 'some'" in proc.stderr
    proc = subprocess.run(run, capture_output=True, text=True, cwd=REPO_ROOT, timeout=60,
                          env={**os.environ, hints.FIX_AFTER_VARIABLE: "x"})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == ("cannot grade: GENAI_HINT_FIX_AFTER='x' must be a whole number of attempts, "
                                   "1 or more (default 3)")


# -- the notebook: autograded cells (nbgrader's feedback) and a printed Check my work ------------

def test_autograded_cell_and_printed_check_my_work_never_show_the_fix_nor_count(monkeypatch, tmp_path, capsys):
    """Does an autograded cell print tiers 1-2 and the evidence, never tier 3, and does Check my work
    where no widget can be drawn (nbclient, the grading box) count no attempt?"""
    from grader import notebook

    state = tmp_path / "attempts.json"
    monkeypatch.setenv(hints.STATE_VARIABLE, str(state))
    monkeypatch.setenv("COURSE_WIDGETS", "plain")
    monkeypatch.setattr(notebook, "report_for", lambda *a, **k: report_of(failed(shown=3)))
    assert notebook.check_points("01-first-image", "pinned_base", tmp_path) == 0.0
    cell = capsys.readouterr().out
    assert TIERS[0] in cell and TIERS[1] in cell and "evidence:" in cell and TIERS[2] not in cell
    notebook.check_my_work("01-first-image", tmp_path)
    printed = capsys.readouterr().out
    assert "hint 3/3" not in printed and "FROM python:3.11-slim" not in printed
    assert not state.exists()


@functools.lru_cache(maxsize=1)
def _evidence_keys() -> frozenset[str]:
    """Every evidence key a `fail(...)` of the grader passes (keywords other than hint and notes),
    and the string keys of dict literals (evidence passed as `**evidence`)."""
    import ast

    keys = {"found", "build_error", "engine_error"}
    for path in [*(REPO_ROOT / "grader").glob("*.py"), *(REPO_ROOT / "grader" / "exercises").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "fail":
                keys |= {k.arg for k in node.keywords if k.arg and k.arg not in ("hint", "notes")}
            if isinstance(node, ast.Dict):
                keys |= {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    return frozenset(keys)


@pytest.mark.parametrize("check", list(_all_checks()))
def test_problem_templates_name_evidence_that_exists(check):
    """Does every tier-2 template name evidence some failure really passes (a typo would silently
    skip the template)?"""
    known = _evidence_keys()
    for template in check.tiers.problem:
        for name in {n for _, n, _, _ in string.Formatter().parse(template) if n}:
            assert name in known or name.split("_")[0] in known, f"{name!r} in {template!r}"


def test_build_error_is_the_line_that_says_what_went_wrong():
    log = ("#9 [5/6] RUN useradd --gid 1002 fastapi\n#9 0.235 useradd: group '1002' does not exist\n"
           "#9 ERROR: executor failed running [/bin/sh -c useradd]: exit code: 6")
    assert hints.build_error(log) == "useradd: group '1002' does not exist"
    assert hints.build_error('#5 [3/4] COPY requirement.txt .\n#5 ERROR: "/requirement.txt" not found') == \
        '"/requirement.txt" not found'
    assert hints.build_error("all good") is None
    tiers = hints.Tiers("idea (see x)", ("stopped at: {build_error}", "{found}"), "fix")
    assert hints.problem_text(tiers, {"log_tail": log}, "the build failed") == \
        "stopped at: useradd: group '1002' does not exist"
    nested = hints.Tiers("idea (see x)", ("owned by uid {data_owner_uid}", "{found}"), "fix")
    assert hints.problem_text(nested, {"data": {"owner_uid": 0}}, "m") == "owned by uid 0"


def test_check_my_work_escalates_per_click_and_show_all_hints_counts_nothing(monkeypatch, tmp_path, capsys):
    """In the widget, does each click count an attempt (tier 1, then 1-2), and does Show all hints
    show tier 3 of the last grading without grading or counting again?"""
    pytest.importorskip("ipywidgets")
    import IPython.display

    from grader import notebook

    state = tmp_path / "attempts.json"
    monkeypatch.setenv(hints.STATE_VARIABLE, str(state))
    monkeypatch.setenv(hints.FIX_AFTER_VARIABLE, "3")
    monkeypatch.setenv("COURSE_WIDGETS", "on")
    gradings = []
    monkeypatch.setattr(notebook, "report_for", lambda *a, **k: gradings.append(1) or report_of(failed()))
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objects, **kw: shown.extend(objects))
    notebook.check_my_work("01-first-image", tmp_path)
    check, all_hints = shown[0].children[0].children
    assert all_hints.description == "Show all hints" and all_hints.disabled
    check.click()
    first = capsys.readouterr().out
    assert "hint 1/3" in first and "hint 2/3" not in first and "Show all hints" in first
    check.click()
    second = capsys.readouterr().out
    assert "hint 2/3" in second and "hint 3/3" not in second and not all_hints.disabled
    all_hints.click()
    everything = capsys.readouterr().out
    assert "hint 3/3, the fix: write `FROM python:3.11-slim`" in everything
    assert len(gradings) == 2 and all_hints.disabled
    assert hints.AttemptStore(state).counts("01-first-image", "/tmp/ws-a") == {"pinned_base": 2}


def test_make_grade_passes_hints_all_on(tmp_path):
    """Does `make grade EX=... HINTS=all` ask the grader for every hint, and plain `make grade` not?"""
    def dry(*args: str) -> str:
        proc = subprocess.run(["make", "-n", "grade", *args], capture_output=True, text=True, cwd=REPO_ROOT,
                              timeout=60)
        return next(line for line in proc.stdout.splitlines() if "grader grade-all" in line)
    assert "--only 01-first-image --hints all" in dry("EX=01-first-image", "HINTS=all")
    assert "--hints" not in dry()
    help_text = subprocess.run(["make", "help"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60).stdout
    assert "HINTS=all" in help_text
