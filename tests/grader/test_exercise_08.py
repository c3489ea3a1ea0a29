"""08-capstone on the engine: the service's Dockerfile and compose.yaml score full marks, the first-draft
starter loses points, every check has a known-bad fixture that fails exactly it (the configuration's
checks without a stack), and a build that fails late is graded clearly."""

from __future__ import annotations

import pytest

from grader import registry
from grader.results import Status
from tests.grader.conftest import assert_fails_exactly, table
from tests.grader.grading_kit import grader_for

pytestmark = pytest.mark.docker
EXERCISE = "08-capstone"
# what can be judged from the configuration and the built image, without a stack
STATIC = ("config_valid", "non_root", "healthcheck", "read_only_rootfs", "resource_limits", "restart_policy",
          "localhost_only", "size_budget")

FIXTURES = [
    ("stack_healthy-no-model", "stack_healthy", "model directory /models does not exist", None),
    ("non_root-no-user", "non_root", "the server runs as root: the image sets no USER", STATIC),
    ("healthcheck-disabled", "healthcheck", "server disables its health check", STATIC),
    ("read_only_rootfs-writable", "read_only_rootfs", "the server's root file system is writable", STATIC),
    ("resource_limits-db-unlimited", "resource_limits", "db has no memory and no cpus limit", STATIC),
    ("restart_policy-none", "restart_policy", "server has restart policy no", STATIC),
    ("localhost_only-all-interfaces", "localhost_only", "server 8000/tcp on 0.0.0.0", STATIC),
    ("size_budget-ballast", "size_budget", "expected at most 280 MB over the base", STATIC),
    ("secret_file-token-in-environment", "secret_file", "the environment of server (API_TOKEN)",
     ("stack_healthy", "secret_file")),
    ("serves_under_load-tiny-queue", "serves_under_load", "were refused with 429",
     ("stack_healthy", "serves_under_load")),
]


@pytest.fixture
def grade08(tmp_path, engine, docker_client, base_options):
    return grader_for(EXERCISE, tmp_path, engine, docker_client, base_options)


def test_solution_scores_full_marks(grade08):
    report = grade08()
    assert report.full_marks, table(report)
    load = report.check("serves_under_load").evidence
    assert load["requests"] == 64 and not load["errors"] and load["seconds"] <= 15


def test_starter_runs_but_is_not_production_ready(grade08):
    """Does the first draft come up and serve the burst, yet lose every production point, each said why?"""
    report = grade08(solution=False)
    passed = {c.id for c in report.checks if c.status is Status.PASSED}
    assert passed == {"config_valid", "stack_healthy", "size_budget", "serves_under_load"}, table(report)
    assert "the environment of server (API_TOKEN)" in report.check("secret_file").message \
        or "has no /run/secrets/api_token" in report.check("secret_file").message


@pytest.mark.parametrize("fixture, check, fragment, checks", FIXTURES, ids=[f[0] for f in FIXTURES])
def test_fixture_fails_exactly_its_check(grade08, fixture, check, fragment, checks):
    report = grade08(fixture, checks=checks)
    assert_fails_exactly(report, check, fragment)


def test_a_build_that_fails_late(grade08):
    """Does a server image that fails at its last step fail the checks that need it, quoting the failure?"""
    report = grade08("broken-build-fails-late")
    stack = report.check("stack_healthy")
    assert stack.status is Status.FAILED and "late failure planted by the fixture" in stack.message
    assert report.check("secret_file").message == "skipped: needs stack_healthy, which failed"
    assert report.check("resource_limits").status is Status.PASSED


def test_every_check_has_a_fixture():
    assert {f[1] for f in FIXTURES} | {"config_valid"} == {c.id for c in registry.get(EXERCISE).checks}
