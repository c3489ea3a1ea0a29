"""02-storage on the engine: solution, starter, one known-bad run.sh per check, a failing and a
hanging run.sh, and Ctrl-C/SIGTERM in the middle of a grading."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import docker.errors
import pytest

from grader import registry
from grader.results import Status
from grader.workspace import materialize, overlay
from tests.grader.conftest import FIXTURES as FIXTURE_DIR, assert_fails_exactly, leftovers, table
from tests.helpers import snapshot

pytestmark = pytest.mark.docker
EXERCISE = "02-storage"

FIXTURES = [
    ("runs-wrong-name", "runs", "there is no container named genai-storage; run.sh created genai_storage"),
    ("named_volume-other-volume", "named_volume", "/data is the volume genai-grader-fixture-store; expected"),
    ("data_persists-volume-recreated", "data_persists", "is gone after running run.sh again"),
    ("tmpfs_cache-no-tmpfs", "tmpfs_cache", "/cache is not a mount"),
    ("models_read_only-writable-mount", "models_read_only", "but writable; expected it read-only"),
    ("localhost_only-all-interfaces", "localhost_only", "8000/tcp on 0.0.0.0:"),
]


def test_solution_scores_full_marks(grade_workspace):
    report = grade_workspace(EXERCISE)
    assert report.full_marks, table(report)


def test_starter_says_run_sh_is_not_written(grade_workspace):
    report = grade_workspace(EXERCISE, solution=False)
    assert report.score == 0
    assert "run.sh: not written yet" in report.check("runs").message
    assert all(c.status is Status.SKIPPED for c in report.checks[1:])


@pytest.mark.parametrize("fixture, check, fragment", FIXTURES, ids=[f[0] for f in FIXTURES])
def test_fixture_fails_exactly_its_check(grade_workspace, docker_client, fixture, check, fragment):
    report = grade_workspace(EXERCISE, fixture=fixture)
    assert_fails_exactly(report, check, fragment)
    with pytest.raises(docker.errors.NotFound):  # a volume run.sh made implicitly goes too
        docker_client.volumes.get("genai-grader-fixture-store")


def test_a_failing_run_sh_shows_its_status_and_output(grade_workspace):
    report = grade_workspace(EXERCISE, fixture="broken-script-fails")
    runs = report.check("runs")
    assert "run.sh exited with status 3" in runs.message and "giving up halfway" in runs.message


def test_a_hanging_run_sh_is_stopped_at_its_limit(grade_workspace):
    start = time.monotonic()
    report = grade_workspace(EXERCISE, fixture="broken-script-hangs", script_timeout=4)
    assert time.monotonic() - start < 30
    assert "run.sh did not finish within 4 s" in report.check("runs").message


def test_sigterm_during_grading_cleans_up(tmp_path, service_image, docker_client):
    """Does SIGTERM in the middle of run.sh stop the grading at once, exit 2, and remove what it made?"""
    workspace = materialize(EXERCISE, tmp_path / "ws", with_solution=True)
    overlay(FIXTURE_DIR / EXERCISE / "broken-script-hangs", workspace)
    before = snapshot(docker_client)
    proc = subprocess.Popen([sys.executable, "-m", "grader", "check", EXERCISE, "--workspace", str(workspace)],
                            env={**os.environ, "GENAI_SERVICE_IMAGE": service_image,
                                 "GENAI_GRADER_SCRIPT_TIMEOUT": "120"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    session = None
    while session is None and time.monotonic() < deadline and proc.poll() is None:
        try:  # wait until run.sh has created the container (it carries the grading's session label)
            session = docker_client.containers.get("genai-storage").labels.get("org.genai-course.session")
        except docker.errors.NotFound:
            time.sleep(0.2)
    assert session, f"run.sh never started the container: {proc.communicate(timeout=30)}"
    proc.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - stopped_at < 20
    assert proc.returncode == 2, (out, err)
    assert "interrupted" in err and out == ""
    assert leftovers(docker_client, session, EXERCISE, before) == []


def test_every_check_has_a_fixture():
    assert {f[1] for f in FIXTURES} == {c.id for c in registry.get(EXERCISE).checks}
