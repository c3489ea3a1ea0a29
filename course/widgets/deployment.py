"""Lesson 01's deployment decision helper."""


from __future__ import annotations

import html
from dataclasses import dataclass, field

from course.widgets._render import _display, headless

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
