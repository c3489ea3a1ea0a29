"""The grading session owns what a grading creates: labels, fixed names, cleanup in every case."""

from __future__ import annotations

import threading
import time
import uuid

import docker.errors
import pytest

from grader.errors import GradingBusy, ResourceInTheWay
from grader.lock import grading_lock
from grader.options import GradingOptions
from grader.registry import FixedNames
from grader.runner import GradingSession
from tests.helpers import labels, new_since, snapshot


def test_lock_serialises_and_times_out(tmp_path):
    """Does a second grading wait for the lock, and give up with a clear error after its limit?"""
    path = tmp_path / "grader.lock"
    held = threading.Event()
    release = threading.Event()

    def holder():
        with grading_lock(5, path):
            held.set()
            release.wait(10)
    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    try:
        start = time.monotonic()
        with pytest.raises(GradingBusy, match="another grading"):
            with grading_lock(0.6, path):
                pass
        assert 0.5 < time.monotonic() - start < 5
    finally:
        release.set()
        thread.join()
    with grading_lock(1, path):  # free again
        pass


@pytest.mark.docker
def test_claim_refuses_a_taken_name_and_removes_nothing(engine, docker_client):
    name = f"genai-test-claim-{uuid.uuid4().hex[:8]}"
    volume = docker_client.volumes.create(name, labels={"org.genai-course.managed": "true"})
    try:
        with GradingSession(engine, GradingOptions()) as session:
            with pytest.raises(ResourceInTheWay) as err:
                session.claim(FixedNames(volumes=(name,)))
        assert name in str(err.value) and f"docker volume rm {name}" in str(err.value)
        docker_client.volumes.get(name)  # still there
    finally:
        volume.remove(force=True)


@pytest.mark.docker
def test_everything_is_removed_after_an_exception(engine, docker_client, tmp_path):
    """Are the containers, volumes, networks and images a session made gone when a check blows up,
    including what a script created through the labelling docker wrapper?"""
    tag = uuid.uuid4().hex[:8]
    script = tmp_path / "run.sh"
    script.write_text(f"set -e\ndocker -l error volume create genai-test-vol-{tag} >/dev/null\n"
                      f"docker network create genai-test-net-{tag} >/dev/null\n"
                      f"docker container create --name genai-test-ctr-{tag} python:3.11-slim true >/dev/null\n")
    before = snapshot(docker_client)
    with pytest.raises(RuntimeError, match="boom"):
        with GradingSession(engine, GradingOptions(script_timeout=60)) as session:
            session.run("python:3.11-slim", command=["sleep", "60"])
            session.volume()
            result = session.run_script(tmp_path, "run.sh", {})
            assert result.ok, result.output
            labels = docker_client.volumes.get(f"genai-test-vol-{tag}").attrs["Labels"]
            assert labels["org.genai-course.session"] == session.id
            assert docker_client.networks.get(f"genai-test-net-{tag}").attrs["Labels"][
                "org.genai-course.managed"] == "true"
            raise RuntimeError("boom")
    label = {"label": f"org.genai-course.session={session.id}"}
    assert docker_client.containers.list(all=True, filters=label) == []
    assert docker_client.volumes.list(filters=label) == []
    assert docker_client.networks.list(filters=label) == []
    for getter, name in ((docker_client.volumes.get, "vol"), (docker_client.networks.get, "net"),
                         (docker_client.containers.get, "ctr")):
        with pytest.raises(docker.errors.NotFound):
            getter(f"genai-test-{name}-{tag}")
    assert new_since(docker_client, before, ("org.genai-course.session", session.id)) == []


@pytest.mark.docker
def test_containers_have_limits_and_no_privileges(engine):
    with GradingSession(engine, GradingOptions()) as session:
        container = session.run("python:3.11-slim", command=["sleep", "30"])
        host = container.attrs["HostConfig"]
        assert host["Memory"] > 0 and host["NanoCpus"] > 0 and host["PidsLimit"] > 0
        assert host["Privileged"] is False
        assert "no-new-privileges" in host["SecurityOpt"]


@pytest.mark.docker
def test_anonymous_volumes_are_removed_too(engine, docker_client, tmp_path):
    """Does a run.sh that mounts `-v /data` leave no volume behind, also when the script itself
    removes its container without -v before running it again (as a learner's run.sh may)?"""
    tag = uuid.uuid4().hex[:8]
    (tmp_path / "run.sh").write_text(
        "set -e\n"
        f"docker run -d --name genai-test-anon-{tag} -v /data python:3.11-slim sleep 60 >/dev/null\n"
        f"docker rm -f genai-test-anon-{tag} >/dev/null\n"  # orphans its anonymous volume
        f"docker run -d --name genai-test-anon-{tag} -v /data python:3.11-slim sleep 60 >/dev/null\n")
    before = snapshot(docker_client)
    with GradingSession(engine, GradingOptions(script_timeout=60)) as session:
        result = session.run_script(tmp_path, "run.sh", {})
        assert result.ok, result.output
        mounts = docker_client.containers.get(f"genai-test-anon-{tag}").attrs["Mounts"]
        assert [m["Type"] for m in mounts] == ["volume"]
        # a long grading: the engine keeps only its last 256 events, and these push the mounts out
        for n in range(150):
            docker_client.volumes.create(f"genai-test-churn-{tag}-{n}", labels=labels()).remove()
    assert session.cleanup_errors == []
    assert new_since(docker_client, before, ("org.genai-course.session", session.id)) == []


@pytest.mark.docker
def test_images_a_script_builds_are_removed(engine, docker_client, tmp_path):
    """Does an image that run.sh builds (docker build, docker buildx build) carry the session's label
    and go when the session ends?"""
    tag = uuid.uuid4().hex[:8]
    (tmp_path / "Dockerfile").write_text(f"FROM python:3.11-slim\nRUN echo {tag}\n")
    (tmp_path / "run.sh").write_text(
        f"set -e\ndocker build -q -t genai-test-build-{tag} . >/dev/null\n"
        f"docker buildx build -q -t genai-test-buildx-{tag} . >/dev/null\n")
    before = snapshot(docker_client)
    with GradingSession(engine, GradingOptions(script_timeout=120)) as session:
        result = session.run_script(tmp_path, "run.sh", {})
        assert result.ok, result.output
        for name in ("build", "buildx"):
            labels = docker_client.images.get(f"genai-test-{name}-{tag}").labels
            assert labels["org.genai-course.session"] == session.id
    assert session.cleanup_errors == []
    for name in ("build", "buildx"):
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(f"genai-test-{name}-{tag}")
    assert new_since(docker_client, before, ("org.genai-course.session", session.id)) == []
