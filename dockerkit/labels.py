"""Labels on what the course creates, and removal by label ("reaping").

Everything the course creates carries `org.genai-course.managed=true` and one
owner label: a grading session, a lesson, a test run. Reaping removes what
carries the owner label, plus names the owner was given, and never anything
else. Volumes a container creates implicitly (`-v /data`, a VOLUME in its
image) carry no label; `MountWatch` finds them through the engine's events,
also after their container was removed without `-v`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
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
    seconds), from the engine's event history, which holds only its last 256 events: for a
    window longer than a moment, `MountWatch` follows the live stream instead."""
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


class MountWatch:
    """While open, follows the engine's event stream for the volumes that containers carrying
    `label` mount: anonymous ones (`-v /data`, an image's VOLUME) carry no label, and a container
    removed without -v leaves no trace to find them by at the end."""

    def __init__(self, client: Any, label: str) -> None:
        self.client = client
        self.label = label
        self.started = time.time()
        self._ours: set[str] = set()
        self._mounts: set[tuple[str, str]] = set()  # (volume, container id)
        self._stop = threading.Event()
        self._streams: list[Any] = []
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> MountWatch:
        follow = (
            ({"type": "container", "event": "create", "label": self.label}, lambda e: self._ours.add(e["Actor"]["ID"])),
            (
                {"type": "volume", "event": "mount"},
                lambda e: self._mounts.add(
                    (e["Actor"]["ID"], (e["Actor"].get("Attributes") or {}).get("container", ""))
                ),
            ),
        )
        for filters, record in follow:
            thread = threading.Thread(
                target=self._follow, args=(filters, record), daemon=True, name="genai-mount-watch"
            )
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _follow(self, filters: dict[str, str], record: Callable[[dict[str, Any]], None]) -> None:
        since = self.started - 1.0
        while not self._stop.is_set():
            try:
                stream = self.client.events(decode=True, since=f"{since:.6f}", filters=filters)
                self._streams.append(stream)
                for event in stream:
                    since = max(since, event.get("timeNano", 0) / 1e9)
                    record(event)
            except Exception:  # the stream timed out or broke: follow again from the last event
                pass
            self._stop.wait(0.2)

    def close(self) -> None:
        self._stop.set()
        for stream in self._streams:
            try:
                stream.close()
            except Exception:  # already closed
                pass
        for thread in self._threads:
            thread.join(timeout=5)

    def volumes(self) -> set[str]:
        """The volumes mounted so far; reads the recent history too, for events still in flight."""
        found = {volume for volume, container in self._mounts if container in self._ours}
        return found | volumes_mounted(self.client, self.label, max(self.started, time.time() - 60), time.time())


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
