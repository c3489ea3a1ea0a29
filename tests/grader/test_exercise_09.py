"""09-scale-out on the engine: the reference earns full marks on a throwaway swarm, each known-bad
stack.yaml fails its check, and nothing is left (the engine never enters swarm mode).

Each grading makes its own cluster (a minute: three nodes, the images pushed to their registry);
a fixture is graded for its check alone (and what it needs), the reference for all of them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from grader.grading import grade
from grader.results import Status
from grader.workspace import materialize, overlay
from tests.grader.conftest import FIXTURES, leftovers, table
from tests.helpers import snapshot

pytestmark = [pytest.mark.docker, pytest.mark.slow]
EXERCISE = "09-scale-out"

FIXTURE_CASES = [
    ("stack_deploys-compose-version", "stack_deploys", "`docker stack deploy` refused stack.yaml"),
    ("replicated-one-replica", "replicated", "the server runs 1 replica(s) on 1 node(s)"),
    ("overlay_network-default-network", "overlay_network", "share no overlay network declared in stack.yaml"),
    ("swarm_secret-other-target", "swarm_secret", "the server gets /run/secrets/token"),
    ("rolling_update-stop-first", "rolling_update", "update_config.order is stop-first"),
    ("db_pinned-no-constraint", "db_pinned", "db has no placement constraint"),
    ("survives_node_loss-slow-restart", "survives_node_loss", "server replicas run elsewhere"),
]


@pytest.fixture
def grade_09(tmp_path, engine, docker_client, base_options, service_image):
    def run(fixture: str | None = None, only: tuple[str, ...] | None = None):
        workspace = materialize(EXERCISE, tmp_path / (fixture or "solution"), with_solution=True)
        if fixture is not None:
            overlay(FIXTURES / EXERCISE / fixture, workspace)
        before = snapshot(docker_client)
        report = grade(EXERCISE, workspace, options=replace(base_options, service_image=service_image),
                       engine=engine, only=only)
        left = leftovers(docker_client, report.session_id, EXERCISE, before)
        assert not left, f"the grading left {left}"
        assert docker_client.info()["Swarm"]["LocalNodeState"] == "inactive", "the engine entered swarm mode"
        return report
    return run


def test_solution_scores_full_marks(grade_09):
    report = grade_09()
    assert report.full_marks, table(report)


@pytest.mark.parametrize("fixture, check, fragment", FIXTURE_CASES, ids=[f[0] for f in FIXTURE_CASES])
def test_fixture_fails_its_check(grade_09, fixture, check, fragment):
    report = grade_09(fixture, only=(check,))
    result = report.check(check)
    assert result.status is Status.FAILED, table(report)
    assert fragment in result.message, f"{fragment!r} not in {result.message!r}"
    assert result.hint, "a failed check gives a hint"
    assert all(c.status is Status.PASSED for c in report.checks if c.id != check), table(report)
