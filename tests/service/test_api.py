"""Does the HTTP API keep the contract's routes, shapes and error codes? (fake backend, no model)"""

from __future__ import annotations

import base64
import re
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.errors import ModelError
from app.main import create_app
from app.metrics import Metrics
from prometheus_client.parser import text_string_to_metric_families

from tests.service.conftest import sample, scrape
from tests.service.fakes import DIMENSION, FakeBackend, fake_vector

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def assert_error(response, status: int, fragment: str = "") -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str) and body["error_type"], body
    assert fragment.lower() in body["error"].lower(), body
    return body


# --- health and info --------------------------------------------------------------------------

def test_health_is_503_until_the_model_is_loaded(make_settings):
    """Does /health answer 503 (and /embed 503) while the model loads, then 200?"""
    loaded = threading.Event()

    def slow_factory(settings):
        def load():
            assert loaded.wait(10)
            return FakeBackend()
        return load

    with TestClient(create_app(make_settings(), backend=slow_factory)) as client:
        try:
            loading = client.get("/health")
            assert loading.status_code == 503 and loading.json() == {"status": "loading"}
            assert loading.headers["retry-after"] == "1"
            assert_error(client.post("/embed", json={"inputs": "x"}), 503, "loading")
        finally:
            loaded.set()
        deadline = time.monotonic() + 10
        while client.get("/health").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.01)  # polling interval
        assert client.get("/health").json() == {"status": "ok"}


def test_health_reports_a_failed_load(make_settings):
    """Is a model that fails to load reported by /health (503, status error, the reason)?"""
    def broken(settings):
        def load():
            raise ModelError("model.onnx is corrupt")
        return load

    with TestClient(create_app(make_settings(), backend=broken)) as client:
        deadline = time.monotonic() + 10
        while client.get("/health").json()["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.01)  # polling interval
        response = client.get("/health")
        assert response.status_code == 503
        assert response.json() == {"status": "error", "detail": "model.onnx is corrupt"}
        assert_error(client.get("/info"), 503, "corrupt")


def test_startup_refuses_a_missing_model_directory(make_settings, tmp_path):
    """Does the real backend stop startup at once, naming the directory, when no model is mounted?"""
    app = create_app(make_settings(model_dir=tmp_path / "nowhere"))
    with pytest.raises(RuntimeError, match=r"nowhere does not exist: mount the exported model"):
        with TestClient(app):
            pass


def test_startup_refuses_invalid_settings(monkeypatch, tmp_path):
    """Are unsafe environment values refused at startup with the variable's name?"""
    monkeypatch.setenv("MAX_INPUTS", "0")
    monkeypatch.setenv("API_TOKEN_FILE", str(tmp_path / "none"))
    with pytest.raises(RuntimeError, match=r"invalid settings: MAX_INPUTS: Input should be greater"):
        with TestClient(create_app()):
            pass


def test_info_reports_model_provider_limits_and_version(make_client):
    client = make_client(max_inputs=8, max_input_chars=500)
    info = client.get("/info").json()
    assert info["model_id"] == "fake/minilm" and info["dimension"] == DIMENSION
    assert info["variant"] == "int8" and info["execution_provider"] == "CPUExecutionProvider"
    assert info["cuda_available"] is False
    assert info["limits"]["max_inputs"] == 8 and info["limits"]["max_input_chars"] == 500
    assert info["limits"]["max_tokens"] == 256
    assert info["version"] and info["storage"] == "sqlite" and info["auth"] is False


# --- embeddings -------------------------------------------------------------------------------

def test_embed_one_text_and_a_list(client):
    """Does /embed return [[384 floats]] for a string and one vector per input for a list?"""
    one = client.post("/embed", json={"inputs": "hello"})
    assert one.status_code == 200
    assert np.asarray(one.json()).shape == (1, DIMENSION)
    many = np.asarray(client.post("/embed", json={"inputs": ["a", "b", "hello"]}).json())
    assert many.shape == (3, DIMENSION)
    np.testing.assert_allclose(np.linalg.norm(many, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(many[2], one.json()[0], atol=1e-7)
    np.testing.assert_allclose(many[0], fake_vector("a"), atol=1e-7)


def test_similarity_scores_each_sentence(client):
    body = {"inputs": {"source_sentence": "same", "sentences": ["same", "other", "third"]}}
    scores = client.post("/similarity", json=body).json()
    assert len(scores) == 3
    assert scores[0] == pytest.approx(1.0, abs=1e-6)
    assert scores[1] == pytest.approx(float(fake_vector("same") @ fake_vector("other")), abs=1e-6)


def test_openai_embeddings_float_and_base64(client):
    """Does /v1/embeddings answer in OpenAI's shape, with base64 float32 equal to the floats?"""
    request = {"input": ["one two", "three"], "model": "anything"}
    floats = client.post("/v1/embeddings", json=request).json()
    assert floats["object"] == "list" and floats["model"] == "fake/minilm"
    assert [d["index"] for d in floats["data"]] == [0, 1]
    assert all(d["object"] == "embedding" for d in floats["data"])
    assert floats["usage"] == {"prompt_tokens": 4 + 3, "total_tokens": 7}
    encoded = client.post("/v1/embeddings", json={**request, "encoding_format": "base64"}).json()
    decoded = np.frombuffer(base64.b64decode(encoded["data"][1]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, floats["data"][1]["embedding"], atol=1e-7)
    single = client.post("/v1/embeddings", json={"input": "three"}).json()
    assert len(single["data"]) == 1


@pytest.mark.parametrize("path,body,where", [
    ("/embed", {"inputs": 3}, "inputs"),
    ("/embed", {"inputs": [1, 2]}, "inputs"),
    ("/embed", {"text": "wrong field"}, "inputs"),
    ("/embed", {"inputs": "x", "normalize": False}, "normalize"),
    ("/similarity", {"inputs": {"source_sentence": "a", "sentences": []}}, "sentences"),
    ("/similarity", {"inputs": ["a", "b"]}, "inputs"),
    ("/v1/embeddings", {"input": [[1, 2, 3]]}, "input"),
    ("/v1/embeddings", {"input": "x", "encoding_format": "int8"}, "encoding_format"),
    ("/v1/embeddings", {"input": "x", "dimensions": 128}, "dimensions"),
    ("/documents", {"text": ""}, "text"),
    ("/documents", {"text": "ok", "id": "bad id/with slash"}, "id"),
])
def test_malformed_bodies_are_422(client, path, body, where):
    """Is every wrongly-shaped body a 422 with a JSON error naming the field?"""
    assert_error(client.post(path, json=body), 422, where)


def test_invalid_json_and_query_are_422(client):
    assert_error(client.post("/embed", content=b"{not json", headers={"content-type": "application/json"}), 422)
    assert_error(client.post("/embed", content=b"\xff\xfe", headers={"content-type": "application/json"}), 422)
    assert_error(client.get("/search", params={"q": "x", "k": 0}), 422, "k")
    assert_error(client.get("/search", params={"q": "x", "k": "many"}), 422, "k")
    assert_error(client.get("/search"), 422, "q")


@pytest.mark.parametrize("path,body", [("/embed", b'{"inputs": "ab\\ud800cd"}'),
                                       ("/documents", b'{"text": "\\udfff"}')])
def test_lone_surrogates_are_422(client, path, body):
    """Is text that JSON allows but Unicode does not (a lone surrogate) refused before the tokenizer?"""
    assert_error(client.post(path, content=body, headers={"content-type": "application/json"}), 422, "Unicode")


def test_empty_input_list_is_422_but_an_empty_string_embeds(client):
    assert client.post("/embed", json={"inputs": ""}).status_code == 200
    assert_error(client.post("/embed", json={"inputs": []}), 422, "inputs")


def test_too_many_or_too_long_inputs_are_413(make_client):
    """Are limits (MAX_INPUTS, MAX_INPUT_CHARS, body size) a 413 naming the limit, on every route?"""
    client = make_client(max_inputs=3, max_input_chars=20)
    assert_error(client.post("/embed", json={"inputs": ["a"] * 4}), 413, "MAX_INPUTS")
    assert_error(client.post("/embed", json={"inputs": "x" * 21}), 413, "MAX_INPUT_CHARS")
    assert_error(client.post("/v1/embeddings", json={"input": ["a"] * 4}), 413, "MAX_INPUTS")
    similar = {"inputs": {"source_sentence": "a", "sentences": ["b", "c", "d"]}}  # 4 texts in all
    assert_error(client.post("/similarity", json=similar), 413, "MAX_INPUTS")
    assert_error(client.post("/documents", json={"text": "y" * 21}), 413, "MAX_INPUT_CHARS")
    assert_error(client.get("/search", params={"q": "z" * 21}), 413, "MAX_INPUT_CHARS")
    huge = b'{"inputs": "' + b"x" * 2_000_000 + b'"}'
    assert_error(client.post("/embed", content=huge, headers={"content-type": "application/json"}), 413, "body")
    assert client.post("/embed", json={"inputs": ["a"] * 3}).status_code == 200


def test_chunked_body_over_the_limit_is_413(make_client):
    """Is a body sent without Content-Length also cut off at the limit?"""
    client = make_client(max_inputs=1, max_input_chars=10)

    def chunks():
        yield b'{"inputs": "'
        for _ in range(50):
            yield b"x" * 10_000
        yield b'"}'

    assert_error(client.post("/embed", content=chunks(), headers={"content-type": "application/json"}), 413)


# --- auth -------------------------------------------------------------------------------------

@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "api_token"
    path.write_text(TOKEN + "\n")
    return path


ROUTES = [("GET", "/info", None), ("POST", "/embed", {"inputs": "x"}),
          ("POST", "/similarity", {"inputs": {"source_sentence": "a", "sentences": ["b"]}}),
          ("POST", "/v1/embeddings", {"input": "x"}), ("POST", "/documents", {"text": "t", "id": "d1"}),
          ("GET", "/documents/d1", None), ("GET", "/search?q=t", None)]


@pytest.mark.parametrize("method,path,body", ROUTES)
def test_auth_on_every_route_needs_the_token(make_client, token_file, method, path, body):
    """With a token file, is every route but /health and /metrics a 401 without the right token?"""
    client = make_client(api_token_file=token_file)
    missing = client.request(method, path, json=body)
    assert_error(missing, 401, "missing bearer token")
    assert missing.headers["www-authenticate"] == "Bearer"
    assert_error(client.request(method, path, json=body, headers={"Authorization": "Bearer wrong"}), 401)
    assert_error(client.request(method, path, json=body, headers={"Authorization": TOKEN}), 401)
    if path.startswith("/documents/"):
        client.post("/documents", json={"text": "t", "id": "d1"}, headers=AUTH)
    assert client.request(method, path, json=body, headers=AUTH).status_code in (200, 201)


def test_auth_exempts_health_and_metrics(make_client, token_file):
    client = make_client(api_token_file=token_file)
    assert client.get("/health").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/info", headers=AUTH).json()["auth"] is True


def test_auth_from_the_api_token_variable(make_client):
    client = make_client(api_token=TOKEN)
    assert_error(client.post("/embed", json={"inputs": "x"}), 401)
    assert client.post("/embed", json={"inputs": "x"}, headers=AUTH).status_code == 200


def test_auth_off_without_token(client):
    assert client.post("/embed", json={"inputs": "x"}).status_code == 200
    assert client.get("/info").json()["auth"] is False


def test_unauthenticated_requests_learn_nothing_about_validation(make_client, token_file):
    """Is a bad body from an unauthenticated client a 401, not a 422?"""
    client = make_client(api_token_file=token_file)
    assert_error(client.post("/embed", json={"inputs": 3}), 401)


# --- documents and search ---------------------------------------------------------------------

def test_documents_store_get_and_search(client):
    """Do documents get ids, come back by id, and rank by cosine in /search, best first?"""
    created = client.post("/documents", json={"text": "named volumes keep data"})
    assert created.status_code == 201
    generated = created.json()["id"]
    assert created.headers["location"] == f"/documents/{generated}"
    assert client.post("/documents", json={"text": "pizza on friday", "id": "pizza"}).json() == {"id": "pizza"}
    assert client.post("/documents", json={"text": "ports on localhost", "id": "ports"}).status_code == 201
    assert client.get(f"/documents/{generated}").json() == {"id": generated, "text": "named volumes keep data"}
    hits = client.get("/search", params={"q": "pizza on friday", "k": 2}).json()
    assert len(hits) == 2
    assert hits[0]["id"] == "pizza" and hits[0]["text"] == "pizza on friday"
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-6)
    assert hits[0]["score"] >= hits[1]["score"]
    assert len(client.get("/search", params={"q": "x", "k": 100}).json()) == 3


def test_posting_an_existing_id_replaces_the_document(client):
    client.post("/documents", json={"text": "old", "id": "doc-1"})
    assert client.post("/documents", json={"text": "new", "id": "doc-1"}).status_code == 201
    assert client.get("/documents/doc-1").json()["text"] == "new"
    assert len(client.get("/search", params={"q": "new"}).json()) == 1


def test_search_on_an_empty_store_is_empty(client):
    assert client.get("/search", params={"q": "anything"}).json() == []


def test_missing_document_and_unknown_route_are_404(client):
    assert_error(client.get("/documents/nope"), 404, "nope")
    assert_error(client.get("/no-such-route"), 404)


def test_documents_persist_in_the_data_dir(make_client):
    """Does a document stored by one app instance come back from the next on the same DATA_DIR?"""
    make_client().post("/documents", json={"text": "kept", "id": "keep"})
    assert make_client().get("/documents/keep").json() == {"id": "keep", "text": "kept"}


def test_unwritable_data_dir_is_503_for_documents_only(make_client, tmp_path):
    """Without a writable DATA_DIR, do documents fail with a clear 503 while embeddings work?"""
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    client = make_client(data_dir=not_a_dir)
    assert_error(client.post("/documents", json={"text": "x"}), 503, "DATA_DIR must be a writable directory")
    assert client.post("/embed", json={"inputs": "x"}).status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/info").json()["storage_status"].startswith("unavailable")


# --- overload and failures --------------------------------------------------------------------

def test_full_queue_is_429_with_retry_after(make_client):
    """When the queue holds MAX_QUEUE_SIZE texts, is the next request a 429 with Retry-After?"""
    gate = threading.Event()
    backend = FakeBackend(gate=gate)
    client = make_client(backend, max_inputs=2, max_queue_size=2, inference_threads=1)
    results: dict[str, int] = {}

    def send(name: str, inputs: list[str]) -> None:
        results[name] = client.post("/embed", json={"inputs": inputs}).status_code

    running = threading.Thread(target=send, args=("running", ["a"]))
    queued = threading.Thread(target=send, args=("queued", ["b", "c"]))
    try:
        running.start()
        assert backend.entered.acquire(timeout=10), "the first request never reached the backend"
        queued.start()
        deadline = time.monotonic() + 10
        while sample(scrape(client), "genai_queue_depth") != 2:
            assert time.monotonic() < deadline, "the second request was never queued"
            time.sleep(0.01)  # polling interval
        refused = client.post("/embed", json={"inputs": ["d"]})
        body = assert_error(refused, 429, "queue is full")
        assert int(refused.headers["retry-after"]) >= 1, body
    finally:
        gate.set()
        running.join(10)
        queued.join(10)
    assert results == {"running": 200, "queued": 200}


def test_backend_failure_is_a_json_500_not_a_crash(make_client):
    client = make_client(FakeBackend(fail=True))
    assert_error(client.post("/embed", json={"inputs": "x"}), 500, "inference failed")
    assert client.get("/health").status_code == 200


# --- metrics ----------------------------------------------------------------------------------

def test_metrics_in_prometheus_text_format(make_client):
    """Are requests counted by route template and status, with latency, batch sizes and queue depth?"""
    client = make_client(inference_threads=1)  # one worker: the request's two texts make one batch
    client.post("/embed", json={"inputs": ["a", "b"]})
    client.get("/documents/missing-1")
    client.get("/documents/missing-2")
    got = scrape(client)
    assert sample(got, "genai_http_requests_total", route="/embed", method="POST", status="200") == 1
    assert sample(got, "genai_http_requests_total", route="/documents/{doc_id}", method="GET", status="404") == 2
    assert sample(got, "genai_http_request_duration_seconds_bucket", route="/embed", le="+Inf") == 1
    assert sample(got, "genai_http_request_duration_seconds_count", route="/embed") == 1
    assert sample(got, "genai_batch_size_sum") == 2 and sample(got, "genai_batch_size_count") == 1
    assert sample(got, "genai_embedded_texts_total") == 2
    assert sample(got, "genai_queue_depth") == 0 and sample(got, "genai_model_ready") == 1


def test_metrics_include_the_process_and_its_limits(make_client):
    """Can a lesson on limits read the process's memory, CPU and open files from /metrics?"""
    got = scrape(make_client())
    assert sample(got, "process_resident_memory_bytes") > 10e6
    assert sample(got, "process_cpu_seconds_total") > 0
    assert 0 < sample(got, "process_open_fds") <= sample(got, "process_max_fds")


def test_container_limits_come_from_the_cgroup(tmp_path):
    """Are the cgroup's memory limit, usage and CPU quota exposed, and an unlimited one left out?"""
    (tmp_path / "memory.max").write_text("536870912\n")
    (tmp_path / "memory.current").write_text("123456789\n")
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    metrics = Metrics(cgroup_root=tmp_path)
    got = {(s.name, frozenset(s.labels.items())): s.value
           for f in text_string_to_metric_families(metrics.render().decode()) for s in f.samples}
    assert sample(got, "genai_container_memory_limit_bytes") == 536870912
    assert sample(got, "genai_container_memory_usage_bytes") == 123456789
    assert sample(got, "genai_container_cpu_limit") == 1.5
    (tmp_path / "memory.max").write_text("max\n")
    (tmp_path / "cpu.max").write_text("max 100000\n")
    names = {f.name for f in text_string_to_metric_families(metrics.render().decode())}
    assert "genai_container_memory_limit_bytes" not in names and "genai_container_cpu_limit" not in names
    assert "genai_container_memory_usage_bytes" in names


def test_each_app_has_its_own_registry(make_client):
    """Do two apps in one process count separately (no global registry shared between tests)?"""
    first, second = make_client(), make_client()
    first.post("/embed", json={"inputs": "a"})
    assert sample(scrape(first), "genai_embedded_texts_total") == 1
    assert sample(scrape(second), "genai_embedded_texts_total") == 0


# --- docs -------------------------------------------------------------------------------------

def test_docs_load_nothing_from_outside(client):
    """Does /docs work offline: every script, style and icon it names is served by the service?"""
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets), assets
    assert not [a for a in assets if "//" in a], f"/docs loads from outside: {assets}"
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert "openapi.json" in page.text and client.get("/openapi.json").status_code == 200
