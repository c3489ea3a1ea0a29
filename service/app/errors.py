"""The service's exception tree: one base class; each error knows its HTTP status."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error the service raises on purpose."""

    status_code = 500
    error_type = "internal"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class ModelError(ServiceError):
    """The model directory is missing, incomplete or not the model the service expects."""

    status_code = 503
    error_type = "model"


class NotReadyError(ServiceError):
    status_code = 503
    error_type = "unhealthy"


class UnprocessableError(ServiceError):
    """Well-formed JSON whose values the service cannot honour (a 422 like pydantic's)."""

    status_code = 422
    error_type = "validation"


class InputTooLargeError(ServiceError):
    status_code = 413
    error_type = "validation"


class QueueFullError(ServiceError):
    status_code = 429
    error_type = "overloaded"


class DocumentNotFoundError(ServiceError):
    status_code = 404
    error_type = "not_found"


class StorageError(ServiceError):
    """The document store cannot be reached or written (a server-side problem, never the client's)."""

    status_code = 503
    error_type = "storage"


class InferenceError(ServiceError):
    status_code = 500
    error_type = "backend"
