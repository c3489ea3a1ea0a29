"""Talking to the service without an engine: a small fake service on a local port stands in for it
(grader.exercises._service), fed with the export's reference sentences and vectors."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from grader.errors import CheckFailed, NotReady
from grader.exercises._service import (Endpoint, check_reference_embeddings, reference, vector_problem,
                                       wait_until_ready)


class FakeService:
    """/health, /info and /embed; `distort(vector)` changes what /embed answers."""

    def __init__(self, models_dir, variant="int8", health=(200, {"status": "ok"}), distort=None):
        ref = reference(str(models_dir))
        vectors = dict(zip(ref["sentences"], ref["embeddings"][variant]))
        self.calls: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/health":
                    self.answer(*health)
                else:
                    self.answer(200, {"variant": variant, "execution_provider": "CPUExecutionProvider"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                texts = [body["inputs"]] if isinstance(body["inputs"], str) else body["inputs"]
                outer.calls.append(len(texts))
                out = [vectors[t] for t in texts]
                self.answer(200, [distort(v) if distort else v for v in out])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = Endpoint(f"http://127.0.0.1:{self.server.server_address[1]}", 5.0)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake(models_dir):
    made = []

    def make(**kwargs):
        made.append(FakeService(models_dir, **kwargs))
        return made[-1]
    yield make
    for service in made:
        service.close()


def test_reference_embeddings_are_asked_one_sentence_per_request(fake, models_dir):
    """int8 vectors depend on their batch: is every sentence sent alone, and compared to its variant?"""
    service = fake(variant="int8")
    evidence = check_reference_embeddings(service.endpoint, models_dir)
    assert service.calls == [1] * 24
    assert evidence["variant"] == "int8" and evidence["min_cosine"] > 0.9999


def test_the_variant_info_reports_picks_the_reference(fake, models_dir):
    """int8 vectors served while /info says fp32: judged against fp32, they fail (the export's int8 is
    within 0.95 of fp32, not 0.999), and the message says which reference was used."""
    ref = reference(str(models_dir))
    int8 = dict(zip(ref["sentences"], ref["embeddings"]["int8"]))
    lookup = {tuple(v): int8[s] for s, v in zip(ref["sentences"], ref["embeddings"]["fp32"])}
    assert check_reference_embeddings(fake(variant="fp32").endpoint, models_dir)["variant"] == "fp32"
    service = fake(variant="fp32", distort=lambda v: lookup[tuple(v)])
    with pytest.raises(CheckFailed, match="compared with the fp32 reference vectors"):
        check_reference_embeddings(service.endpoint, models_dir)


def test_wrong_embeddings_fail_with_the_sentence_and_the_cosine(fake, models_dir):
    service = fake(distort=lambda v: [x if i % 2 else -x for i, x in enumerate(v)])
    with pytest.raises(CheckFailed, match=r"reference sentence 1 .* has cosine"):
        check_reference_embeddings(service.endpoint, models_dir)


@pytest.mark.parametrize("vector, fragment", [
    ([0.5] * 10, "has 10 dimensions, expected 384"),
    ([1.0] * 384, "is not L2-normalised"),
    ("nope", "is not a list of numbers"),
])
def test_vector_problems_are_named(vector, fragment):
    expected = [1.0] + [0.0] * 383
    assert fragment in vector_problem(vector, expected, 0.999)


def test_a_service_that_reports_a_load_error_ends_the_wait_at_once(fake):
    """/health 503 {"status": "error"}: is the wait over in well under its limit, with the reason?"""
    service = fake(health=(503, {"status": "error", "detail": "EXECUTION_PROVIDER=cuda but CUDA could not start"}))
    start = time.monotonic()
    with pytest.raises(NotReady, match="could not load the model: EXECUTION_PROVIDER=cuda"):
        wait_until_ready(service.endpoint, timeout=30)
    assert time.monotonic() - start < 5


def test_a_service_that_never_answers_times_out_with_the_last_answer(fake):
    service = fake(health=(503, {"status": "loading"}))
    with pytest.raises(NotReady, match=r"did not answer 200 within 1 s \(last: HTTP 503"):
        wait_until_ready(service.endpoint, timeout=1)
