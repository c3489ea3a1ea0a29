"""The grading box on the real engine: what a submission inside it can and cannot reach."""

from __future__ import annotations

import socket
import uuid

import pytest

from course.instructor import settings
from course.instructor.box import GradingBox, host_addresses
from course.instructor.errors import BoxError, BoxTimeout

pytestmark = pytest.mark.docker


def sh(box: GradingBox, script: str, timeout: float = 120) -> str:
    result = box.run(["sh", "-c", script], timeout=timeout)
    return result.stdout.decode() + result.stderr.decode()


@pytest.fixture
def sentinel(docker_client):
    """A container on the instructor's engine that no box may see."""
    name = f"nbg-sentinel-{uuid.uuid4().hex[:8]}"
    container = docker_client.containers.create("python:3.11-slim", ["true"], name=name,
                                                labels={"org.genai-course.managed": "true",
                                                        "org.genai-course.session": "tests"})
    yield name
    container.remove(force=True)


@pytest.fixture
def listener():
    """A TCP service on every address of this machine, as an instructor's Jupyter might be."""
    server = socket.socket()
    server.bind(("0.0.0.0", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


def test_a_submission_in_a_box_reaches_nothing_of_the_instructor(docker_client, box_image, tmp_path, sentinel,
                                                                 listener, no_box_left_behind):
    """Inside a box: no host engine, no host files, no host services, no way up to root -- but a
    working engine (builds aside, what the grader needs: networks, published ports, bind mounts)?"""
    canary = tmp_path / "canary.txt"
    canary.write_text(f"CANARY-{uuid.uuid4().hex}")
    course = tmp_path / "course"
    course.mkdir()
    (course / "grader.py").write_text("TRUSTED = True\n")
    with GradingBox(docker_client, box_image, name="isolation-test") as box:
        box.load_images(["python:3.11-slim"])
        box.put_tree(course, "/course/code", read_only=True)
        identity = sh(box, "id -u; grep CapEff /proc/self/status; touch /course/code/grader.py 2>&1 || echo RO")
        assert identity.splitlines()[0] == "1000" and "0000000000000000" in identity and "RO" in identity

        engine = sh(box, "docker ps -a --format '{{.Names}}'; docker info -f '{{.SecurityOptions}}'")
        assert sentinel not in engine and "rootless" in engine

        hostile = sh(box, f"""docker run --rm --cap-add ALL --security-opt seccomp=unconfined -v /:/host \
            python:3.11-slim sh -c '
              cat /host{canary} 2>&1 | head -1
              echo x > /proc/sys/kernel/core_pattern 2>/dev/null && echo CORE_PATTERN_WRITTEN
              mkdir -p /mnt/c && mount -t cgroup -o memory none /mnt/c 2>/dev/null && echo CGROUP_MOUNTED
              touch /host/etc/passwd 2>/dev/null && echo BOX_ROOT_WRITTEN
              echo done'""")
        assert "done" in hostile
        for leak in (canary.read_text(), "CORE_PATTERN_WRITTEN", "CGROUP_MOUNTED", "BOX_ROOT_WRITTEN"):
            assert leak not in hostile
        assert "No such file" in hostile  # the instructor's path does not exist in the box

        probes = "; ".join(f"s=socket.socket(); s.settimeout(3); print('{a}', s.connect_ex(('{a}', {listener})))"
                           for a in host_addresses())
        reached = sh(box, f"python3 -c \"import socket; {probes}\"")
        assert host_addresses() and all(line.split()[-1] != "0" for line in reached.splitlines()), reached

        served = sh(box, """docker network create n1 >/dev/null
            docker run -d --name web --network n1 -p 127.0.0.1:18080:8000 -v /course/code:/srv:ro -w /srv \
              python:3.11-slim python -m http.server 8000 >/dev/null
            python3 - <<'EOF'
import time, urllib.request
for _ in range(100):
    try:
        print(urllib.request.urlopen("http://127.0.0.1:18080/grader.py", timeout=2).read().decode()); break
    except OSError:
        time.sleep(0.2)
EOF
            docker run --rm --network n1 python:3.11-slim python -c \
              "import urllib.request; print(urllib.request.urlopen('http://web:8000/grader.py').status)"
            """)
        assert "TRUSTED = True" in served and "200" in served


def test_work_past_its_limit_removes_the_box(docker_client, box_image, no_box_left_behind):
    """Is a command that runs past its limit stopped by removing the whole box, at once?"""
    with GradingBox(docker_client, box_image, name="timeout-test") as box:
        with pytest.raises(BoxTimeout, match="2 s limit"):
            box.run(["sleep", "60"], timeout=2)
        assert box.container_id is None


def test_a_box_that_cannot_start_says_why(docker_client, box_image, no_box_left_behind):
    """Does a box whose engine never comes up fail with its log, and leave nothing?"""
    limits = settings.BoxLimits(egress="bogus", start_timeout=20)  # refused by box-init.sh
    with pytest.raises(BoxError, match="unknown BOX_EGRESS=bogus"):
        with GradingBox(docker_client, box_image, name="broken-test", limits=limits):
            pass
