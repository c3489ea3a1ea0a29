"""Request and response bodies, in text-embeddings-inference and OpenAI shapes.

Length limits are not declared here: too many or too long inputs are a 413 (checked against
the settings in the routes), while a body of the wrong shape is a 422.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

DOCUMENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
Texts = Annotated[list[str], Field(min_length=1)]


class EmbedRequest(BaseModel):
    inputs: str | Texts = Field(description="one text or a list of texts")
    # text-embeddings-inference's options, fixed here: texts are always truncated to the
    # model's 256 tokens and vectors always L2-normalised (asking otherwise is a 422).
    truncate: Literal[True] = True
    normalize: Literal[True] = True

    model_config = {"json_schema_extra": {"examples": [{"inputs": ["What is Docker?", "Containers"]}]}}


class SimilarityInputs(BaseModel):
    source_sentence: str
    sentences: Texts


class SimilarityRequest(BaseModel):
    inputs: SimilarityInputs

    model_config = {"json_schema_extra": {"examples": [{"inputs": {
        "source_sentence": "How do I keep data?", "sentences": ["Use a named volume.", "Pizza on Friday."]}}]}}


class OpenAIEmbeddingRequest(BaseModel):
    input: str | Texts = Field(description="a text or a list of texts (token arrays are not accepted)")
    model: str | None = Field(None, description="ignored: the service serves one model")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, description="must be the model's dimension if given")
    user: str | None = None


class OpenAIEmbedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class OpenAIUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class OpenAIEmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIEmbedding]
    model: str
    usage: OpenAIUsage


class DocumentIn(BaseModel):
    text: str = Field(min_length=1)
    id: str | None = Field(None, pattern=DOCUMENT_ID_PATTERN,
                           description="letters, digits and ._:- (at most 128); generated when absent")


class DocumentId(BaseModel):
    id: str


class DocumentOut(BaseModel):
    id: str
    text: str


class SearchHit(BaseModel):
    id: str
    text: str
    score: float


class Health(BaseModel):
    status: str
    detail: str | None = None


class Limits(BaseModel):
    max_inputs: int
    max_input_chars: int
    max_tokens: int
    max_batch_size: int
    max_batch_tokens: int
    max_queue_size: int


class Info(BaseModel):
    model_id: str
    variant: str
    dimension: int
    max_tokens: int
    execution_provider: str
    providers: list[str]
    cuda_available: bool
    inference_threads: int
    inference_workers: int
    limits: Limits
    storage: str
    storage_status: str
    auth: bool
    version: str


class ErrorBody(BaseModel):
    error: str
    error_type: str
