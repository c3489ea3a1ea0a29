"""HTTP requests with a time limit. Requests to loopback addresses never go through a proxy:
with HTTP_PROXY set and no NO_PROXY, urllib would send them to the proxy, which cannot reach
this machine's 127.0.0.1."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Mapping

from dockerkit.net import is_loopback_url

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


class ProbeError(Exception):
    """No HTTP answer (refused, reset, timed out)."""


def opener_for(url: str) -> urllib.request.OpenerDirector:
    """The direct opener for loopback URLs; the environment's proxy settings otherwise."""
    return _DIRECT if is_loopback_url(url) else urllib.request.build_opener()


def http(
    method: str, url: str, *, timeout: float, payload: Any = None, headers: Mapping[str, str] | None = None
) -> HttpAnswer:
    """Send a request (a JSON body when `payload` is given); any HTTP status is an answer."""
    data = json.dumps(payload).encode() if payload is not None else None
    sent = {"Content-Type": "application/json"} if data else {}
    request = urllib.request.Request(url, data=data, method=method, headers={**sent, **(headers or {})})
    try:
        with opener_for(url).open(request, timeout=timeout) as response:
            return HttpAnswer(response.status, response.read(), dict(response.headers.items()))
    except urllib.error.HTTPError as err:
        return HttpAnswer(err.code, err.read() or b"", dict(err.headers.items()) if err.headers else {})
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise ProbeError(f"{type(reason).__name__}: {reason}".rstrip(": ")) from None
