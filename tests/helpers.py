"""Small helpers shared by tests: labels, free ports, readiness waits."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

MANAGED = {"org.genai-course.managed": "true", "org.genai-course.session": "tests"}


def labels(**extra: str) -> dict[str, str]:
    return {**MANAGED, **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, container=None) -> str:
    """Poll until `url` answers 200; on timeout, show the container's state and logs."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return resp.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = exc
        if container is not None:
            container.reload()
            if container.status in ("exited", "dead"):
                break
        time.sleep(0.2)  # polling interval
    detail = ""
    if container is not None:
        container.reload()
        detail = f"\ncontainer {container.name} is {container.status}; last logs:\n" + \
            container.logs(tail=30).decode(errors="replace")
    raise AssertionError(f"{url} did not answer 200 within {timeout:.0f} s (last error: {last}){detail}")


def docker_build(context: Path, tag: str, dockerfile: str = "Dockerfile", *args: str) -> None:
    """BuildKit build through the CLI (docker-py cannot do BuildKit)."""
    cmd = ["docker", "build", "-q", "-t", tag, "-f", str(context / dockerfile), *args, str(context)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "DOCKER_BUILDKIT": "1"})
    if proc.returncode != 0:
        raise AssertionError(f"build of {tag} failed:\n{proc.stderr[-3000:]}")
