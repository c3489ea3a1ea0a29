"""HTTP routes. Thin: check limits, call the batcher or the store, shape the answer."""

from __future__ import annotations

import base64
import uuid
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Depends, Query, Response
from starlette.concurrency import run_in_threadpool

from . import __version__
from .deps import State, require_token
from .metrics import CONTENT_TYPE
from .errors import DocumentNotFoundError, UnprocessableError
from .schemas import (
    DocumentId, DocumentIn, DocumentOut, EmbedRequest, ErrorBody, Health, Info, Limits,
    OpenAIEmbeddingRequest, OpenAIEmbeddingResponse, SearchHit, SimilarityRequest,
)

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in {
        401: "missing or wrong bearer token (when a token is configured)",
        413: "too many inputs, or a text too long",
        422: "malformed request",
        429: "the queue is full: retry after the Retry-After header's seconds",
        503: "the model is not loaded yet, or storage is unavailable",
    }.items()}

public = APIRouter()
protected = APIRouter(dependencies=[Depends(require_token)], responses=ERRORS)


def json_response(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    # orjson writes numpy arrays itself: a float32 vector goes out as its shortest exact decimals,
    # with no Python float per component (FastAPI's encoder costs more than inference here).
    return Response(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status_code,
                    media_type="application/json", headers=headers)


@public.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(state: State) -> Response:
    if state.ready:
        return json_response({"status": "ok"})
    if state.error:
        return json_response({"status": "error", "detail": state.error}, 503)
    return json_response({"status": "loading"}, 503, {"Retry-After": "1"})


@public.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
async def metrics(state: State) -> Response:
    return Response(state.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


@protected.get("/info", response_model=Info)
async def info(state: State) -> Info:
    backend, _ = state.require_ready()
    s, b = state.settings, backend.info
    return Info(
        model_id=b.model_id, variant=b.variant, dimension=b.dimension, max_tokens=b.max_tokens,
        execution_provider=b.execution_provider, providers=b.providers, cuda_available=b.cuda_available,
        inference_threads=s.inference_threads, inference_workers=s.inference_workers,
        limits=Limits(max_inputs=s.max_inputs, max_input_chars=s.max_input_chars, max_tokens=b.max_tokens,
                      max_batch_size=s.max_batch_size, max_batch_tokens=s.max_batch_tokens,
                      max_queue_size=s.max_queue_size),
        storage=state.store.kind, storage_status=state.store.status, auth=s.auth_enabled, version=__version__)


@protected.post("/embed", response_model=list[list[float]])
async def embed(body: EmbedRequest, state: State) -> Response:
    """L2-normalised embeddings, one per input (text-embeddings-inference's shape)."""
    texts = [body.inputs] if isinstance(body.inputs, str) else body.inputs
    vectors, _ = await state.embed(texts)
    return json_response(vectors)


@protected.post("/similarity", response_model=list[float])
async def similarity(body: SimilarityRequest, state: State) -> Response:
    """Cosine similarity of source_sentence to each of sentences."""
    vectors, _ = await state.embed([body.inputs.source_sentence, *body.inputs.sentences])
    scores = np.clip(vectors[1:] @ vectors[0], -1.0, 1.0)
    return json_response(scores)


@protected.post("/v1/embeddings", response_model=OpenAIEmbeddingResponse)
async def openai_embeddings(body: OpenAIEmbeddingRequest, state: State) -> Response:
    """OpenAI-compatible embeddings (float or base64 float32 little-endian)."""
    texts = [body.input] if isinstance(body.input, str) else body.input
    backend, _ = state.require_ready()
    if body.dimensions is not None and body.dimensions != backend.info.dimension:
        raise UnprocessableError(f"dimensions must be {backend.info.dimension} for this model")
    vectors, tokens = await state.embed(texts)
    if body.encoding_format == "base64":
        data = [base64.b64encode(v.astype("<f4").tobytes()).decode() for v in vectors]
    else:
        data = list(vectors)  # rows of a C-contiguous array: orjson writes each as a list
    total = sum(tokens)
    return json_response({
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(data)],
        "model": backend.info.model_id,
        "usage": {"prompt_tokens": total, "total_tokens": total},
    })


@protected.post("/documents", status_code=201, response_model=DocumentId)
async def add_document(body: DocumentIn, state: State) -> Response:
    """Store a text with its embedding; an existing id is replaced."""
    state.check_inputs([body.text])
    store = await state.documents()
    doc_id = body.id or uuid.uuid4().hex
    vectors, _ = await state.embed([body.text])
    await run_in_threadpool(store.put, doc_id, body.text, vectors[0])
    return json_response({"id": doc_id}, 201, {"Location": f"/documents/{doc_id}"})


@protected.get("/documents/{doc_id}", response_model=DocumentOut, responses={404: {"model": ErrorBody}})
async def get_document(doc_id: str, state: State) -> DocumentOut:
    store = await state.documents()
    doc = await run_in_threadpool(store.get, doc_id)
    if doc is None:
        raise DocumentNotFoundError(f"no document with id {doc_id!r}")
    return DocumentOut(id=doc.id, text=doc.text)


@protected.get("/search", response_model=list[SearchHit])
async def search(state: State, q: Annotated[str, Query(min_length=1, description="the query text")],
                 k: Annotated[int, Query(ge=1, le=100, description="how many documents")] = 5) -> Response:
    """The k stored documents closest in meaning to q, best first (cosine similarity)."""
    state.check_inputs([q])
    store = await state.documents()
    vectors, _ = await state.embed([q])
    hits = await run_in_threadpool(store.search, vectors[0], k)
    return json_response([{"id": h.id, "text": h.text, "score": round(h.score, 8)} for h in hits])
