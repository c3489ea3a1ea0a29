"""Talking to the course's service once it runs (05-08): readiness, /info, and embeddings
compared with the model export's reference vectors."""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dockerkit.http import HttpAnswer, ProbeError, http
from dockerkit.wait import WaitFailed, wait_for_http
from grader.errors import NotReady
from grader.registry import fail

DIMENSION = 384
NORM_TOLERANCE = 1e-3     # an L2-normalised vector's norm, within float32 rounding


@functools.lru_cache(maxsize=4)
def reference(models_dir: str) -> dict:
    """reference.json of the export: sentences, and their one-by-one embeddings per variant."""
    return json.loads((Path(models_dir) / "reference.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Endpoint:
    """The service at `base` (http://127.0.0.1:port), with the bearer token where one is configured."""
    base: str
    timeout: float
    token: str | None = None

    def headers(self, auth: bool = True) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if auth and self.token else {}

    def call(self, method: str, path: str, payload: Any = None, auth: bool = True) -> HttpAnswer:
        """One request; no answer at all is a failed check that says so."""
        try:
            return http(method, self.base + path, timeout=self.timeout, payload=payload,
                        headers=self.headers(auth))
        except ProbeError as exc:
            fail(f"{method} {path} got no answer: {exc}")

    def json(self, method: str, path: str, payload: Any = None, expect: int = 200) -> Any:
        answer = self.call(method, path, payload)
        if answer.status != expect:
            fail(f"{method} {path} answered {answer.status}, expected {expect}: {_body(answer)}",
                 status=answer.status)
        try:
            return answer.json()
        except ValueError:
            fail(f"{method} {path} answered {answer.status} with a body that is not JSON: {_body(answer)}")


def _body(answer: HttpAnswer, limit: int = 200) -> str:
    text = answer.body.decode("utf-8", errors="replace").strip()
    return (text[:limit] + "...") if len(text) > limit else (text or "(empty body)")


def _load_failure(what: str) -> Callable[[HttpAnswer], str | None]:
    def judge(answer: HttpAnswer) -> str | None:
        try:
            health = answer.json()
        except ValueError:
            return None
        if isinstance(health, dict) and health.get("status") == "error":
            return f"{what} could not load the model: {health.get('detail') or _body(answer)}"
        return None
    return judge


def wait_until_ready(endpoint: Endpoint, *, timeout: float, container: Any = None,
                     what: str = "the service") -> float:
    """Poll GET /health until 200. The service says when loading failed (503 with status "error"):
    that ends the wait at once, with its reason; so does the container stopping."""
    try:
        return wait_for_http(endpoint.base + "/health", timeout=timeout, http_timeout=min(endpoint.timeout, 5.0),
                             container=container, judge=_load_failure(what), what=what,
                             describe=lambda answer: f"HTTP {answer.status} {_body(answer, 120)}")
    except WaitFailed as failed:
        raise NotReady(failed.message, failed.evidence) from None


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def norm(a: list[float]) -> float:
    return math.sqrt(sum(x * x for x in a))


def vector_problem(vector: Any, expected: list[float], min_cosine: float) -> str | None:
    """Why `vector` is not the reference embedding, or None when it is."""
    if not isinstance(vector, list) or not all(isinstance(x, (int, float)) for x in vector):
        return f"is not a list of numbers: {str(vector)[:80]}"
    if len(vector) != len(expected):
        return f"has {len(vector)} dimensions, expected {len(expected)}"
    length = norm(vector)
    if abs(length - 1.0) > NORM_TOLERANCE:
        return f"is not L2-normalised (norm {length:.4f})"
    similarity = cosine(vector, expected)
    if similarity < min_cosine:
        return f"has cosine {similarity:.4f} to the reference (at least {min_cosine} expected)"
    return None


def embed_one(endpoint: Endpoint, text: str) -> tuple[Any, HttpAnswer]:
    """POST /embed for one text; (the vector or None, the answer)."""
    answer = endpoint.call("POST", "/embed", {"inputs": text})
    if answer.status != 200:
        return None, answer
    try:
        body = answer.json()
    except ValueError:
        return None, answer
    vector = body[0] if isinstance(body, list) and len(body) == 1 else body
    return vector, answer


def check_reference_embeddings(endpoint: Endpoint, models_dir: Path,
                               on_progress: Callable[[int], None] | None = None) -> dict:
    """Every reference sentence, one request each and one after the other (int8's dynamic quantisation
    makes a vector depend on the other texts of its batch; the reference is one by one), compared with
    the reference vectors of the variant /info reports. Returns the evidence; fails on the first miss."""
    ref = reference(str(models_dir))
    info = endpoint.json("GET", "/info")
    variant = info.get("variant") if isinstance(info, dict) else None
    if variant not in ref["embeddings"] or variant == "torch":
        fail(f"/info reports the model variant {variant!r}; expected one of the export's variants "
             f"(fp32 or int8), so that its embeddings can be checked", info=info)
    expected = ref["embeddings"][variant]
    min_cosine = float(ref["thresholds"]["grader_min_cosine"])
    worst = 1.0
    for i, sentence in enumerate(ref["sentences"]):
        vector, answer = embed_one(endpoint, sentence)
        if vector is None:
            fail(f"POST /embed for reference sentence {i + 1} answered {answer.status}: {_body(answer)}",
                 variant=variant, sentence=sentence)
        problem = vector_problem(vector, expected[i], min_cosine)
        if problem:
            fail(f"the embedding of reference sentence {i + 1} ({sentence!r}) {problem}; compared with the "
                 f"{variant} reference vectors, since /info reports variant {variant}",
                 variant=variant, sentence=sentence)
        worst = min(worst, cosine(vector, expected[i]))
        if on_progress:
            on_progress(i)
    return {"variant": variant, "sentences": len(ref["sentences"]), "min_cosine": round(worst, 6),
            "execution_provider": info.get("execution_provider"), "threshold": min_cosine}
