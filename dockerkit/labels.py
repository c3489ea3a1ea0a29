"""Labels on what the course creates, and removal by label ("reaping").

Everything the course creates carries `org.genai-course.managed=true` and one
owner label: a grading session, a lesson, a test run. Reaping removes what
carries the owner label, plus names the owner was given, and never anything
else. Volumes a container creates implicitly (`-v /data`, a VOLUME in its
image) carry no label; `volumes_mounted` finds them through the engine's
events, also after their container was removed without `-v`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Collection, Iterable

import docker.errors

MANAGED_LABEL = "org.genai-course.managed"
SESSION_LABEL = "org.genai-course.session"
LESSON_LABEL = "org.genai-course.lesson"
CACHE_LABEL = "org.genai-course.cache"  # kept on purpose between runs (a prebuilt image), by role
OWNER_LABELS = (SESSION_LABEL, LESSON_LABEL, CACHE_LABEL)
KINDS = ("containers", "networks", "volumes", "images")


def owner_labels(key: str, value: str) -> dict[str, str]:
    return {MANAGED_LABEL: "true", key: value}


@dataclass
class Reaped:
    """What a reaping removed, by kind, and what it could not remove (with the engine's reason)."""

    removed: dict[str, list[str]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(names)} {kind}" for kind, names in self.removed.items() if names]
        return ", ".join(parts) or "nothing"


def volumes_mounted(client: Any, label: str, since: float, until: float) -> set[str]:
    """Names of the volumes that containers carrying `label` mounted between two times (epoch
    seconds), including anonymous ones and those of containers removed meanwhile."""
    # as "seconds.fraction" strings: docker-py truncates datetimes to whole seconds
    window = {"since": f"{since:.6f}", "until": f"{until:.6f}"}
    ours = {
        e["Actor"]["ID"]
        for e in client.events(decode=True, **window, filters={"type": "container", "event": "create", "label": label})
    }
    if not ours:
        return set()
    return {
        e["Actor"]["ID"]
        for e in client.events(decode=True, **window, filters={"type": "volume", "event": "mount"})
        if (e["Actor"].get("Attributes") or {}).get("container") in ours
    }


def reap(
    client: Any,
    label: str,
    *,
    containers: Iterable[str] = (),
    networks: Iterable[str] = (),
    volumes: Iterable[str] = (),
    images: Iterable[str] = (),
    spare: Collection[str] | None = None,
    force_images: bool = True,
) -> Reaped:
    """Remove what carries `label` ("key=value") and the resources named.

    Containers go with their anonymous volumes. With `spare` given, the named volumes the
    removed containers mount go too, unless their name is in `spare` (what existed before).
    Without `force_images`, an image a container still uses stays (and is reported)."""
    flt = {"label": label}
    done = Reaped()

    def attempt(kind: str, name: str, action: Any) -> None:
        try:
            action()
            done.removed[kind].append(name)
        except docker.errors.NotFound:
            pass  # gone meanwhile
        except Exception as exc:  # keep reaping; say what stayed and why
            done.problems.append(f"{kind[:-1]} {name}: {getattr(exc, 'explanation', None) or exc}")

    found = {c.id: c for c in client.containers.list(all=True, filters=flt)}
    for name in containers:
        try:
            c = client.containers.get(name)
            found[c.id] = c
        except docker.errors.NotFound:
            pass
    mounted = {
        m.get("Name")
        for c in found.values()
        for m in c.attrs.get("Mounts", [])
        if m.get("Type") == "volume" and m.get("Name")
    }
    for c in found.values():
        attempt("containers", c.name, lambda c=c: c.remove(force=True, v=True))

    nets = {n.id: n for n in client.networks.list(filters=flt)}
    for name in networks:
        for n in client.networks.list(names=[name]):  # names= is a prefix filter
            if n.name == name:
                nets[n.id] = n
    for n in nets.values():
        try:
            n.reload()
            attached = list((n.attrs.get("Containers") or {}).values())
        except docker.errors.NotFound:
            continue
        for a in attached:  # an unlabelled container on our network would block its removal
            try:
                n.disconnect(a["Name"], force=True)
            except docker.errors.APIError as exc:
                done.problems.append(f"container {a['Name']} on {n.name}: {exc.explanation or exc}")
        attempt("networks", n.name, n.remove)

    names = {v.name for v in client.volumes.list(filters=flt)} | set(volumes)
    if spare is not None:
        names |= {v for v in mounted if v not in spare}
    for name in sorted(names):
        attempt("volumes", name, lambda name=name: client.volumes.get(name).remove(force=True))

    refs = list(images)
    for image in client.images.list(filters=flt):
        refs += image.tags or [image.id]  # by tag, so that each name goes; the image goes with its last
    for ref in dict.fromkeys(refs):
        attempt("images", ref, lambda ref=ref: client.images.remove(ref, force=force_images))
    return done
