"""HTTP probes from the host and wait strategies for containers.

A wait polls until the container answers, and fails with the container's state
and its last logs when it exits or the time is up. A `diagnose` callback may
stop the wait early when the outcome is already certain (a server bound to
127.0.0.1 inside the container will never answer through a published port).
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from grader.errors import NotReady

POLL_INTERVAL = 0.25


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


class ProbeError(Exception):
    """No HTTP answer (refused, reset, timed out)."""


def http(method: str, url: str, *, timeout: float, payload: Any = None,
         headers: Mapping[str, str] | None = None) -> HttpAnswer:
    data = json.dumps(payload).encode() if payload is not None else None
    sent = {"Content-Type": "application/json"} if data else {}
    request = urllib.request.Request(url, data=data, method=method, headers={**sent, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return HttpAnswer(response.status, response.read(), dict(response.headers.items()))
    except urllib.error.HTTPError as err:
        return HttpAnswer(err.code, err.read() or b"", dict(err.headers.items()) if err.headers else {})
    except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout, OSError) as err:
        reason = getattr(err, "reason", err)
        raise ProbeError(f"{type(reason).__name__}: {reason}".rstrip(": ")) from None


def container_logs(container: Any, lines: int = 15) -> str:
    try:
        raw = container.logs(tail=lines).decode("utf-8", errors="replace")
    except Exception:  # the container may be gone already
        return "(no logs)"
    kept = [ln[:300] for ln in raw.strip().splitlines()]
    return "\n".join(kept) if kept else "(no logs)"


def container_state(container: Any) -> dict:
    try:
        container.reload()
        return dict(container.attrs.get("State", {}))
    except Exception:
        return {"Status": "removed"}


def wait_for_http(url: str, *, timeout: float, http_timeout: float, container: Any = None,
                  expect: int = 200, diagnose: Callable[[], str | None] | None = None,
                  what: str = "the container") -> float:
    """Poll GET `url` until it answers `expect`; returns the seconds it took."""
    start = time.monotonic()
    deadline = start + timeout
    last = "no answer yet"
    while True:
        try:
            answer = http("GET", url, timeout=min(http_timeout, max(0.5, deadline - time.monotonic())))
            if answer.status == expect:
                return time.monotonic() - start
            last = f"HTTP {answer.status}"
        except ProbeError as err:
            last = str(err)
        if container is not None:
            state = container_state(container)
            if state.get("Status") in ("exited", "dead", "removed"):
                elapsed = time.monotonic() - start
                raise NotReady(
                    f"{what} stopped {elapsed:.1f} s after it started (exit status "
                    f"{state.get('ExitCode')}, {state.get('Error') or 'no engine error'}); "
                    f"last logs:\n{container_logs(container)}",
                    {"state": state.get("Status"), "exit_code": state.get("ExitCode"),
                     "logs": container_logs(container)})
        if diagnose is not None:
            verdict = diagnose()
            if verdict:
                logs = container_logs(container) if container is not None else ""
                raise NotReady(f"{verdict}" + (f"; last logs:\n{logs}" if logs else ""),
                               {"last_answer": last, "logs": logs})
        if time.monotonic() >= deadline:
            state = container_state(container).get("Status") if container is not None else None
            logs = container_logs(container) if container is not None else ""
            raise NotReady(
                f"GET {url} did not answer {expect} within {timeout:.0f} s (last: {last})"
                + (f"; {what} is {state}; last logs:\n{logs}" if container is not None else ""),
                {"last_answer": last, "state": state, "logs": logs})
        time.sleep(POLL_INTERVAL)
