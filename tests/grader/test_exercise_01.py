"""01-first-image on the engine: the solution scores full marks, the starter loses points, every
check has a known-bad fixture that fails exactly it, and broken input is graded within its limits."""

from __future__ import annotations

import time

import pytest

from grader.results import Status
from tests.grader.conftest import assert_fails_exactly, table

pytestmark = pytest.mark.docker
EXERCISE = "01-first-image"

# fixture folder (tests/grader/fixtures/01-first-image/...), the check it fails, part of the message
FIXTURES = [
    ("builds-missing-file", "builds", "requirement.txt"),
    ("pinned_base-untagged", "pinned_base", "has no tag, which means `latest`"),
    ("slim_base-full-image", "slim_base", "expected a slim, alpine or distroless variant"),
    ("exposes_port-no-expose", "exposes_port", "exposes no port; expected 8000/tcp"),
    ("exec_form-shell-form", "exec_form", "is in shell form"),
    ("serves_http-loopback-host", "serves_http", "listens on 127.0.0.1:8000 inside the container"),
    ("no_pip_cache-cache-kept", "no_pip_cache", "`pip install -r requirements.txt` keeps its download cache"),
    ("deps_before_code-copy-all-first", "deps_before_code", "ran again instead of coming from the cache"),
]


def test_solution_scores_full_marks(grade_workspace):
    report = grade_workspace(EXERCISE)
    assert report.full_marks, table(report)
    assert report.score == report.max_score == 10


def test_starter_loses_points_with_sensible_messages(grade_workspace):
    """Does the untouched starter (a Dockerfile of TODO comments) fail, saying the Dockerfile is empty?"""
    report = grade_workspace(EXERCISE, solution=False)
    assert report.score == 0
    assert "holds no instructions yet" in report.check("pinned_base").message
    assert report.check("builds").status is Status.FAILED
    assert report.check("serves_http").message == "skipped: needs builds, which failed"


@pytest.mark.parametrize("fixture, check, fragment", FIXTURES, ids=[f[0] for f in FIXTURES])
def test_fixture_fails_exactly_its_check(grade_workspace, fixture_bases, fixture, check, fragment):
    report = grade_workspace(EXERCISE, fixture=fixture)
    assert_fails_exactly(report, check, fragment)


def test_hadolint_enriches_the_hint(grade_workspace, fixture_bases):
    report = grade_workspace(EXERCISE, fixture="exec_form-shell-form")
    assert "hadolint DL3025" in report.check("exec_form").hint


def test_syntax_error_is_a_clear_build_failure(grade_workspace):
    report = grade_workspace(EXERCISE, fixture="broken-syntax-error")
    builds = report.check("builds")
    assert builds.status is Status.FAILED
    assert "unknown instruction 'COPPY'" in builds.message and "line 5" in builds.message


def test_a_build_that_never_ends_is_stopped_at_its_limit(grade_workspace):
    """Is an endless RUN stopped at the build limit, named, and its BuildKit work cancelled?"""
    start = time.monotonic()
    report = grade_workspace(EXERCISE, fixture="broken-endless-build", build_timeout=5)
    assert time.monotonic() - start < 30
    builds = report.check("builds")
    assert builds.status is Status.FAILED
    assert "did not finish within 5 s" in builds.message and "RUN sleep 3600" in builds.message


def test_a_container_that_exits_at_once(grade_workspace):
    report = grade_workspace(EXERCISE, fixture="broken-exits-at-once")
    serves = report.check("serves_http")
    assert serves.status is Status.FAILED
    assert "stopped" in serves.message and "exit status 1" in serves.message
    assert "configuration missing" in serves.message  # its last logs are shown


def test_a_container_that_never_answers(grade_workspace):
    start = time.monotonic()
    report = grade_workspace(EXERCISE, fixture="broken-never-answers", start_timeout=3)
    assert time.monotonic() - start < 30
    serves = report.check("serves_http")
    assert serves.status is Status.FAILED
    assert "did not answer 200 within 3 s" in serves.message and "is running" in serves.message


def test_every_check_has_a_fixture():
    from grader import registry
    assert {f[1] for f in FIXTURES} == {c.id for c in registry.get(EXERCISE).checks}
