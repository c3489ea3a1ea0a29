"""04-networking on the engine: solution, starter, and one known-bad run.sh per check."""

from __future__ import annotations

import pytest

from grader import registry
from grader.results import Status
from tests.grader.conftest import assert_fails_exactly, table

pytestmark = pytest.mark.docker
EXERCISE = "04-networking"

FIXTURES = [
    ("user_defined_bridge-default-bridge-only", "user_defined_bridge", "there is no network named genai-net"),
    ("service_attached-also-on-default-bridge", "service_attached", "also on the default bridge"),
    ("dns_by_name-client-on-default-bridge", "dns_by_name", "the name genai-service does not resolve"),
    ("localhost_only-all-interfaces", "localhost_only", "genai-service 8000/tcp on 0.0.0.0:"),
    ("isolated_batch-batch-on-network", "isolated_batch", "runs with network mode genai-net"),
]


def test_solution_scores_full_marks(grade_workspace):
    report = grade_workspace(EXERCISE)
    assert report.full_marks, table(report)


def test_starter_says_what_is_missing(grade_workspace):
    report = grade_workspace(EXERCISE, solution=False)
    assert report.score == 0
    bridge = report.check("user_defined_bridge")
    assert "there is no network named genai-net" in bridge.message and "not written yet" in bridge.message
    assert report.check("dns_by_name").status is Status.SKIPPED
    assert "there is no container named genai-batch" in report.check("isolated_batch").message


@pytest.mark.parametrize("fixture, check, fragment", FIXTURES, ids=[f[0] for f in FIXTURES])
def test_fixture_fails_exactly_its_check(grade_workspace, fixture, check, fragment):
    report = grade_workspace(EXERCISE, fixture=fixture)
    assert_fails_exactly(report, check, fragment)


def test_every_check_has_a_fixture():
    assert {f[1] for f in FIXTURES} == {c.id for c in registry.get(EXERCISE).checks}
