"""Readiness waits: poll until something answers, and fail with what was seen.

A wait fails early when the container it waits for stops, or when a `diagnose`
callback says the outcome is already certain (a server bound to 127.0.0.1 inside
its container never answers through a published port). Polling at an interval is
not a guess at readiness: every poll asks the real question."""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, TypeVar

from dockerkit.containers import GONE, container_logs, container_state
from dockerkit.http import HttpAnswer, ProbeError, http

POLL_INTERVAL = 0.25
T = TypeVar("T")


class WaitFailed(Exception):
    """Not ready in time, or never will be; `evidence` holds what was seen."""

    def __init__(self, message: str, evidence: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.evidence = dict(evidence or {})


def poll(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = POLL_INTERVAL,
    stopped: Callable[[], str | None] | None = None,
) -> T:
    """Call `probe` until it returns something truthy; an exception from it means "not yet".

    `stopped` returns why waiting longer is pointless (a container exited), or None."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            value = probe()
            if value:
                return value
        except Exception as exc:  # the probe's failure is just "not yet"
            last = exc
        verdict = stopped() if stopped is not None else None
        if verdict:
            raise WaitFailed(f"{what}: {verdict}", {"last_error": str(last) if last else None})
        if time.monotonic() >= deadline:
            detail = f" (last error: {last})" if last else ""
            raise WaitFailed(
                f"{what}: not ready after {timeout:.0f} s{detail}", {"last_error": str(last) if last else None}
            )
        time.sleep(interval)


def wait_for_http(
    url: str,
    *,
    timeout: float,
    http_timeout: float,
    container: Any = None,
    expect: int = 200,
    diagnose: Callable[[], str | None] | None = None,
    judge: Callable[[HttpAnswer], str | None] | None = None,
    describe: Callable[[HttpAnswer], str] | None = None,
    what: str = "the container",
) -> float:
    """Poll GET `url` until it answers `expect`; returns the seconds it took.

    `judge(answer)` may end the wait at once with a reason (a service that reports it cannot
    start); `describe(answer)` says how an answer reads in the timeout's "last:"."""
    start = time.monotonic()
    deadline = start + timeout
    last = "no answer yet"
    while True:
        try:
            answer = http("GET", url, timeout=min(http_timeout, max(0.5, deadline - time.monotonic())))
            if answer.status == expect:
                return time.monotonic() - start
            last = describe(answer) if describe is not None else f"HTTP {answer.status}"
            verdict = judge(answer) if judge is not None else None
            if verdict:
                raise WaitFailed(verdict, {"last_answer": last})
        except ProbeError as err:
            last = str(err)
        if container is not None:
            state = container_state(container)
            if state.get("Status") in GONE:
                elapsed = time.monotonic() - start
                raise WaitFailed(
                    f"{what} stopped {elapsed:.1f} s after it started (exit status "
                    f"{state.get('ExitCode')}, {state.get('Error') or 'no engine error'}); "
                    f"last logs:\n{container_logs(container)}",
                    {
                        "state": state.get("Status"),
                        "exit_code": state.get("ExitCode"),
                        "logs": container_logs(container),
                    },
                )
        if diagnose is not None:
            verdict = diagnose()
            if verdict:
                logs = container_logs(container) if container is not None else ""
                raise WaitFailed(
                    f"{verdict}" + (f"; last logs:\n{logs}" if logs else ""), {"last_answer": last, "logs": logs}
                )
        if time.monotonic() >= deadline:
            status = container_state(container).get("Status") if container is not None else None
            logs = container_logs(container) if container is not None else ""
            raise WaitFailed(
                f"GET {url} did not answer {expect} within {timeout:.0f} s (last: {last})"
                + (f"; {what} is {status}; last logs:\n{logs}" if container is not None else ""),
                {"last_answer": last, "state": status, "logs": logs},
            )
        time.sleep(POLL_INTERVAL)
