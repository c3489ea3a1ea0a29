"""Does the production image run hardened: uid 1001, read-only root, model mounted read-only, healthy?"""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import labels
from tests.service.dockerkit import (
    min_cosine_to_reference, remove, run_service, unique, wait_healthy, wait_ready,
)

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def data_volume(docker_client):
    volume = docker_client.volumes.create(unique("genai-test-svc-data"), labels=labels())
    yield volume
    remove(volume)


@pytest.fixture(scope="module")
def hardened(docker_client, service_image, models_dir, data_volume):
    """One container as production runs it: read-only root, tmpfs /tmp, a fresh named volume at /data."""
    container = run_service(docker_client, service_image, models_dir, volume=data_volume.name,
                            read_only=True, tmpfs={"/tmp": "size=64m"})
    try:
        wait_ready(container)
        yield container
    finally:
        remove(container)


def sh(container, script: str) -> tuple[int, str]:
    code, out = container.exec_run(["sh", "-c", script])
    return code, out.decode(errors="replace")


def test_image_config(docker_client, service_image):
    """Does the image declare user fastapi, port 8000, exec-form CMD, a Python HEALTHCHECK, no model?"""
    config = docker_client.images.get(service_image).attrs["Config"]
    assert config["User"] == "fastapi"
    assert "8000/tcp" in config["ExposedPorts"]
    assert config["Cmd"][0] == "uvicorn" and config["Entrypoint"] in (None, [])
    assert config["Healthcheck"]["Test"][:2] == ["CMD", "python"]
    assert "MODEL_DIR=/models" in config["Env"]


def test_runs_as_fastapi_1001(hardened):
    """Is the server process (PID 1) uid 1001, gid 1002, user fastapi with a nologin shell?"""
    code, out = sh(hardened, "grep -E '^(Uid|Gid):' /proc/1/status; id -un; getent passwd fastapi")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split()[1:] == ["1001"] * 4 and lines[1].split()[1:] == ["1002"] * 4
    assert lines[2] == "fastapi" and lines[3].endswith(":/usr/sbin/nologin")


def test_code_is_not_writable_but_data_is(hardened):
    """Can the service's user write /data (a fresh named volume) but not its code or the root fs?"""
    assert sh(hardened, "touch /data/probe && rm /data/probe")[0] == 0
    code, out = sh(hardened, "touch /code/app/probe")
    assert code != 0 and "Read-only file system" in out
    assert sh(hardened, "test -w /code/app/main.py")[0] != 0  # not writable even without --read-only
    assert sh(hardened, "stat -c %U /code/app/main.py")[1].strip() == "root"
    assert sh(hardened, "touch /tmp/probe")[0] == 0


def test_no_model_baked_in(hardened):
    code, out = sh(hardened, "find / -xdev \\( -name '*.onnx' -o -name '*.safetensors' \\) 2>/dev/null | head")
    assert out.strip() == "", out


def test_healthcheck_reports_healthy(hardened):
    wait_healthy(hardened)


def test_embed_matches_the_reference(hardened, models_dir):
    """Does /embed (24 sentences in one request) match the reference of the variant /info reports?"""
    variant, cosine = min_cosine_to_reference(hardened.base_url, models_dir)
    assert variant == "int8"
    assert cosine >= 0.999, cosine


def test_documents_survive_a_new_container(docker_client, service_image, models_dir, data_volume, hardened):
    """Is a document stored in one container read back from a new one on the same named volume?

    The second container also runs fp32 with --cpus 1: /info must report both.
    """
    created = httpx.post(f"{hardened.base_url}/documents", json={"id": "kept", "text": "named volumes persist"})
    assert created.status_code == 201, created.text
    remove(hardened)
    again = run_service(docker_client, service_image, models_dir, volume=data_volume.name, read_only=True,
                        tmpfs={"/tmp": "size=64m"}, environment={"MODEL_VARIANT": "fp32"}, nano_cpus=10**9)
    try:
        wait_ready(again)
        assert httpx.get(f"{again.base_url}/documents/kept").json() == {"id": "kept", "text": "named volumes persist"}
        info = httpx.get(f"{again.base_url}/info").json()
        assert info["variant"] == "fp32" and info["inference_threads"] == 1
        variant, cosine = min_cosine_to_reference(again.base_url, models_dir)
        assert variant == "fp32" and cosine >= 0.999, cosine
    finally:
        remove(again)


def test_missing_model_stops_with_a_clear_message(docker_client, service_image):
    """Without /models, does the container exit at once, saying what to mount?"""
    container = docker_client.containers.run(service_image, detach=True, name=unique("genai-test-svc-nomodel"),
                                             labels=labels())
    try:
        assert container.wait(timeout=60)["StatusCode"] != 0
        logs = container.logs().decode(errors="replace")
        assert "/models does not exist: mount the exported model directory" in logs, logs
    finally:
        remove(container)
