"""BuildKit's plain progress output, read as steps: which ran, which came from the cache, which failed."""

from __future__ import annotations

import re
from dataclasses import dataclass

_STEP_HEADER = re.compile(r"^#(?P<num>\d+) \[(?P<where>[^\]]+)\] (?P<instruction>.+)$")
_STEP_STATUS = re.compile(r"^#(?P<num>\d+) (?P<status>CACHED|DONE|ERROR|CANCELED)\b")


@dataclass(frozen=True)
class BuildStep:
    number: int
    where: str  # "4/5" or "builder 3/5"
    instruction: str  # "RUN pip install ..."
    cached: bool
    failed: bool
    finished: bool = True

    @property
    def outcome(self) -> str:
        """CACHED, ERROR, DONE, or "?" while it was still running."""
        if self.cached:
            return "CACHED"
        if self.failed:
            return "ERROR"
        return "DONE" if self.finished else "?"


def step_header(line: str) -> tuple[int, str, str] | None:
    """(number, where, instruction) when `line` starts a step ("#5 [2/4] RUN ..."), else None."""
    m = _STEP_HEADER.match(line)
    return (int(m.group("num")), m.group("where"), m.group("instruction")) if m else None


def parse_build_steps(log: str) -> tuple[BuildStep, ...]:
    """The Dockerfile's steps in order (BuildKit's internal ones and metadata loads left out)."""
    headers: dict[int, tuple[str, str]] = {}
    status: dict[int, set[str]] = {}
    for line in log.splitlines():
        header = step_header(line)
        if header and header[1] != "internal" and header[0] not in headers:
            headers[header[0]] = header[1:]
            continue
        s = _STEP_STATUS.match(line)
        if s:
            status.setdefault(int(s.group("num")), set()).add(s.group("status"))
    return tuple(
        BuildStep(
            n,
            where,
            instruction,
            "CACHED" in status.get(n, set()),
            "ERROR" in status.get(n, set()),
            bool(status.get(n, set()) - {"CANCELED"}),
        )
        for n, (where, instruction) in sorted(headers.items())
    )


def failure_summary(log: str, steps: tuple[BuildStep, ...], *, timed_out: bool = False, max_lines: int = 25) -> str:
    """The lines that explain a failed build: the failing step's last output and the error."""
    lines = log.splitlines()
    failed = [s.number for s in steps if s.failed]
    if timed_out:  # the steps still running when the build was stopped
        failed = [s.number for s in steps if not s.finished] or failed
    picked: list[str] = []
    if failed:
        prefix = f"#{failed[0]} "
        step_lines = [ln for ln in lines if ln.startswith(prefix)]
        picked = step_lines[:1] + step_lines[1:][-(max_lines - 6) :]
        if timed_out:
            picked.append(f"(step #{failed[0]} was still running when the build was stopped)")
    errors = [ln for ln in lines if ln.startswith(("ERROR", "error:", "failed to solve")) or "failed to solve" in ln]
    picked += [ln for ln in errors if ln not in picked]
    if not picked:
        picked = lines[-max_lines:]
    return "\n".join(picked[-max_lines:])
