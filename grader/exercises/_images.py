"""Where an image's megabytes are (06-optimize, 08-capstone).

`analyse` streams `docker save` once and reads every layer's file list: the size
and creating instruction of each layer, the files the final image shows, model
weights and planted canaries, and the wasted bytes. Wasted bytes are counted the
way dive means them but without its double count: a path that appears in more
than one layer (written again, or deleted: a deletion counts the size of what it
hides) wastes every copy beyond its first; paths found only in the base image's
layers are the base's business and are left out.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import tarfile
from dataclasses import dataclass, field
from typing import Any

import docker.errors

from grader.dockerfile import Dockerfile
from grader.registry import Passed, fail, passed
from grader import static
from dockerkit.archive import ChunkReader
from dockerkit.history import clean_instruction

MB = 1_000_000
SIZE_BUDGET_MB = 280           # what the image may add to its final base image (contract, 06)
TABLE_ROWS = 8
SMALL_FILE = 64 * 1024          # canaries are small: only such files are searched for the token
MODEL_SUFFIXES = (".onnx", ".safetensors", ".gguf", ".pt", ".pth", ".ckpt", ".h5", ".tflite")
MODEL_MIN_BYTES = 1_000_000    # onnxruntime ships tiny test graphs; weights are megabytes
MODEL_NAMES = re.compile(r"^(pytorch_model|model|tf_model|flax_model)[\w.-]*\.(bin|msgpack)$")
COMPILER = re.compile(r"^(?:(?:x86_64|aarch64|arm)-linux-gnu\w*-)?(gcc|g\+\+|cc|c\+\+|clang|clang\+\+)(-\d+)?$")
BIN_DIRS = ("usr/bin", "usr/local/bin", "bin", "usr/sbin", "usr/local/sbin")
PIP_CACHE = re.compile(r"(^|/)\.cache/pip/")
PACKAGES = "-packages/"        # site-packages/ and Debian's dist-packages/


def megabytes(size: int) -> str:
    return f"{size / MB:.1f} MB" if size >= 100_000 else f"{size / 1000:.1f} kB"


@dataclass(frozen=True)
class Layer:
    index: int
    instruction: str
    size: int
    files: int
    base: bool
    packages: bool = False       # it adds Python packages (site-packages): a dependency layer


@dataclass
class _LayerFiles:
    entries: dict[str, int] = field(default_factory=dict)   # path -> size (0 for links)
    whiteouts: list[str] = field(default_factory=list)      # paths deleted from the layers below
    opaque: list[str] = field(default_factory=list)         # folders whose lower content is hidden
    token_hits: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(self.entries.values())


@dataclass(frozen=True)
class ImageAnalysis:
    image_id: str
    size: int
    base_ref: str
    base_size: int
    base_found: bool
    layers: tuple[Layer, ...]
    wasted_bytes: int
    wasted: tuple[tuple[str, int, int], ...]          # (path, wasted bytes, copies), largest first
    visible: dict[str, int]                            # the final file system: path -> size
    model_files: tuple[tuple[str, int, str], ...]      # (path, size, instruction)
    token_hits: tuple[tuple[str, str], ...]            # (path, instruction)
    diff_ids: tuple[str, ...]

    @property
    def added(self) -> int:
        return self.size - self.base_size

    def own_layers(self) -> list[Layer]:
        return [layer for layer in self.layers if not layer.base]

    def table(self, rows: int = TABLE_ROWS) -> list[str]:
        """The image's own layers, largest first: size and the instruction that made each."""
        own = sorted(self.own_layers(), key=lambda layer: layer.size, reverse=True)
        lines = [f"{megabytes(layer.size):>9}  {layer.instruction}" for layer in own[:rows]]
        if len(own) > rows:
            rest = sum(layer.size for layer in own[rows:])
            lines.append(f"{megabytes(rest):>9}  ({len(own) - rows} more layers)")
        return lines

    def compilers(self) -> list[str]:
        return sorted(p for p in self.visible
                      if posixpath.dirname(p) in BIN_DIRS and COMPILER.match(posixpath.basename(p)))

    def pip_caches(self) -> list[str]:
        found = sorted({p.split(".cache/pip/")[0] + ".cache/pip" for p in self.visible if PIP_CACHE.search(p)})
        return ["/" + p for p in found]

    def evidence(self) -> dict[str, Any]:
        return {"image_mb": round(self.size / MB, 1), "base": self.base_ref,
                "base_mb": round(self.base_size / MB, 1), "added_mb": round(self.added / MB, 1),
                "layers": [{"size_mb": round(layer.size / MB, 2), "instruction": layer.instruction}
                           for layer in sorted(self.own_layers(), key=lambda x: x.size, reverse=True)],
                "wasted_mb": round(self.wasted_bytes / MB, 2),
                "wasted": [{"path": "/" + p, "mb": round(b / MB, 2), "copies": n} for p, b, n in self.wasted[:10]]}


def _normal(name: str) -> str:
    return posixpath.normpath(name).lstrip("/")


def read_layer(stream: Any, token: bytes | None) -> _LayerFiles:
    files = _LayerFiles()
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            path = _normal(member.name)
            base = posixpath.basename(path)
            if base == ".wh..wh..opq":
                files.opaque.append(posixpath.dirname(path))
            elif base.startswith(".wh."):
                files.whiteouts.append(posixpath.join(posixpath.dirname(path), base[4:]))
            elif member.isdir():
                continue
            else:
                files.entries[path] = member.size if member.isfile() else 0
                if token and member.isfile() and member.size <= SMALL_FILE:
                    handle = tar.extractfile(member)
                    if handle is not None and token in handle.read():
                        files.token_hits.append(path)
    return files


def _instruction(created_by: str) -> str:
    text = clean_instruction(created_by)
    return text if len(text) <= 90 else text[:87] + "..."


def save_contents(client: Any, image_id: str, token: bytes | None = None) -> tuple[dict, list[_LayerFiles]]:
    """(image config, layers in order) from `docker save`, read as a stream (legacy and OCI layouts)."""
    raw = client.api.get_image(image_id, chunk_size=1 << 20)
    layers: dict[str, _LayerFiles] = {}
    links: dict[str, str] = {}
    small: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BufferedReader(ChunkReader(raw), 1 << 20), mode="r|") as outer:
        for member in outer:
            if member.issym():   # the legacy layout links a layer it already wrote
                links[member.name] = posixpath.normpath(posixpath.join(posixpath.dirname(member.name),
                                                                       member.linkname))
                continue
            if member.islnk():
                links[member.name] = member.linkname
                continue
            if not member.isfile():
                continue
            handle = outer.extractfile(member)
            if handle is None:
                continue
            name = member.name
            if name.endswith("/layer.tar"):                   # the legacy layout
                layers[name] = read_layer(handle, token)
            elif name.startswith("blobs/"):                   # the OCI layout: configs and layers alike
                if member.size < 1 << 20:
                    data = handle.read()
                    try:
                        json.loads(data)
                        small[name] = data
                    except ValueError:
                        layers[name] = read_layer(io.BytesIO(data), token)
                else:
                    layers[name] = read_layer(handle, token)
            elif member.size < 16 << 20:
                small[name] = handle.read()
    manifest = json.loads(small["manifest.json"])[0]
    config = json.loads(small[manifest["Config"]])
    ordered = []
    for name in manifest["Layers"]:
        name = links.get(name, name)
        ordered.append(layers.get(name) or _LayerFiles())
    return config, ordered


def account(contents: list[_LayerFiles], base_count: int) -> tuple[dict[str, tuple[int, int]],
                                                                   list[tuple[str, int, int]]]:
    """Stack the layers: (the final file system as path -> (size, layer), the wasted paths as
    (path, bytes beyond the first copy, copies), largest first). A deletion is a copy sized like
    what it hides; paths that only the base image's layers hold are left out."""
    visible: dict[str, tuple[int, int]] = {}
    first: dict[str, int] = {}
    total: dict[str, int] = {}
    copies: dict[str, int] = {}
    own: set[str] = set()

    def occur(path: str, size: int, index: int) -> None:
        first.setdefault(path, size)
        total[path] = total.get(path, 0) + size
        copies[path] = copies.get(path, 0) + 1
        if index >= base_count:
            own.add(path)

    for index, files in enumerate(contents):
        hidden = list(files.whiteouts)
        for folder in files.opaque:
            prefix = folder.rstrip("/") + "/"
            hidden += [p for p in visible if p.startswith(prefix) and p not in files.entries]
        for path in hidden:
            prefix = path.rstrip("/") + "/"
            for p in [p for p in visible if p == path or p.startswith(prefix)]:
                occur(p, visible.pop(p)[0], index)
        for path, size in files.entries.items():
            occur(path, size, index)
            visible[path] = (size, index)
    wasted = sorted(((p, total[p] - first[p], copies[p]) for p in own if copies[p] > 1 and total[p] > first[p]),
                    key=lambda item: item[1], reverse=True)
    return visible, wasted


def analyse(client: Any, image_id: str, df: Dockerfile | None, token: bytes | None = None) -> ImageAnalysis:
    """Sizes, layers, wasted bytes and notable files of an image, against its final base image."""
    image = client.images.get(image_id)
    base_ref = static.final_base(df)[0] if df is not None else ""
    base_layers: list[str] = []
    base_size, base_found = 0, False
    if base_ref and base_ref.lower() != "scratch":
        try:
            base = client.images.get(base_ref)
            base_layers = list(base.attrs["RootFS"].get("Layers") or [])
            base_size, base_found = int(base.attrs["Size"]), True
        except docker.errors.ImageNotFound:
            pass
    diff_ids = list(image.attrs["RootFS"].get("Layers") or [])
    base_count = len(base_layers) if diff_ids[:len(base_layers)] == base_layers else 0
    config, contents = save_contents(client, image.id, token)
    history = [h for h in config.get("history") or [] if not h.get("empty_layer")]
    instructions = [_instruction(h.get("created_by", "")) for h in history]
    if len(instructions) != len(contents):  # images without history: the layer's position names it
        instructions = [f"layer {i + 1}" for i in range(len(contents))]

    layers = tuple(Layer(i, instructions[i], files.size, len(files.entries), i < base_count,
                         any(PACKAGES in p for p in files.entries))
                   for i, files in enumerate(contents))
    visible, wasted = account(contents, base_count)
    models = tuple(("/" + p, size, layers[index].instruction) for p, (size, index) in sorted(visible.items())
                   if index >= base_count and size >= MODEL_MIN_BYTES
                   and (p.endswith(MODEL_SUFFIXES) or MODEL_NAMES.match(posixpath.basename(p))))
    hits = tuple(("/" + p, layers[index].instruction) for index, files in enumerate(contents)
                 for p in files.token_hits)
    return ImageAnalysis(image.id, int(image.attrs["Size"]), base_ref or "(none)", base_size, base_found,
                         layers, sum(w for _, w, _ in wasted), tuple(wasted),
                         {p: size for p, (size, _) in visible.items()}, models, hits, tuple(diff_ids))


def size_budget(analysis: ImageAnalysis, budget_mb: int = SIZE_BUDGET_MB) -> Passed:
    """The check of 06 and 08: what the image adds to its final base image, with the layer table."""
    if not analysis.base_found and analysis.base_ref not in ("(none)", "scratch"):
        fail(f"the final base image {analysis.base_ref} is not on this machine, so the image's own size "
             f"cannot be told apart from it", base=analysis.base_ref)
    table = "\n".join(analysis.table())
    wasted = f"wasted: {megabytes(analysis.wasted_bytes)}"
    if analysis.wasted:
        top = ", ".join(f"/{p} ({megabytes(b)}, {n} copies)" for p, b, n in analysis.wasted[:3])
        wasted += f" (files written more than once or deleted in a later layer: {top})"
    summary = (f"the image adds {megabytes(analysis.added)} to {analysis.base_ref} "
               f"({megabytes(analysis.base_size)}): {megabytes(analysis.size)} in all")
    details = f"its largest layers:\n{table}\n{wasted}"
    if analysis.added > budget_mb * MB:
        fail(f"{summary}; expected at most {budget_mb} MB over the base; {details}", **analysis.evidence())
    return passed(f"{summary}, within the {budget_mb} MB budget; {details}", **analysis.evidence())
