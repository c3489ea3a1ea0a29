"""FastAPI dependencies as typed aliases: the service's state, and the bearer-token check."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import ServiceError
from .state import ServiceState


class AuthError(ServiceError):
    status_code = 401
    error_type = "unauthorized"


# Both are `async def` on purpose: FastAPI runs a plain `def` dependency in a worker thread,
# a hop per request per dependency that costs more than the check itself.
async def get_state(request: Request) -> ServiceState:
    return request.app.state.service


State = Annotated[ServiceState, Depends(get_state)]
_bearer = HTTPBearer(auto_error=False, description="the API token (API_TOKEN_FILE or API_TOKEN)")


async def require_token(state: State,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """Every route but /health and /metrics needs `Authorization: Bearer <token>` when a token is set."""
    token = state.settings.api_token
    if token is None:
        return
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise AuthError("missing bearer token: send 'Authorization: Bearer <token>'", headers=challenge)
    if not hmac.compare_digest(credentials.credentials.encode(), token.get_secret_value().encode()):
        raise AuthError("invalid bearer token", headers=challenge)
