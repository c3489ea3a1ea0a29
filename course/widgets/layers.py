"""The layer explorer: one bar per layer of an image, with the instruction that made it."""


from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Sequence

from course.lessonkit import LessonError, docker_client
from course.widgets._render import _display, headless, human_size
from dockerkit.history import clean_instruction as clean_instruction


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
