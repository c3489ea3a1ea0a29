"""HTTP probes from the host and readiness waits, as the grader's checks see them: the kit's
wait, whose failure is a failed check (NotReady) with the container's state and last logs."""

from __future__ import annotations

from typing import Any, Callable

from dockerkit.containers import container_logs, container_state
from dockerkit.http import HttpAnswer, ProbeError, http
from dockerkit.wait import POLL_INTERVAL, WaitFailed
from dockerkit.wait import wait_for_http as _wait_for_http
from grader import progress
from grader.errors import NotReady

__all__ = ["POLL_INTERVAL", "HttpAnswer", "ProbeError", "container_logs", "container_state", "http",
           "wait_for_http"]


def wait_for_http(url: str, *, timeout: float, http_timeout: float, container: Any = None,
                  expect: int = 200, diagnose: Callable[[], str | None] | None = None,
                  what: str = "the container") -> float:
    """Poll GET `url` until it answers `expect`; returns the seconds it took. Raises NotReady."""
    progress.emit(progress.PHASE, f"  waiting for {what} to answer {url} (up to {timeout:.0f} s)")
    try:
        return _wait_for_http(url, timeout=timeout, http_timeout=http_timeout, container=container,
                              expect=expect, diagnose=diagnose, what=what)
    except WaitFailed as failed:
        raise NotReady(failed.message, failed.evidence) from None
