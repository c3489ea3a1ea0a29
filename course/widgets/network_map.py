"""The network map: which containers share which networks."""


from __future__ import annotations

import html

from course.widgets._render import _display, headless
from course.widgets.dashboard import EngineSnapshot, engine_snapshot


def network_map_text(s: EngineSnapshot) -> str:
    ip_of = {c.name: c.networks for c in s.containers}
    lines = []
    for n in s.networks:
        kind = ("containers find each other by name (embedded DNS)" if n.dns_by_name
                else "no DNS by name" if n.driver == "bridge"
                else "shares the host's network stack" if n.driver == "host" else "no network at all")
        lines.append(f"{n.name} [{n.driver}{', ' + n.subnet if n.subnet else ''}] — {kind}")
        for i, name in enumerate(n.containers):
            branch = "└─" if i == len(n.containers) - 1 else "├─"
            ip = ip_of.get(name, {}).get(n.name) or "-"
            lines.append(f"  {branch} {name}  {ip}")
        if not n.containers:
            lines.append("  (no containers)")
    shared = shared_networks(s)
    if shared:
        lines.append("\ncan talk to each other:")
        lines += [f"  {a} <-> {b}  via {', '.join(nets)}" for (a, b), nets in shared.items()]
    return "\n".join(lines)


def shared_networks(s: EngineSnapshot) -> dict[tuple[str, str], list[str]]:
    """Pairs of containers that share at least one network other than host/none."""
    pairs: dict[tuple[str, str], list[str]] = {}
    for n in s.networks:
        if n.driver in ("host", "null"):
            continue
        members = sorted(n.containers)
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                pairs.setdefault((a, b), []).append(n.name)
    return pairs


def network_map_html(s: EngineSnapshot) -> str:
    ip_of = {c.name: c.networks for c in s.containers}
    boxes = []
    for n in s.networks:
        color = "#27ae60" if n.dns_by_name else "#9aa5b1" if n.driver in ("host", "null") else "#f2994a"
        chips = "".join(
            f"<div style='margin:3px 0;padding:2px 6px;border-radius:4px;background:#eef2f7;color:#1f2933'>"
            f"{html.escape(c)} <span style='color:#52606d'>"
            f"{html.escape(ip_of.get(c, {}).get(n.name) or '')}</span></div>"
            for c in n.containers) or "<i>no containers</i>"
        note = "DNS by name" if n.dns_by_name else "no DNS" if n.driver == "bridge" else n.driver
        boxes.append(
            f"<div style='border:2px solid {color};border-radius:6px;padding:6px;min-width:170px'>"
            f"<b>{html.escape(n.name)}</b><br><small>{html.escape(n.driver)} {html.escape(n.subnet)} — {note}</small>"
            f"{chips}</div>")
    shared = shared_networks(s)
    links = "".join(f"<li>{html.escape(a)} ↔ {html.escape(b)} via {html.escape(', '.join(v))}</li>"
                    for (a, b), v in shared.items())
    return (f"<div style='display:flex;flex-wrap:wrap;gap:10px;font-size:12px'>{''.join(boxes)}</div>"
            + (f"<div style='font-size:12px'>can talk to each other:<ul>{links}</ul></div>" if links else ""))


class NetworkMap:
    def __init__(self, label: str | None = None, client=None) -> None:
        self.label = label
        self.client = client

    def show(self) -> None:
        if headless():
            print(network_map_text(engine_snapshot(self.client, label=self.label)))
        else:
            _display(self.widget())

    def widget(self):
        import ipywidgets as w

        body = w.HTML()
        button = w.Button(description="Refresh", icon="refresh")

        def refresh(_=None):
            body.value = network_map_html(engine_snapshot(self.client, label=self.label))

        button.on_click(refresh)
        refresh()
        return w.VBox([button, body])


def network_map(label: str | None = None) -> NetworkMap:
    """Networks and the containers on them; `label` narrows it to one lesson's containers."""
    m = NetworkMap(label)
    m.show()
    return m
