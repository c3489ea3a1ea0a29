"""The engine dashboard: images with sizes, containers, networks, volumes; refreshable."""


from __future__ import annotations

import html
import time
from dataclasses import dataclass

from course.lessonkit import docker_client
from course.widgets._render import _display, _table_html, headless, human_size, table_text


@dataclass(frozen=True)
class ImageRow:
    tags: tuple[str, ...]
    id: str
    size: int


@dataclass(frozen=True)
class ContainerRow:
    name: str
    image: str
    state: str
    status: str
    ports: str
    networks: dict[str, str]  # network name -> the container's IP on it


@dataclass(frozen=True)
class NetworkRow:
    name: str
    driver: str
    subnet: str
    containers: tuple[str, ...]

    @property
    def dns_by_name(self) -> bool:
        """Docker's embedded DNS serves user-defined networks, not the default bridge."""
        return self.driver not in ("host", "null") and self.name != "bridge"


@dataclass(frozen=True)
class VolumeRow:
    name: str
    driver: str
    labels: dict[str, str]


@dataclass(frozen=True)
class EngineSnapshot:
    images: tuple[ImageRow, ...]
    containers: tuple[ContainerRow, ...]
    networks: tuple[NetworkRow, ...]
    volumes: tuple[VolumeRow, ...]
    label: str | None = None


def _ports_text(ports: list[dict]) -> str:
    shown = []
    for p in sorted(ports or [], key=lambda p: (p.get("PrivatePort", 0), p.get("IP", ""))):
        if p.get("PublicPort"):
            shown.append(f"{p.get('IP', '')}:{p['PublicPort']}->{p['PrivatePort']}/{p['Type']}")
        else:
            shown.append(f"{p['PrivatePort']}/{p['Type']}")
    return ", ".join(dict.fromkeys(shown))


def engine_snapshot(client=None, *, label: str | None = None) -> EngineSnapshot:
    """What the engine holds, in four API calls. `label` ("key=value") narrows it down;
    networks are then those the selected containers use plus those carrying the label."""
    api = (client or docker_client()).api
    flt = {"label": label} if label else None
    images = tuple(sorted(
        (ImageRow(tuple(t for t in (i.get("RepoTags") or []) if t != "<none>:<none>"),
                  i["Id"].split(":")[-1][:12], int(i.get("Size") or 0))
         for i in api.images(filters=flt)),
        key=lambda r: (r.tags or ("~",), r.id)))
    containers = tuple(sorted(
        (ContainerRow(c["Names"][0].lstrip("/"), c["Image"], c["State"], c["Status"],
                      _ports_text(c.get("Ports")),
                      {n: (v or {}).get("IPAddress", "") for n, v in
                       ((c.get("NetworkSettings") or {}).get("Networks") or {}).items()})
         for c in api.containers(all=True, filters=flt)),
        key=lambda r: r.name))
    members: dict[str, list[str]] = {}
    for c in containers:
        for net in c.networks:
            members.setdefault(net, []).append(c.name)
    labelled = {n["Name"] for n in api.networks(filters=flt)} if label else set()
    networks = []
    for n in api.networks():
        if label and n["Name"] not in labelled and n["Name"] not in members:
            continue
        subnets = [cfg.get("Subnet", "") for cfg in ((n.get("IPAM") or {}).get("Config") or [])]
        networks.append(NetworkRow(n["Name"], n["Driver"], ", ".join(s for s in subnets if s),
                                   tuple(members.get(n["Name"], []))))
    volumes = tuple(sorted(
        (VolumeRow(v["Name"], v["Driver"], v.get("Labels") or {})
         for v in (api.volumes(filters=flt).get("Volumes") or [])),
        key=lambda r: r.name))
    return EngineSnapshot(images, containers, tuple(sorted(networks, key=lambda r: r.name)), volumes, label)


def _snapshot_sections(s: EngineSnapshot):
    yield (f"Images ({len(s.images)}; each size counts the base layers it shares with others)",
           ("repository:tag", "id", "size"),
           [(", ".join(i.tags) or "<none>", i.id, human_size(i.size)) for i in s.images])
    yield (f"Containers ({len(s.containers)})", ("name", "image", "status", "ports", "networks"),
           [(c.name, c.image, c.status, c.ports or "-", ", ".join(c.networks) or "-") for c in s.containers])
    yield (f"Networks ({len(s.networks)})", ("name", "driver", "subnet", "containers"),
           [(n.name, n.driver, n.subnet or "-", ", ".join(n.containers) or "-") for n in s.networks])
    yield (f"Volumes ({len(s.volumes)})", ("name", "driver", "labels"),
           [(v.name[:40], v.driver, ", ".join(f"{k}={x}" for k, x in sorted(v.labels.items())) or "-")
            for v in s.volumes])


def snapshot_text(s: EngineSnapshot) -> str:
    scope = f" (label {s.label})" if s.label else ""
    parts = [f"Docker engine{scope}"]
    for title, headers, rows in _snapshot_sections(s):
        parts.append(f"\n{title}\n" + (table_text(headers, rows) if rows else "(none)"))
    return "\n".join(parts)


def snapshot_html(s: EngineSnapshot) -> str:
    parts = []
    for title, headers, rows in _snapshot_sections(s):
        parts.append(f"<h4 style='margin:8px 0 2px'>{html.escape(title)}</h4>"
                     + (_table_html(headers, rows) if rows else "<i>none</i>"))
    return "".join(parts)


class Dashboard:
    """The engine at a glance, with a refresh button."""

    def __init__(self, label: str | None = None, client=None) -> None:
        self.label = label
        self.client = client

    def snapshot(self) -> EngineSnapshot:
        return engine_snapshot(self.client, label=self.label)

    def show(self) -> None:
        if headless():
            print(snapshot_text(self.snapshot()))
        else:
            _display(self.widget())

    def widget(self):
        import ipywidgets as w

        body = w.HTML()
        stamp = w.Label()
        button = w.Button(description="Refresh", icon="refresh", button_style="info")

        def refresh(_=None):
            body.value = snapshot_html(self.snapshot())
            stamp.value = f"as of {time.strftime('%H:%M:%S')}" + (f" — label {self.label}" if self.label else "")

        button.on_click(refresh)
        refresh()
        return w.VBox([w.HBox([button, stamp]), body])


def dashboard(label: str | None = None) -> Dashboard:
    """Show the engine's images, containers, networks and volumes (refreshable)."""
    board = Dashboard(label)
    board.show()
    return board
