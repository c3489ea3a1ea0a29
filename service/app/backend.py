"""Inference backends. The HTTP layer only knows the `Embedder` protocol; `OnnxBackend` is the real one."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from .errors import ModelError

log = logging.getLogger("app.backend")
# ONNX Runtime >= 1.32 sends usage telemetry unless told not to; a served model should not phone
# home (and, offline, it only logs a warning at every start).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
# The server runs texts side by side already; the tokenizer's own thread pool would only spin
# against the inference threads for the same cores.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# variant -> (file, batch-dependent). The int8 export uses dynamic quantisation, which scales
# activations per tensor: a text's vector would depend on the other texts of its batch, so int8
# runs text by text (its reference embeddings are computed that way too).
VARIANTS = {"fp32": ("model.onnx", False), "int8": ("model_int8.onnx", True)}
TOKENIZER_FILE = "tokenizer.json"
DEFAULT_MAX_TOKENS = 256
# A chunk may hold at most this share of padding: short texts are never padded to a long one.
MAX_PADDING_OVERHEAD = 0.25


@dataclass(frozen=True)
class BackendInfo:
    """What /info reports about the model and how it runs."""

    model_id: str
    variant: str
    dimension: int
    max_tokens: int
    execution_provider: str
    providers: list[str] = field(default_factory=list)
    cuda_available: bool = False
    threads_per_run: int = 1


class Embedder(Protocol):
    """An inference backend: texts in, L2-normalised float32 vectors [n, dimension] out.

    Texts are tokenized once, when a request arrives (its token counts size the batches), and
    the tokens go through the batcher to `embed_tokens`.
    """

    info: BackendInfo

    def tokenize(self, texts: list[str]) -> list[Sequence[int]]: ...

    def embed_tokens(self, rows: list[Sequence[int]]) -> np.ndarray: ...


@dataclass(frozen=True)
class ModelFiles:
    """The exported model directory (`make model`): one ONNX graph per variant, the tokenizer, metadata."""

    model: Path
    tokenizer: Path
    model_id: str
    max_tokens: int
    batch_dependent: bool

    @classmethod
    def locate(cls, model_dir: Path, variant: str) -> ModelFiles:
        """Check the directory without loading anything, so a missing mount fails at once and clearly."""
        filename, batch_dependent = VARIANTS[variant]
        hint = "mount the exported model directory (make model) read-only at MODEL_DIR"
        if not model_dir.is_dir():
            raise ModelError(f"model directory {model_dir} does not exist: {hint}")
        missing = [name for name in (filename, TOKENIZER_FILE) if not (model_dir / name).is_file()]
        if missing:
            raise ModelError(f"model directory {model_dir} lacks {', '.join(missing)}: {hint}")
        meta = {}
        for name in ("manifest.json", "reference.json"):
            try:
                meta = {**json.loads((model_dir / name).read_text(encoding="utf-8")), **meta}
            except (OSError, ValueError):
                continue
        return cls(model=model_dir / filename, tokenizer=model_dir / TOKENIZER_FILE,
                   model_id=str(meta.get("model_id", model_dir.name)),
                   max_tokens=int(meta.get("max_tokens", DEFAULT_MAX_TOKENS)),
                   batch_dependent=batch_dependent)


def mean_pool_normalised(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked mean over tokens, then L2 normalisation (what sentence-transformers does for this model)."""
    weights = mask.astype(np.float32)
    pooled = np.einsum("bsd,bs->bd", hidden, weights) / np.clip(weights.sum(1, keepdims=True), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


def length_chunks(lengths: list[int], max_tokens: int, batch_dependent: bool) -> list[list[int]]:
    """Split one batch into runs of similar length (indices), so padding stays small.

    Padding to the longest text costs real compute: a 168-token text in a batch of 16 short
    ones makes every row 168 tokens long. Sorting by length bounds that waste.
    """
    if batch_dependent:
        return [[i] for i in range(len(lengths))]
    chunks: list[list[int]] = []
    current: list[int] = []
    real = 0
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        n, length = len(current) + 1, lengths[i]
        padded = n * length  # sorted ascending: the newcomer is the longest
        if current and (padded > max_tokens or padded > (1 + MAX_PADDING_OVERHEAD) * (real + length)):
            chunks.append(current)
            current, real = [], 0
        current.append(i)
        real += length
    if current:
        chunks.append(current)
    return chunks


def choose_providers(preference: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if preference == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if preference == "cuda":
        raise ModelError("EXECUTION_PROVIDER=cuda but this onnxruntime has no CUDA provider "
                         f"(available: {', '.join(available)}); install onnxruntime-gpu (Dockerfile.gpu)")
    return ["CPUExecutionProvider"]


class OnnxBackend:
    """all-MiniLM-L6-v2 on ONNX Runtime: tokenizers, the ONNX graph, masked mean pooling, L2 norm."""

    def __init__(self, files: ModelFiles, variant: str, *, threads_per_run: int = 1,
                 provider: str = "auto", chunk_tokens: int = 8192) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.files = files
        self.chunk_tokens = max(chunk_tokens, files.max_tokens)
        self.tokenizer = Tokenizer.from_file(str(files.tokenizer))
        # The packaged tokenizer pads every text to 128 and truncates there; the model takes 256.
        self.tokenizer.enable_truncation(max_length=files.max_tokens)
        self.tokenizer.no_padding()  # padded per chunk below, to that chunk's longest text
        self.pad_id = self.tokenizer.token_to_id("[PAD]") or 0

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads_per_run
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # a missing GPU is reported by /info, not as a C++ warning
        requested = choose_providers(provider)
        try:
            self.session = ort.InferenceSession(str(files.model), options, providers=requested)
        except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt files
            raise ModelError(f"cannot load {files.model}: {exc}") from exc
        used = self.session.get_providers()
        if provider == "cuda" and "CUDAExecutionProvider" not in used:
            raise ModelError("EXECUTION_PROVIDER=cuda but CUDA could not start (no GPU visible, or "
                             "CUDA/cuDNN libraries missing)")
        if "CUDAExecutionProvider" in requested and "CUDAExecutionProvider" not in used:
            log.warning("CUDA is unavailable (no GPU visible, or CUDA/cuDNN libraries missing): "
                        "running on CPUExecutionProvider")

        self.input_names = self._check_inputs()
        self.output_name = "last_hidden_state"
        outputs = {o.name: o for o in self.session.get_outputs()}
        if self.output_name not in outputs or len(outputs[self.output_name].shape) != 3:
            raise ModelError(f"{files.model} must output last_hidden_state [batch, sequence, hidden]; "
                             f"it outputs {sorted(outputs)}")
        dimension = outputs[self.output_name].shape[2]
        if not isinstance(dimension, int):  # a symbolic axis: ask the model
            dimension = int(self._run([[101, 102]]).shape[1])
        self.info = BackendInfo(
            model_id=files.model_id, variant=variant, dimension=dimension,
            max_tokens=files.max_tokens, execution_provider=used[0], providers=used,
            cuda_available="CUDAExecutionProvider" in used, threads_per_run=threads_per_run)

    def _check_inputs(self) -> list[str]:
        names = [i.name for i in self.session.get_inputs()]
        required, optional = {"input_ids", "attention_mask"}, {"token_type_ids"}
        if not required <= set(names) or set(names) - required - optional:
            raise ModelError(f"{self.files.model} takes inputs {names}; expected input_ids, "
                             "attention_mask and optionally token_type_ids")
        return names

    def _run(self, rows: list[Sequence[int]]) -> np.ndarray:
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = row
            mask[i, :len(row)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run([self.output_name], feed)[0]
        return mean_pool_normalised(hidden, mask)

    def tokenize(self, texts: list[str]) -> list[Sequence[int]]:
        """Token ids per text, truncated at max_tokens (no padding)."""
        if len(texts) == 1:  # encode_batch's fan-out costs more than it saves on one text
            return [self.tokenizer.encode(texts[0]).ids]
        return [e.ids for e in self.tokenizer.encode_batch(texts)]

    def embed_tokens(self, rows: list[Sequence[int]]) -> np.ndarray:
        out = np.empty((len(rows), self.info.dimension), dtype=np.float32)
        for chunk in length_chunks([len(r) for r in rows], self.chunk_tokens, self.files.batch_dependent):
            out[chunk] = self._run([rows[i] for i in chunk])
        return out

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embed_tokens(self.tokenize(texts))

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(r) for r in self.tokenize(texts)]

    def warm_up(self) -> None:
        """The first run allocates ORT's buffers; do it before /health says ready."""
        self.embed(["warm up", "a somewhat longer sentence to warm up the session " * 4])
