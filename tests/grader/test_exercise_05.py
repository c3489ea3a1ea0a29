"""05-compose on the engine: the service's compose files score full marks, the starter loses points,
every check has a known-bad fixture that fails exactly it, and broken input is graded in its limits.

Checks that read the configuration are proven with the configuration checks alone (seconds, no stack);
the experiments on the running stack with the stack and the one check (see grading_kit.grade_only)."""

from __future__ import annotations

import time

import pytest

from grader import registry
from grader.errors import ResourceInTheWay
from grader.options import MANAGED_LABEL
from grader.results import Status
from tests.grader.conftest import assert_fails_exactly, table
from tests.grader.grading_kit import grader_for
from tests.helpers import new_since, snapshot

pytestmark = pytest.mark.docker
EXERCISE = "05-compose"
CONFIG_CHECKS = ("config_valid", "user_network", "depends_healthy", "localhost_only", "override_dev", "watch")

# fixture, the check it fails, part of the message, the checks graded (None: all of them)
FIXTURES = [
    ("config_valid-invalid-yaml", "config_valid", "compose.override.yaml config` failed", None),
    ("user_network-db-on-default", "user_network", "db is on the default network; expected both services on "
                                                   "genai-net", CONFIG_CHECKS),
    ("depends_healthy-service-started", "depends_healthy", "depends on db with condition service_started",
     CONFIG_CHECKS),
    ("localhost_only-all-interfaces", "localhost_only", "server 8000/tcp on 0.0.0.0", CONFIG_CHECKS),
    ("override_dev-no-bind-mount", "override_dev", "bind-mounts nothing from the workspace", CONFIG_CHECKS),
    ("watch-wrong-target", "watch", "puts app/main.py at /app/main.py, but the image runs /code/app/main.py",
     CONFIG_CHECKS),
    ("secret_file-token-in-environment", "secret_file", "the environment of server (API_TOKEN)",
     ("stack_healthy", "secret_file")),
    ("server_uses_db-sqlite", "server_uses_db", "is gone after the server was recreated",
     ("stack_healthy", "server_uses_db")),
    ("db_volume-wrong-path", "db_volume", "/var/lib/postgresql/data is an anonymous volume",
     ("stack_healthy", "db_volume")),
]


@pytest.fixture
def grade05(tmp_path, engine, docker_client, base_options):
    return grader_for(EXERCISE, tmp_path, engine, docker_client, base_options)


def test_solution_scores_full_marks(grade05):
    """Do service/compose.yaml and compose.override.yaml earn every point, the experiments included?"""
    report = grade05()
    assert report.full_marks, table(report)
    assert report.score == report.max_score == 12


def test_starter_loses_points_with_sensible_messages(grade05):
    """Does the TODO starter stay valid, start nothing healthy, and say why (the services' own logs)?"""
    report = grade05(solution=False)
    assert report.check("config_valid").status is Status.PASSED
    stack = report.check("stack_healthy").message
    assert "POSTGRES_PASSWORD" in stack and "model directory /models does not exist" in stack
    assert report.check("user_network").message.startswith("there is no network genai-net")
    assert report.check("secret_file").message == "skipped: needs stack_healthy, which failed"
    assert report.score == 1


@pytest.mark.parametrize("fixture, check, fragment, checks", FIXTURES, ids=[f[0] for f in FIXTURES])
def test_fixture_fails_exactly_its_check(grade05, fixture, check, fragment, checks):
    report = grade05(fixture, checks=checks)
    assert_fails_exactly(report, check, fragment)


def test_a_stack_that_never_becomes_healthy_is_stopped_at_its_limit(grade05):
    """Is `up --wait` given up after the start limit, with each service's state in the message, and
    are the checks that need the stack skipped?"""
    start = time.monotonic()
    report = grade05("stack_healthy-never-healthy", start_timeout=8)
    assert time.monotonic() - start < 45
    assert_fails_exactly(report, "stack_healthy", "`docker compose up --wait` was stopped after 16 s")
    assert "db is running, health starting" in report.check("stack_healthy").message


def test_invalid_yaml_is_graded_at_once(grade05):
    start = time.monotonic()
    report = grade05("config_valid-invalid-yaml")
    assert time.monotonic() - start < 20
    assert "yaml" in report.check("config_valid").message.lower()
    assert report.check("stack_healthy").message == "skipped: needs config_valid, which failed"


def test_a_fixed_name_that_exists_stops_the_grading(grade05, docker_client):
    """A network named with `name:` that already exists: does grading stop (exit 2) naming it, and
    leave it alone?"""
    network = docker_client.networks.create("genai-grader-fixednet-test", labels={MANAGED_LABEL: "true"})
    try:
        with pytest.raises(ResourceInTheWay, match="a network named genai-grader-fixednet-test already exists"):
            grade05("fixed-network-name", checks=("stack_healthy",))
        network.reload()  # still there
    finally:
        network.remove()


def test_a_fixed_name_is_claimed_and_removed(grade05, docker_client):
    report = grade05("fixed-network-name", checks=("stack_healthy",))
    assert report.full_marks, table(report)
    assert not docker_client.networks.list(names=["genai-grader-fixednet-test"])


def test_every_check_has_a_fixture():
    assert {f[1] for f in FIXTURES} | {"stack_healthy"} == {c.id for c in registry.get(EXERCISE).checks}


def test_sigterm_while_the_stack_starts_removes_the_project(tmp_path, docker_client):
    """SIGTERM in the middle of `docker compose up`: does the grader exit 2 and remove the project,
    its containers, network and volumes?"""
    import signal
    import subprocess
    import sys

    from grader.options import REPO_ROOT
    from tests.grader.grading_kit import workspace_for

    def projects() -> set[str]:
        found = docker_client.containers.list(all=True, filters={"label": "com.docker.compose.project"})
        return {c.labels["com.docker.compose.project"] for c in found
                if c.labels["com.docker.compose.project"].startswith("genai-grade-")}

    before = projects()
    workspace = workspace_for(EXERCISE, tmp_path / "ws")
    everything = snapshot(docker_client)
    proc = subprocess.Popen([sys.executable, "-m", "grader", "check", EXERCISE, "--workspace", str(workspace)],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (projects() - before) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        started = projects() - before
        assert started, "the grading never started its stack"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2 and "interrupted" in err
    project = started.pop()
    label = {"label": f"com.docker.compose.project={project}"}
    assert not docker_client.containers.list(all=True, filters=label)
    assert not docker_client.networks.list(filters=label) and not docker_client.volumes.list(filters=label)
    session = {"label": f"org.genai-course.session={project.removeprefix('genai-grade-')}"}
    assert not docker_client.images.list(filters=session)
    assert new_since(docker_client, everything, ("org.genai-course.session", project.removeprefix("genai-grade-"))) == []
