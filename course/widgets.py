"""Interactive helpers for the lesson notebooks (ipywidgets).

Each helper gathers its data first (plain dataclasses, testable without a
notebook) and only then renders it: as a widget where a Jupyter front end can
show one, as printed text where none can (nbclient, nbconvert, nbgrader, a
plain Python shell). ``COURSE_WIDGETS=plain`` or ``=on`` forces either way.

- ``dashboard()``: images with sizes, containers, networks, volumes; refreshable
- ``layer_explorer(image)``: one bar per layer with the instruction that made it
- ``network_map()``: which containers share which networks
- ``build_live(context, tag)``: a ``docker build`` streamed into the notebook
- ``deployment_helper()`` and ``self_check(questions)``: lesson 01's decision helper and quizzes
- ``permission_calculator()``: octal <-> rwx, lesson 04
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from course.lessonkit import LessonError, docker_client
from dockerkit.buildkit import parse_build_steps, step_header
from dockerkit.history import clean_instruction as clean_instruction
from dockerkit.process import kill_group

# --------------------------------------------------------------------------- where we render


def headless() -> bool:
    """True where no front end can render a widget: then helpers print text instead."""
    forced = os.environ.get("COURSE_WIDGETS", "").strip().lower()
    if forced in ("plain", "text", "off", "0"):
        return True
    if forced in ("on", "widgets", "1"):
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    shell = get_ipython()
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return True
    # A Jupyter server names the session of every kernel it starts; kernels run by
    # nbclient (nbconvert, nbgrader, our tests) have no one to draw a widget.
    return "JPY_SESSION_NAME" not in os.environ


def _display(widget) -> None:
    from IPython.display import display

    display(widget)


def human_size(n: float) -> str:
    """Bytes in the decimal units `docker images` uses."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def table_text(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    rows = [list(map(str, r)) for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _table_html(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th style='text-align:left;padding:2px 10px'>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 10px'>{html.escape(str(c))}</td>" for c in r)
                   + "</tr>" for r in rows)
    return f"<table style='border-collapse:collapse;font-size:12px'><tr>{head}</tr>{body}</table>"


# --------------------------------------------------------------------------- engine dashboard


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


# --------------------------------------------------------------------------- layer explorer


@dataclass(frozen=True)
class Layer:
    size: int
    instruction: str
    created: int

    @property
    def empty(self) -> bool:
        return self.size == 0


def image_layers(image: str, client=None) -> list[Layer]:
    """An image's layers, oldest (the base) first, each with the instruction that made it."""
    history = (client or docker_client()).api.history(image)
    return [Layer(int(h.get("Size") or 0), clean_instruction(h.get("CreatedBy") or ""), int(h.get("Created") or 0))
            for h in reversed(history)]


def layers_text(image: str, layers: Sequence[Layer], width: int = 30, show_empty: bool = False) -> str:
    total = sum(layer.size for layer in layers)
    biggest = max([layer.size for layer in layers] + [1])
    lines = [f"{image}: {len(layers)} history entries, {sum(1 for x in layers if not x.empty)} with content, "
             f"{human_size(total)} in all"]
    for layer in layers:
        if layer.empty and not show_empty:
            continue
        bar = "█" * max(1 if layer.size else 0, round(width * layer.size / biggest))
        instr = layer.instruction if len(layer.instruction) <= 90 else layer.instruction[:87] + "..."
        lines.append(f"{human_size(layer.size):>9} {bar:<{width}} {instr}")
    return "\n".join(lines)


def layers_html(image: str, layers: Sequence[Layer]) -> str:
    biggest = max([layer.size for layer in layers] + [1])
    total = sum(layer.size for layer in layers)
    rows = []
    for layer in layers:
        pct = 100 * layer.size / biggest
        color = "#9aa5b1" if layer.empty else "#2f80ed"
        short = layer.instruction if len(layer.instruction) <= 110 else layer.instruction[:107] + "..."
        rows.append(
            "<div style='display:flex;align-items:center;gap:8px;font-size:12px;margin:1px 0'>"
            f"<span style='width:80px;text-align:right;font-family:monospace'>{human_size(layer.size)}</span>"
            f"<span style='width:260px;background:#e8ecf1'><span style='display:block;height:12px;"
            f"width:{max(pct, 0.5 if layer.size else 0):.1f}%;background:{color}'></span></span>"
            f"<code title='{html.escape(layer.instruction, quote=True)}'>{html.escape(short)}</code></div>")
    head = (f"<div style='margin-bottom:4px'><b>{html.escape(image)}</b>: {len(layers)} history entries, "
            f"{human_size(total)}; grey rows change only metadata and add no bytes</div>")
    return head + "".join(rows)


class LayerExplorer:
    """Pick an image; see a bar per layer with the instruction that created it."""

    def __init__(self, image: str | None = None, images: Sequence[str] | None = None, client=None) -> None:
        self.client = client
        self.images = list(images) if images else self._tagged_images()
        if image and image not in self.images:
            self.images.insert(0, image)
        if not self.images:
            raise LessonError("the engine holds no tagged image to explore: build or pull one first")
        self.image = image or self.images[0]

    def _tagged_images(self) -> list[str]:
        api = (self.client or docker_client()).api
        return sorted({t for i in api.images() for t in (i.get("RepoTags") or []) if t != "<none>:<none>"})

    def show(self) -> None:
        if headless():
            print(layers_text(self.image, image_layers(self.image, self.client)))
        else:
            _display(self.widget())

    def widget(self):
        import ipywidgets as w

        picker = w.Dropdown(options=self.images, value=self.image, description="image",
                            layout=w.Layout(width="420px"))
        chart = w.HTML()

        def render(change=None):
            self.image = picker.value
            chart.value = layers_html(self.image, image_layers(self.image, self.client))

        picker.observe(render, names="value")
        render()
        return w.VBox([picker, chart])


def layer_explorer(image: str | None = None, images: Sequence[str] | None = None) -> LayerExplorer:
    explorer = LayerExplorer(image, images)
    explorer.show()
    return explorer


# --------------------------------------------------------------------------- network map


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


# --------------------------------------------------------------------------- live build


class BuildFailed(LessonError):
    pass


@dataclass(frozen=True)
class BuildResult:
    tag: str
    command: tuple[str, ...]
    returncode: int
    seconds: float
    lines: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def steps(self) -> dict[str, str]:
        """Dockerfile steps (internal ones left out) -> 'CACHED', 'DONE' or 'ERROR' ('?' unfinished)."""
        return {f"[{step.where}] {step.instruction}": step.outcome
                for step in parse_build_steps("\n".join(self.lines))}

    @property
    def cached_steps(self) -> list[str]:
        return [name for name, state in self.steps().items() if state == "CACHED"]

    @property
    def rebuilt_steps(self) -> list[str]:
        return [name for name, state in self.steps().items() if state == "DONE"]

    def summary(self) -> str:
        steps = self.steps()
        return (f"{'built' if self.ok else 'FAILED to build'} {self.tag} in {self.seconds:.1f} s: "
                f"{len(steps)} steps, {len(self.cached_steps)} from cache")


def build_command(context: str | os.PathLike, tag: str, *, dockerfile: str | os.PathLike | None = None,
                  labels: dict[str, str] | None = None, build_args: dict[str, str] | None = None,
                  target: str | None = None, extra: Sequence[str] = ()) -> list[str]:
    cmd = ["docker", "build", "--progress=plain", "-t", tag]
    if dockerfile:
        cmd += ["-f", str(dockerfile)]
    for k, v in (labels or {}).items():
        cmd += ["--label", f"{k}={v}"]
    for k, v in (build_args or {}).items():
        cmd += ["--build-arg", f"{k}={v}"]
    if target:
        cmd += ["--target", target]
    return cmd + list(extra) + [str(context)]


def build_live(context: str | os.PathLike, tag: str, *, dockerfile: str | os.PathLike | None = None,
               labels: dict[str, str] | None = None, build_args: dict[str, str] | None = None,
               target: str | None = None, extra: Sequence[str] = (), timeout: float = 900,
               check: bool = True) -> BuildResult:
    """Run a BuildKit build and stream its progress into the notebook as it happens.

    Headless, only the step lines and the summary are printed. A failed build
    raises BuildFailed with the last lines of the log (unless check=False).
    """
    cmd = build_command(context, tag, dockerfile=dockerfile, labels=labels, build_args=build_args,
                        target=target, extra=extra)
    shown = " ".join(c if " " not in c else repr(c) for c in cmd)
    plain = headless()
    status: Any = None
    log: Any = None
    if plain:
        print(f"$ {shown}", flush=True)
    else:
        import ipywidgets as w

        status = w.HTML(f"<code>$ {html.escape(shown)}</code><br>starting…")
        log = w.Textarea(layout=w.Layout(width="100%", height="220px"), disabled=True)
        _display(w.VBox([status, log]))
    lines: list[str] = []
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "DOCKER_BUILDKIT": "1"}, start_new_session=True)
    last_paint = 0.0
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.rstrip("\n")
        lines.append(line)
        elapsed = time.monotonic() - started
        if elapsed > timeout:
            kill_group(proc)
            lines.append(f"(build stopped after {timeout:.0f} s)")
            break
        step = step_header(line)
        if plain:
            if step and not step[1].startswith("internal"):
                print(f"  {line}", flush=True)
        elif time.monotonic() - last_paint > 0.25 or step:
            # Repaint at most four times a second: a pip install prints thousands of lines.
            log.value = "\n".join(lines[-200:])
            if step:
                status.value = (f"<code>$ {html.escape(shown)}</code><br>{elapsed:5.1f} s — "
                                f"<b>{html.escape(step[1])}</b> {html.escape(step[2][:120])}")
            last_paint = time.monotonic()
    returncode = proc.wait()
    result = BuildResult(tag, tuple(cmd), returncode, time.monotonic() - started, tuple(lines))
    if plain:
        print(result.summary())
    else:
        log.value = "\n".join(lines[-200:])
        status.value = f"<code>$ {html.escape(shown)}</code><br><b>{html.escape(result.summary())}</b>"
    if check and not result.ok:
        raise BuildFailed(f"{result.summary()}; last lines:\n" + "\n".join(lines[-40:]))
    return result


# --------------------------------------------------------------------------- self-checks and quizzes


@dataclass(frozen=True)
class Question:
    prompt: str
    options: tuple[str, ...]
    answer: int  # index into options
    explanation: str

    def __post_init__(self) -> None:
        if not 0 <= self.answer < len(self.options):
            raise ValueError(f"answer {self.answer} is not one of the {len(self.options)} options of {self.prompt!r}")

    def feedback(self, choice: int | None) -> tuple[bool, str]:
        if choice is None:
            return False, "Pick an answer first."
        right = choice == self.answer
        return right, ("Right. " if right else f"Not quite: the answer is “{self.options[self.answer]}”. ") \
            + self.explanation


def quiz_text(questions: Sequence[Question], title: str) -> str:
    out = [title]
    for n, q in enumerate(questions, 1):
        out.append(f"\n{n}. {q.prompt}")
        out += [f"   ({chr(97 + i)}) {o}" for i, o in enumerate(q.options)]
        out.append(f"   answer: ({chr(97 + q.answer)}) — {q.explanation}")
    return "\n".join(out)


def self_check(questions: Sequence[Question], title: str = "Self-check") -> None:
    """Multiple-choice questions with immediate feedback (answers printed when headless)."""
    if headless():
        print(quiz_text(questions, title))
    else:
        _display(quiz_widget(questions, title))


def quiz_widget(questions: Sequence[Question], title: str = "Self-check"):
    import ipywidgets as w

    blocks = [w.HTML(f"<h4>{html.escape(title)}</h4>")]
    score = w.HTML()
    results: dict[int, bool] = {}

    for n, q in enumerate(questions):
        choice = w.RadioButtons(options=[(o, i) for i, o in enumerate(q.options)], value=None,
                                layout=w.Layout(width="auto"))
        feedback = w.HTML()
        button = w.Button(description="Check", button_style="primary")

        def check(_, q=q, choice=choice, feedback=feedback, n=n):
            right, text = q.feedback(choice.value)
            if choice.value is not None:
                results[n] = right
            color = "#27ae60" if right else "#c0392b"
            feedback.value = f"<span style='color:{color}'>{html.escape(text)}</span>"
            score.value = f"<b>{sum(results.values())} / {len(questions)}</b> right so far"

        button.on_click(check)
        blocks += [w.HTML(f"<b>{n + 1}. {html.escape(q.prompt)}</b>"), choice, w.HBox([button, feedback])]
    return w.VBox(blocks + [score])


# --------------------------------------------------------------------------- deployment decision helper

SERVERLESS_TIMEOUT_S = 600  # the book's "~10 min"; AWS Lambda's hard limit is 15 min

OPTIONS = {
    "vm": "a virtual machine (run the container on it)",
    "serverless": "serverless functions",
    "managed": "a managed app platform (PaaS)",
    "containers": "containers on VMs or a cloud container service",
    "ai_platform": "a dedicated AI/model-serving platform",
}


@dataclass(frozen=True)
class Needs:
    """What a service needs, as the decision helper asks it."""
    gpu: bool = False
    longest_request_s: float = 1.0
    traffic: str = "steady"  # steady | spiky | events (batch jobs, triggers)
    stage: str = "production"  # prototype | production
    ops: str = "some"  # none | some | team: who patches and runs servers
    model_gb: float = 0.1

    def __post_init__(self) -> None:
        for name, allowed in (("traffic", ("steady", "spiky", "events")), ("stage", ("prototype", "production")),
                              ("ops", ("none", "some", "team"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        if self.longest_request_s <= 0 or self.model_gb < 0:
            raise ValueError("durations must be positive and model sizes not negative")


@dataclass(frozen=True)
class Recommendation:
    choice: str
    reasons: tuple[str, ...]
    ruled_out: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return OPTIONS[self.choice]

    def text(self) -> str:
        lines = [f"Recommended: {self.label}"] + [f"  - {r}" for r in self.reasons]
        if self.ruled_out:
            lines.append("Ruled out:")
            lines += [f"  - {OPTIONS[k]}: {why}" for k, why in self.ruled_out.items()]
        return "\n".join(lines)


def recommend(needs: Needs) -> Recommendation:
    """The chapter's rules of thumb as a function: a choice, why, and what is ruled out."""
    out: dict[str, str] = {}
    if needs.longest_request_s > SERVERLESS_TIMEOUT_S:
        out["serverless"] = (f"a request may run {needs.longest_request_s / 60:.0f} min, past the ~10 min "
                             "function timeout")
    elif needs.gpu:
        out["serverless"] = "functions get no GPU"
    elif needs.model_gb >= 1:
        out["serverless"] = (f"every cold start would load {needs.model_gb:g} GB of weights into a "
                             "memory-limited function: use a model provider's API instead")
    if needs.gpu:
        out["managed"] = "app platforms rarely offer GPUs"

    if needs.gpu:
        if needs.ops == "none":
            return Recommendation("ai_platform", (
                "you need GPUs and nobody to run servers: Azure ML, Vertex AI, SageMaker or Hugging Face "
                "Inference Endpoints serve models for you",), out)
        return Recommendation("vm", (
            "a VM gives direct GPU access and SSH for debugging",
            "package the service as a container with the CUDA provider (lesson 08) so the VM stays disposable"), out)
    if needs.traffic == "events" and "serverless" not in out:
        return Recommendation("serverless", (
            "event-driven or batch work: pay per call, scale to zero between events",
            "wrap the ASGI app with the platform's adapter (e.g. func.AsgiFunctionApp)"), out)
    if needs.stage == "prototype":
        return Recommendation("managed", (
            "a prototype ships fastest where networking, TLS and monitoring come built in",
            "you pay more per unit and may be locked in, which matters later, not now"), out)
    if needs.ops == "none":
        return Recommendation("managed", (
            "no one to patch servers: let the platform run them", "ship it as a container image to stay portable"),
            out)
    reasons = ["production traffic: a container image is portable, starts in seconds and scales out",
               "the same image runs on a laptop, a VM or a managed container service"]
    if needs.traffic == "spiky":
        reasons.append("spiky traffic: scale replicas with the load instead of paying for a big VM all day")
    return Recommendation("containers", tuple(reasons), out)


_DURATIONS = {"under a second": 0.5, "a few seconds": 5.0, "a few minutes": 180.0, "over 15 minutes": 1200.0}


def deployment_helper(initial: Needs | None = None) -> None:
    """Answer a few questions about a service; get a deployment option and the reasons."""
    needs = initial or Needs()
    if headless():
        print(f"Your answers: {needs}\n{recommend(needs).text()}")
    else:
        _display(deployment_widget(needs))


def deployment_widget(needs: Needs):
    import ipywidgets as w

    style = {"description_width": "230px"}
    layout = w.Layout(width="520px")
    gpu = w.ToggleButtons(options=[("no", False), ("yes", True)], value=needs.gpu,
                          description="Does inference need a GPU?", style=style)
    duration = w.Dropdown(options=list(_DURATIONS), description="Longest request or job:", style=style,
                          layout=layout,
                          value=min(_DURATIONS, key=lambda k: abs(_DURATIONS[k] - needs.longest_request_s)))
    traffic = w.Dropdown(options=[("steady", "steady"), ("spiky", "spiky"),
                                  ("rare events / batch jobs", "events")],
                         value=needs.traffic, description="Traffic:", style=style, layout=layout)
    stage = w.ToggleButtons(options=["prototype", "production"], value=needs.stage, description="Stage:",
                            style=style)
    ops = w.Dropdown(options=[("nobody", "none"), ("a developer, part time", "some"), ("an ops team", "team")],
                     value=needs.ops, description="Who runs servers?", style=style, layout=layout)
    model = w.FloatSlider(value=needs.model_gb, min=0, max=20, step=0.1, description="Model weights (GB):",
                          style=style, layout=layout)
    answer = w.HTML()

    def update(_=None):
        rec = recommend(Needs(gpu=gpu.value, longest_request_s=_DURATIONS[duration.value], traffic=traffic.value,
                              stage=stage.value, ops=ops.value, model_gb=model.value))
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in rec.reasons)
        ruled = "".join(f"<li><s>{html.escape(OPTIONS[k])}</s>: {html.escape(v)}</li>"
                        for k, v in rec.ruled_out.items())
        answer.value = (f"<div style='border-left:4px solid #2f80ed;padding-left:8px'>"
                        f"<b>Recommended: {html.escape(rec.label)}</b><ul>{reasons}</ul>"
                        + (f"Ruled out:<ul>{ruled}</ul>" if ruled else "") + "</div>")

    for control in (gpu, duration, traffic, stage, ops, model):
        control.observe(update, names="value")
    update()
    return w.VBox([gpu, duration, traffic, stage, ops, model, answer])


# --------------------------------------------------------------------------- permission calculator

_WHO = ("owner", "group", "others")
_WHAT = (("r", "read"), ("w", "write"), ("x", "execute"))


def _octal_digits(mode: str | int) -> str:
    if isinstance(mode, int):
        if not 0 <= mode <= 0o777:
            raise ValueError(f"mode {mode:o} is outside 000-777: use three octal digits, like 755 or 640")
        return f"{mode:03o}"
    text = str(mode).strip().lower().removeprefix("0o")
    if len(text) == 4 and text[0] == "0":
        text = text[1:]
    if not re.fullmatch(r"[0-7]{3}", text):
        raise ValueError(f"{mode!r} is not an octal mode: use three digits 0-7, like 755 or 640")
    return text


def octal_to_symbolic(mode: str | int) -> str:
    """'755' -> 'rwxr-xr-x'."""
    out = []
    for digit in _octal_digits(mode):
        d = int(digit)
        out.append("".join(letter if d & bit else "-" for (letter, _), bit in zip(_WHAT, (4, 2, 1))))
    return "".join(out)


def symbolic_to_octal(symbolic: str) -> str:
    """'rwxr-xr-x' (or 'drwxr-xr-x' as `ls -l` shows it) -> '755'."""
    text = symbolic.strip()
    if len(text) == 10:
        text = text[1:]  # the file type `ls -l` puts first
    if not re.fullmatch(r"([r-][w-][x-]){3}", text):
        raise ValueError(f"{symbolic!r} is not a permission string: nine characters like rwxr-x---")
    digits = []
    for i in range(0, 9, 3):
        digits.append(str(sum(bit for ch, bit in zip(text[i:i + 3], (4, 2, 1)) if ch != "-")))
    return "".join(digits)


def explain_mode(mode: str | int) -> list[str]:
    """One line per class of user: what they may do."""
    sym = octal_to_symbolic(mode)
    lines = []
    for who, triple in zip(_WHO, (sym[0:3], sym[3:6], sym[6:9])):
        may = [word for (letter, word), ch in zip(_WHAT, triple) if ch == letter]
        lines.append(f"{who:<6} {triple}  {', '.join(may) if may else 'nothing'}")
    return lines


def chmod_symbolic(mode: str | int) -> str:
    """'750' -> 'u=rwx,g=rx,o=' (the same mode in chmod's symbolic form)."""
    sym = octal_to_symbolic(mode)
    return ",".join(f"{c}={sym[i:i + 3].replace('-', '')}" for c, i in zip("ugo", (0, 3, 6)))


def permission_text(mode: str | int) -> str:
    digits = _octal_digits(mode)
    return "\n".join([f"{digits} = {octal_to_symbolic(digits)}   chmod {digits} FILE  ==  chmod "
                      f"{chmod_symbolic(digits)} FILE"] + [f"  {line}" for line in explain_mode(digits)])


def permission_calculator(initial: str | int = "755", examples: Sequence[str] = ("644", "600", "750")) -> None:
    """Tick boxes or type a number: the octal mode, its rwx form and what each class of user may do."""
    if headless():
        for mode in (initial, *examples):
            print(permission_text(mode) + "\n")
    else:
        _display(permission_widget(initial))


def permission_widget(initial: str | int = "755"):
    import ipywidgets as w

    digits = _octal_digits(initial)
    octal = w.Text(value=digits, description="octal", layout=w.Layout(width="160px"))
    boxes = [[w.Checkbox(description=word, indent=False, layout=w.Layout(width="90px")) for _, word in _WHAT]
             for _ in _WHO]
    out = w.HTML()
    syncing = False

    def paint(mode: str) -> None:
        lines = "<br>".join(html.escape(x) for x in explain_mode(mode))
        out.value = (f"<code style='font-size:14px'>-{octal_to_symbolic(mode)}</code> "
                     f"&nbsp; <code>chmod {mode} FILE</code> = <code>chmod {chmod_symbolic(mode)} FILE</code>"
                     f"<div style='font-family:monospace;white-space:pre;margin-top:4px'>{lines}</div>")

    def from_text(_=None):
        nonlocal syncing
        if syncing:
            return
        try:
            mode = _octal_digits(octal.value)
        except ValueError as exc:
            out.value = f"<span style='color:#c0392b'>{html.escape(str(exc))}</span>"
            return
        syncing = True
        sym = octal_to_symbolic(mode)
        for i, row in enumerate(boxes):
            for j, box in enumerate(row):
                box.value = sym[3 * i + j] != "-"
        syncing = False
        paint(mode)

    def from_boxes(_=None):
        nonlocal syncing
        if syncing:
            return
        sym = "".join(letter if box.value else "-" for row in boxes for (letter, _), box in zip(_WHAT, row))
        mode = symbolic_to_octal(sym)
        syncing = True
        octal.value = mode
        syncing = False
        paint(mode)

    octal.observe(from_text, names="value")
    for row in boxes:
        for box in row:
            box.observe(from_boxes, names="value")
    from_text()
    grid = [w.HBox([w.Label(who, layout=w.Layout(width="70px"))] + row) for who, row in zip(_WHO, boxes)]
    return w.VBox([octal, *grid, out])


__all__ = [
    "headless", "human_size", "table_text", "engine_snapshot", "snapshot_text", "dashboard", "Dashboard",
    "image_layers", "layers_text", "layer_explorer", "LayerExplorer", "network_map", "network_map_text", "NetworkMap",
    "build_live", "BuildResult", "BuildFailed", "Question", "self_check", "quiz_widget", "quiz_text", "Needs",
    "recommend", "deployment_helper", "deployment_widget", "octal_to_symbolic", "symbolic_to_octal", "explain_mode",
    "permission_calculator", "permission_widget",
]
