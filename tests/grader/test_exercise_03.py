"""03-permissions on the engine: solution, starter (runs as root), and one known-bad fixture per check."""

from __future__ import annotations

import pytest

from grader import registry
from grader.results import Status
from tests.grader.conftest import assert_fails_exactly, table

pytestmark = [pytest.mark.docker, pytest.mark.slow]  # builds the service's dependencies
EXERCISE = "03-permissions"

FIXTURES = [
    ("builds-group-missing", "builds", "useradd: group '1002' does not exist"),
    ("non_root-no-user-switch", "non_root", "the image's user is not set, so root"),
    ("user_ids-default-ids", "user_ids", "is fastapi (uid 1000, gid 1000); expected fastapi (uid 1001, gid 1002)"),
    ("no_login_shell-bash", "no_login_shell", "fastapi's shell is /bin/bash; expected /usr/sbin/nologin"),
    ("code_read_only-code-owned-by-user", "code_read_only", "can write /code/app/"),
    ("data_writable-data-owned-by-root", "data_writable", "cannot write /data on a fresh named volume (owner uid 0"),
    ("serves_http-wrong-app", "serves_http", "stopped"),
]


def test_solution_scores_full_marks(grade_workspace):
    report = grade_workspace(EXERCISE)
    assert report.full_marks, table(report)


def test_starter_runs_as_root_and_loses_points(grade_workspace):
    """Does the starter build and serve, but fail non_root, so that the user checks wait for it?"""
    report = grade_workspace(EXERCISE, solution=False)
    assert report.check("builds").status is Status.PASSED
    assert report.check("serves_http").status is Status.PASSED
    assert "not set, so root" in report.check("non_root").message
    assert report.check("user_ids").message == "skipped: needs non_root, which failed"
    assert 0 < report.score < report.max_score


@pytest.mark.parametrize("fixture, check, fragment", FIXTURES, ids=[f[0] for f in FIXTURES])
def test_fixture_fails_exactly_its_check(grade_workspace, fixture, check, fragment):
    report = grade_workspace(EXERCISE, fixture=fixture)
    assert_fails_exactly(report, check, fragment)


def test_a_service_that_exits_at_once_shows_its_logs(grade_workspace):
    """When the service dies at start, are its exit status and last logs in the message, and is the
    user still judged (from a probe container) rather than failed for it?"""
    report = grade_workspace(EXERCISE, fixture="serves_http-wrong-app")
    message = report.check("serves_http").message
    assert "exit status" in message and 'Attribute "application" not found' in message
    assert "a probe container" in report.check("non_root").message


def test_every_check_has_a_fixture():
    assert {f[1] for f in FIXTURES} == {c.id for c in registry.get(EXERCISE).checks}
