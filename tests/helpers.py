"""Small helpers shared by tests: labels, free ports, readiness waits, leftover snapshots."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from dockerkit.containers import GONE, container_state, describe
from dockerkit.http import http
from dockerkit.labels import MANAGED_LABEL, OWNER_LABELS, SESSION_LABEL
from dockerkit.net import free_port as free_port
from dockerkit.wait import WaitFailed, poll

MANAGED = {MANAGED_LABEL: "true", SESSION_LABEL: "tests"}


def labels(**extra: str) -> dict[str, str]:
    return {**MANAGED, **extra}


def wait_http(url: str, timeout: float = 60.0, container=None) -> str:
    """Poll until `url` answers 200 and return its body; on timeout, show the container's state and logs."""
    def probe():
        answer = http("GET", url, timeout=5)
        return answer if answer.status == 200 else None

    def stopped():
        if container is not None and container_state(container).get("Status") in GONE:
            return "the container stopped"
        return None

    try:
        return poll(probe, timeout=timeout, what=f"{url} answering 200", interval=0.2, stopped=stopped).text
    except WaitFailed as failed:
        detail = f"\n{describe(container, 30)}" if container is not None else ""
        raise AssertionError(f"{url} did not answer 200 within {timeout:.0f} s ({failed}){detail}") from None


def run_once(client: Any, image: str, command: list[str], **kwargs: Any) -> bytes:
    """`docker run --rm` that also removes the anonymous volumes the container made (docker-py's
    remove=True keeps them: an image with a VOLUME, postgres's PGDATA, would leave one per run)."""
    container = client.containers.run(image, command, detach=True, labels=labels(), **kwargs)
    try:
        status = container.wait(timeout=300)
        output: bytes = container.logs(stdout=True, stderr=True)
    finally:
        container.remove(force=True, v=True)
    if status.get("StatusCode") != 0:
        raise AssertionError(f"{command} in {image} exited {status.get('StatusCode')}:\n{output.decode()[-2000:]}")
    return output


def docker_build(context: Path, tag: str, dockerfile: str = "Dockerfile", *args: str) -> None:
    """BuildKit build through the CLI (docker-py cannot do BuildKit), labelled as the tests'."""
    flags = [f for key, value in MANAGED.items() for f in ("--label", f"{key}={value}")]
    cmd = ["docker", "build", "-q", "-t", tag, "-f", str(context / dockerfile), *flags, *args, str(context)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "DOCKER_BUILDKIT": "1"})
    if proc.returncode != 0:
        raise AssertionError(f"build of {tag} failed:\n{proc.stderr[-3000:]}")


# --------------------------------------------------------------------------- leftovers
# "Nothing is left" is checked on everything the engine holds, labelled or not: a snapshot of
# all containers, networks, volumes and images before, compared with after. In an engine other
# test processes share, the only resources forgiven are those that carry another owner's label
# (another grading's session, a lesson, the test run's own fixtures, a cache kept on purpose):
# what carries no owner label is counted, so an unlabelled anonymous volume or image a grading
# leaves cannot hide.

Snapshot = dict[str, dict[str, dict[str, str]]]


def snapshot(client: Any) -> Snapshot:
    """kind -> {name or id: labels} for every container, network, volume and image."""
    return {
        "container": {c.name: dict(c.labels or {}) for c in client.containers.list(all=True)},
        "network": {n.name: dict(n.attrs.get("Labels") or {}) for n in client.networks.list()},
        "volume": {v.name: dict(v.attrs.get("Labels") or {}) for v in client.volumes.list()},
        "image": {i.id: dict(i.labels or {}) for i in client.images.list(all=True)},
    }


def new_since(client: Any, before: Snapshot, owner: tuple[str, str] | None = None) -> list[str]:
    """What exists now and not in `before`, except what carries an owner label other than
    `owner` (key, value); with owner None, everything new counts."""
    found = []
    for kind, now in snapshot(client).items():
        for name, marks in now.items():
            if name in before[kind]:
                continue
            others = [k for k in OWNER_LABELS if k in marks and (k, marks[k]) != owner]
            if others and not (owner and marks.get(owner[0]) == owner[1]):
                continue
            found.append(f"{kind} {name[:24]}")
    return sorted(found)
