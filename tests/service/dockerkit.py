"""What the service's Docker tests share: running the image with the model, polling its health."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

from tests.helpers import free_port, labels, wait_http

CONTAINER_PORT = "8000/tcp"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run_service(docker_client, image: str, models_dir: Path, *, volume: str | None = None,
                name_prefix: str = "genai-test-svc", **options):
    """Start the image as the course runs it: model read-only at /models, port on 127.0.0.1."""
    volumes = {str(models_dir): {"bind": "/models", "mode": "ro"}}
    if volume:
        volumes[volume] = {"bind": "/data", "mode": "rw"}
    port = free_port()
    container = docker_client.containers.run(
        image, detach=True, name=unique(name_prefix), labels=labels(), volumes=volumes,
        ports={CONTAINER_PORT: ("127.0.0.1", port)}, mem_limit="1g", pids_limit=256, **options)
    container.base_url = f"http://127.0.0.1:{port}"
    return container


def wait_ready(container, timeout: float = 60.0) -> None:
    wait_http(f"{container.base_url}/health", timeout=timeout, container=container)


def wait_healthy(container, timeout: float = 60.0) -> None:
    """Poll Docker's own view: the image's HEALTHCHECK must report healthy."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        container.reload()
        status = container.attrs["State"].get("Health", {}).get("Status")
        if status == "healthy" or container.status == "exited":
            break
        time.sleep(0.5)  # polling interval (the check itself runs every 5 s)
    if status != "healthy":
        log = container.attrs["State"].get("Health", {}).get("Log", [])[-3:]
        raise AssertionError(f"{container.name} is {container.status}, health {status}; last checks: "
                             f"{json.dumps(log)[:1500]}\nlogs:\n{container.logs(tail=30).decode(errors='replace')}")


def remove(*things) -> None:
    for thing in things:
        if thing is None:
            continue
        try:
            thing.remove(force=True)  # containers and volumes alike
        except Exception:  # already gone: teardown must not hide the test's own failure
            pass


def embed(base_url: str, texts: list[str], token: str | None = None) -> np.ndarray:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(f"{base_url}/embed", json={"inputs": texts}, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    return np.asarray(response.json(), dtype=np.float32)


def min_cosine_to_reference(base_url: str, models_dir: Path, token: str | None = None) -> tuple[str, float]:
    """The grader's embeds_correctly: /embed vs the reference of the variant /info reports."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    variant = httpx.get(f"{base_url}/info", headers=headers, timeout=10).json()["variant"]
    reference = json.loads((models_dir / "reference.json").read_text())
    got = embed(base_url, reference["sentences"], token)
    expected = np.asarray(reference["embeddings"][variant], dtype=np.float32)
    return variant, float(np.sum(got * expected, axis=1).min())
