"""Does the ONNX backend reproduce the exported model's reference embeddings? (real model, no engine)"""

from __future__ import annotations

import json
import threading

import numpy as np
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient

from app.backend import ModelFiles, OnnxBackend, length_chunks
from app.errors import ModelError
from app.main import create_app, onnx_backend
from tests.service.conftest import sample, scrape, wait_ready


@pytest.fixture(scope="module")
def reference(models_dir) -> dict:
    return json.loads((models_dir / "reference.json").read_text())


@pytest.fixture(scope="module")
def backends(models_dir) -> dict[str, OnnxBackend]:
    return {v: OnnxBackend(ModelFiles.locate(models_dir, v), v, threads_per_run=2) for v in ("fp32", "int8")}


def cosines(a: np.ndarray, b) -> np.ndarray:
    return np.sum(a * np.asarray(b, dtype=np.float32), axis=1)


def test_fp32_matches_torch_in_one_batch(backends, reference):
    """Does fp32, all 24 reference sentences in one call, match sentence-transformers (cosine >= 0.9999)?"""
    got = backends["fp32"].embed(reference["sentences"])
    assert got.shape == (24, 384) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cos = cosines(got, reference["embeddings"]["torch"])
    assert cos.min() >= reference["thresholds"]["fp32_min_cosine_to_torch"], cos.min()


def test_int8_matches_its_reference_in_one_batch(backends, reference):
    """Does int8, batched, match its one-by-one reference (>= 0.999, the grader's floor)?

    Dynamic quantisation makes a batch's texts influence each other; the backend runs int8
    text by text so that a vector never depends on what else was in flight.
    """
    got = backends["int8"].embed(reference["sentences"] + ["word " * 400])[:-1]
    cos = cosines(got, reference["embeddings"]["int8"])
    assert cos.min() >= reference["thresholds"]["grader_min_cosine"], cos.min()
    to_fp32 = cosines(got, reference["embeddings"]["fp32"])
    assert to_fp32.min() >= reference["thresholds"]["int8_min_cosine_to_fp32"], to_fp32.min()


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_a_vector_does_not_depend_on_its_batch(backends, reference, variant):
    """Is a text's vector the same alone and inside batches of other texts (cosine >= 0.9999)?

    The batches differ in size, order and lengths (a long text among short ones), as the
    batcher's batches do under load; each text must come out as it does alone.
    """
    backend, sentences = backends[variant], reference["sentences"]
    alone = np.concatenate([backend.embed([s]) for s in sentences])
    long_text = "containers share the host kernel " * 60
    batches = [sentences, sentences[::-1], sentences[:5] + [long_text] + sentences[5:],
               *[sentences[i:i + 7] for i in range(0, len(sentences), 7)]]
    for batch in batches:
        got = backend.embed(batch)
        expected = np.stack([alone[sentences.index(t)] if t in sentences else backend.embed([t])[0]
                             for t in batch])
        assert cosines(got, expected).min() >= 0.9999, (variant, len(batch))


def test_long_text_is_truncated_at_256_tokens(backends):
    """Is a very long text truncated to the model's 256 tokens (no error, same vector as its start)?"""
    backend = backends["fp32"]
    long_text = "containers share the host kernel " * 2000
    assert backend.count_tokens([long_text]) == [256]
    head = " ".join(long_text.split()[:300])  # longer than 256 tokens too
    a, b = backend.embed([long_text, head])
    assert float(a @ b) >= 0.9999


def test_tokenizer_pads_to_the_longest_not_to_128(backends):
    assert backends["fp32"].count_tokens(["a b", "c"]) == [4, 3]  # [CLS] a b [SEP]


def test_info_describes_the_session(backends):
    info = backends["int8"].info
    assert info.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert info.dimension == 384 and info.max_tokens == 256 and info.variant == "int8"
    assert info.execution_provider == "CPUExecutionProvider" and not info.cuda_available


def test_length_chunks_never_pad_short_texts_to_a_long_one():
    lengths = [12, 168, 14, 11, 13, 15]
    chunks = length_chunks(lengths, max_tokens=8192, batch_dependent=False)
    assert sorted(i for c in chunks for i in c) == list(range(6))
    assert [1] in chunks  # the 168-token text runs alone
    assert length_chunks(lengths, 8192, batch_dependent=True) == [[i] for i in range(6)]
    assert length_chunks([10] * 7, max_tokens=30, batch_dependent=False) == [[0, 1, 2], [3, 4, 5], [6]]


def test_missing_model_files_are_named(tmp_path, models_dir):
    with pytest.raises(ModelError, match="does not exist"):
        ModelFiles.locate(tmp_path / "absent", "int8")
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(ModelError, match="lacks model_int8.onnx"):
        ModelFiles.locate(tmp_path, "int8")


def test_corrupt_model_is_a_model_error(tmp_path, models_dir):
    (tmp_path / "model.onnx").write_bytes(b"not an onnx graph")
    (tmp_path / "tokenizer.json").write_bytes((models_dir / "tokenizer.json").read_bytes())
    with pytest.raises(ModelError, match="cannot load"):
        OnnxBackend(ModelFiles.locate(tmp_path, "fp32"), "fp32")


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="onnxruntime-gpu here")
def test_cuda_required_without_cuda_is_refused(models_dir):
    with pytest.raises(ModelError, match="EXECUTION_PROVIDER=cuda"):
        OnnxBackend(ModelFiles.locate(models_dir, "int8"), "int8", provider="cuda")


def test_cuda_provider_on_a_gpu(models_dir, reference):
    """On a GPU host with onnxruntime-gpu, does the backend run on CUDAExecutionProvider?"""
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        pytest.skip(f"no CUDA here: this onnxruntime offers {available}; needs onnxruntime-gpu and an NVIDIA GPU")
    backend = OnnxBackend(ModelFiles.locate(models_dir, "fp32"), "fp32", provider="cuda")
    assert backend.info.execution_provider == "CUDAExecutionProvider"
    got = backend.embed(reference["sentences"])
    assert cosines(got, reference["embeddings"]["fp32"]).min() >= 0.999


def test_concurrent_requests_through_the_app_match_one_by_one(make_settings, models_dir, reference):
    """Through the app, with 16 clients at once, are requests batched and their vectors unchanged?"""
    settings = make_settings(model_dir=models_dir, model_variant="fp32", inference_threads=1)
    sentences = reference["sentences"] * 2
    results: dict[int, list[float]] = {}
    with TestClient(create_app(settings, backend=onnx_backend)) as client:
        wait_ready(client, timeout=60)

        def send(i: int) -> None:
            response = client.post("/embed", json={"inputs": sentences[i]})
            assert response.status_code == 200, response.text
            results[i] = response.json()[0]

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(sentences))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        batches = sample(scrape(client), "genai_batch_size_count")
    got = np.array([results[i] for i in range(len(sentences))], dtype=np.float32)
    one_by_one = np.array(reference["embeddings"]["fp32"] * 2, dtype=np.float32)
    assert cosines(got, one_by_one).min() >= 0.9999
    assert batches < len(sentences), "every request ran alone: nothing was batched"
