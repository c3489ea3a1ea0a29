"""Does the exported ONNX model reproduce the original model's embeddings?"""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer


@pytest.fixture(scope="module")
def reference(models_dir):
    return json.loads((models_dir / "reference.json").read_text())


def embed(models_dir, fname, sentences):
    tok = Tokenizer.from_file(str(models_dir / "tokenizer.json"))
    sess = ort.InferenceSession(str(models_dir / fname), providers=["CPUExecutionProvider"])
    enc = tok.encode_batch(sentences)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    hidden = sess.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask,
                                              "token_type_ids": np.zeros_like(ids)})[0]
    m = mask[..., None].astype(np.float32)
    pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def test_export_files_present(models_dir):
    """Are both variants, the tokenizer and the references there, as the manifest says?"""
    manifest = json.loads((models_dir / "manifest.json").read_text())
    assert set(manifest["files"]) == {"model.onnx", "model_int8.onnx", "tokenizer.json", "reference.json"}
    for name in manifest["files"]:
        assert (models_dir / name).stat().st_size > 0


def test_export_is_readable_by_any_user(models_dir):
    """Can the service's own user in a container (uid 1001, not the exporter) read the folder and files?"""
    import stat
    assert models_dir.stat().st_mode & (stat.S_IROTH | stat.S_IXOTH) == stat.S_IROTH | stat.S_IXOTH
    for path in models_dir.iterdir():
        assert path.stat().st_mode & stat.S_IROTH, path.name


def test_tokenizer_truncates_at_256_and_pads_to_longest(models_dir):
    """Is the packaged tokenizer's 128-token padding fixed (truncate at 256, pad to longest)?"""
    tok = Tokenizer.from_file(str(models_dir / "tokenizer.json"))
    enc = tok.encode_batch(["short", "word " * 400])
    assert len(enc[0].ids) == len(enc[1].ids) == 256
    assert len(tok.encode_batch(["a b", "c"])[0].ids) == 4  # [CLS] a b [SEP]: no fixed padding


def test_fp32_matches_torch(models_dir, reference):
    """Does fp32 ONNX match torch (cosine >= 0.9999) even when batched?"""
    got = embed(models_dir, "model.onnx", reference["sentences"])
    torch_ref = np.array(reference["embeddings"]["torch"], dtype=np.float32)
    cos = np.sum(got * torch_ref, axis=1)
    assert cos.min() >= reference["thresholds"]["fp32_min_cosine_to_torch"], cos.min()


def test_int8_close_to_fp32(models_dir, reference):
    """Is int8 within the written-down floor of fp32, and equal to its own reference one by one?

    Dynamic quantisation scales activations per tensor, so an int8 embedding
    depends on what else is in the batch: references are computed one by one.
    """
    sentences = reference["sentences"]
    fp32 = np.array(reference["embeddings"]["fp32"], dtype=np.float32)
    own = np.array(reference["embeddings"]["int8"], dtype=np.float32)
    one_by_one = np.concatenate([embed(models_dir, "model_int8.onnx", [s]) for s in sentences])
    assert np.sum(one_by_one * own, axis=1).min() >= reference["thresholds"]["grader_min_cosine"]
    batched = embed(models_dir, "model_int8.onnx", sentences)
    assert np.sum(batched * fp32, axis=1).min() >= reference["thresholds"]["int8_min_cosine_to_fp32"]
