"""The nbgrader configuration and the instructor settings, without an engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from traitlets.config.loader import PyFileConfigLoader

from course.instructor import settings
from course.instructor.preprocessors import BoxExecute, HideHiddenTests, TrustedCrossCheck
from course.instructor.source import RELEASED_STUB
from course.manifest import load as load_course

ROOT = Path(__file__).resolve().parents[2]


def load_config(monkeypatch, **env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()


def test_course_and_folders(monkeypatch):
    """Does the config name the course, the repository as root and the generated source/ as the source?"""
    monkeypatch.delenv("GENAI_COURSE_ROOT", raising=False)
    monkeypatch.delenv("GENAI_EXCHANGE", raising=False)
    c = load_config(monkeypatch)
    assert c.CourseDirectory.course_id == "genai-docker"
    assert Path(c.CourseDirectory.root) == ROOT
    assert c.CourseDirectory.source_directory == "source"
    for step in ("release", "submitted", "autograded", "feedback"):
        assert getattr(c.CourseDirectory, f"{step}_directory") == step
    assert c.CourseDirectory.db_url == f"sqlite:///{ROOT / 'gradebook.db'}"
    assert Path(c.Exchange.root) == ROOT / "exchange"


def test_generated_folders_are_ignored_by_git():
    """Are nbgrader's generated folders, gradebook and exports kept out of git?"""
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    for entry in ("/source/", "release/", "submitted/", "autograded/", "feedback/", "exchange/", "gradebook.db",
                  "grades.csv", "grades-by-check.csv"):
        assert entry in ignored


def test_exchange_and_root_follow_the_environment(monkeypatch, tmp_path):
    """Can GENAI_EXCHANGE move the exchange, and GENAI_COURSE_ROOT the course folders?"""
    c = load_config(monkeypatch, GENAI_EXCHANGE=str(tmp_path / "ex"), GENAI_COURSE_ROOT=str(tmp_path / "c"))
    assert c.Exchange.root == str(tmp_path / "ex")
    assert c.CourseDirectory.root == str(tmp_path / "c")
    assert c.CourseDirectory.db_url == f"sqlite:///{tmp_path / 'c' / 'gradebook.db'}"


def test_learner_files_are_included_and_kept(monkeypatch):
    """Are the learner's files part of an assignment, and never overwritten at autograde?"""
    c = load_config(monkeypatch)
    assert c.CourseDirectory.include == ["*"]
    for pattern in (".ipynb_checkpoints", "__pycache__", ".git", ".venv"):
        assert pattern in c.CourseDirectory.ignore
    for exercise in load_course().exercises:
        assert c.Autograde.exclude_overwriting[exercise.id] == list(exercise.deliverables)
    assert "Dockerfile" in c.Autograde.exclude_overwriting["01-first-image"]
    assert "run.sh" in c.Autograde.exclude_overwriting["02-storage"]


def test_cells_may_run_as_long_as_a_build(monkeypatch):
    """Is the per-cell timeout long enough for docker builds (nbgrader's default is 30 s)?"""
    assert load_config(monkeypatch).Execute.timeout >= 900
    assert load_config(monkeypatch, GENAI_CELL_TIMEOUT="1200").Execute.timeout == 1200


def test_preprocessor_chains(monkeypatch):
    """Do execution, cross-check and feedback go through the course's preprocessors, in order?"""
    c = load_config(monkeypatch)
    autograde = c.Autograde.autograde_preprocessors
    assert autograde[0] is BoxExecute
    names = [p.__name__ for p in autograde]
    assert names.index("SaveAutoGrades") < names.index("TrustedCrossCheck") < names.index("AssignLatePenalties")
    assert "Execute" not in names  # never on the instructor's machine
    generate = [p.__name__ for p in c.GenerateAssignment.preprocessors]
    assert generate.index("ClearSolutions") < generate.index("ComputeChecksums")
    assert generate.index("ComputeChecksums") < generate.index("SaveCells") < generate.index("ClearHiddenTests")
    assert c.ClearSolutions.code_stub == {"python": RELEASED_STUB}  # a released show cell runs harmlessly
    assert c.CourseDirectory.source_directory == "source"  # generated at release, never exercises/
    assert HideHiddenTests in c.GenerateFeedback.preprocessors
    assert TrustedCrossCheck in autograde


@pytest.mark.parametrize("raw", ["zero", "-3", "0"])
def test_limits_reject_nonsense(monkeypatch, raw):
    """Is a limit that is not a positive number a clear error?"""
    monkeypatch.setenv("GENAI_BOX_PIDS", raw)
    with pytest.raises(ValueError, match="GENAI_BOX_PIDS"):
        settings.BoxLimits.from_env()


def test_limits_from_environment(monkeypatch):
    """Do the box limits follow the environment, with CPUs capped by the machine?"""
    monkeypatch.setenv("GENAI_BOX_MEMORY", "3g")
    monkeypatch.setenv("GENAI_BOX_CPUS", "512")
    monkeypatch.setenv("GENAI_NOTEBOOK_TIMEOUT", "60")
    limits = settings.BoxLimits.from_env()
    assert limits.memory == "3g" and limits.notebook_timeout == 60
    assert limits.cpus <= 512 and limits.cpus >= 1
    monkeypatch.setenv("GENAI_BOX_EGRESS", "everything")
    with pytest.raises(ValueError, match="public, open or none"):
        settings.BoxLimits.from_env()


def test_autograded_cells_name_the_checks_they_grade():
    """Is every autograded cell of every exercise notebook `check_<id>` of a real check, with its
    points? The trusted cross-check finds a cell's verdict by that name."""
    import nbformat

    from grader import registry
    from course.instructor.preprocessors import CHECK_PREFIX

    notebooks = [e for e in load_course().exercises if (ROOT / e.notebook).is_file()]
    assert notebooks, "no exercise notebook to check"
    for exercise in notebooks:
        checks = {c.id: c.points for c in registry.get(exercise.id).checks}
        nb = nbformat.read(ROOT / exercise.notebook, as_version=4)
        graded = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"] for c in nb.cells
                  if c.metadata.get("nbgrader", {}).get("grade")}
        assert graded, f"{exercise.id} has no autograded cell"
        for grade_id, points in graded.items():
            assert grade_id.startswith(CHECK_PREFIX), f"{exercise.id}: {grade_id} names no check"
            check = grade_id[len(CHECK_PREFIX):]
            assert check in checks, f"{exercise.id}: {grade_id} grades no check of the grader"
            assert points == checks[check], f"{exercise.id}: {grade_id} is worth {points}, the check {checks[check]}"
