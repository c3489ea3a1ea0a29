"""The narrow interface to the Docker engine: a docker-py client for everything,
and the docker CLI for BuildKit builds (docker-py cannot do BuildKit)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import docker
import docker.errors
import requests.exceptions

from grader.errors import EngineUnavailable

_STEP_HEADER = re.compile(r"^#(?P<num>\d+) \[(?P<where>[^\]]+)\] (?P<instruction>.+)$")
_STEP_STATUS = re.compile(r"^#(?P<num>\d+) (?P<status>CACHED|DONE|ERROR|CANCELED)\b")
_ENGINE_GONE = ("Cannot connect to the Docker daemon", "error during connect",
                "Is the docker daemon running")


@dataclass(frozen=True)
class BuildStep:
    number: int
    where: str            # "4/5" or "builder 3/5"
    instruction: str      # "RUN pip install ..."
    cached: bool
    failed: bool
    finished: bool = True


@dataclass(frozen=True)
class BuildResult:
    ok: bool
    tag: str
    image_id: str | None
    log: str
    duration_s: float
    timed_out: bool = False
    returncode: int | None = None
    steps: tuple[BuildStep, ...] = field(default_factory=tuple)

    def failure_summary(self, max_lines: int = 25) -> str:
        """The lines that explain a failed build: the failing step's last output and the error."""
        lines = self.log.splitlines()
        failed = [s.number for s in self.steps if s.failed]
        if self.timed_out:  # the steps still running when the build was stopped
            failed = [s.number for s in self.steps if not s.finished] or failed
        picked: list[str] = []
        if failed:
            prefix = f"#{failed[0]} "
            step_lines = [ln for ln in lines if ln.startswith(prefix)]
            picked = step_lines[:1] + step_lines[1:][-(max_lines - 6):]
            if self.timed_out:
                picked.append(f"(step #{failed[0]} was still running when the build was stopped)")
        errors = [ln for ln in lines if ln.startswith(("ERROR", "error:", "failed to solve"))
                  or "failed to solve" in ln]
        picked += [ln for ln in errors if ln not in picked]
        if not picked:
            picked = lines[-max_lines:]
        return "\n".join(picked[-max_lines:])


def parse_build_steps(log: str) -> tuple[BuildStep, ...]:
    headers: dict[int, tuple[str, str]] = {}
    status: dict[int, set[str]] = {}
    for line in log.splitlines():
        m = _STEP_HEADER.match(line)
        if m and m.group("where") != "internal" and int(m.group("num")) not in headers:
            headers[int(m.group("num"))] = (m.group("where"), m.group("instruction"))
            continue
        s = _STEP_STATUS.match(line)
        if s:
            status.setdefault(int(s.group("num")), set()).add(s.group("status"))
    return tuple(BuildStep(n, where, instruction, "CACHED" in status.get(n, set()),
                           "ERROR" in status.get(n, set()), bool(status.get(n, set()) - {"CANCELED"}))
                 for n, (where, instruction) in sorted(headers.items()))


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop a child started in its own session, and everything it started."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


def run_bounded(cmd: list[str], *, timeout: float, cwd: Path | None = None,
                env: Mapping[str, str] | None = None) -> tuple[int | None, str, bool]:
    """Run a command with a time limit, stdout and stderr merged; (returncode, output, timed_out).

    The child gets its own session so that a timeout, an exception or Ctrl-C stops
    it together with whatever it started."""
    with tempfile.TemporaryFile(mode="w+b") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=dict(env) if env is not None else None, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(proc)  # also reached on KeyboardInterrupt: never leave the child running
        out.seek(0)
        text = out.read().decode("utf-8", errors="replace")
    return (None if timed_out else proc.returncode), text, timed_out


class Engine:
    """A connected engine. `client` is docker-py; builds go through the CLI."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client

    @classmethod
    def connect(cls, timeout: float = 120.0) -> "Engine":
        try:
            client = docker.from_env(timeout=int(timeout))
            client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
            where = os.environ.get("DOCKER_HOST", "the default socket")
            raise EngineUnavailable(
                f"no Docker engine answers at {where} ({type(exc).__name__}); start Docker "
                f"(or run `make engine`) and grade again") from None
        return cls(client)

    def close(self) -> None:
        self.client.close()

    @staticmethod
    def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {**os.environ, "DOCKER_BUILDKIT": "1", **(extra or {})}

    def build(self, context: Path, *, tag: str, labels: Mapping[str, str], timeout: float,
              dockerfile: Path | None = None, no_cache: bool = False,
              build_args: Mapping[str, str] | None = None) -> BuildResult:
        """`docker build` with BuildKit, plain progress kept as the log, bounded in time."""
        with tempfile.TemporaryDirectory(prefix="genai-grader-build-") as tmp:
            iidfile = Path(tmp) / "iid"
            cmd = ["docker", "build", "--progress=plain", "--iidfile", str(iidfile), "-t", tag]
            for key, value in labels.items():
                cmd += ["--label", f"{key}={value}"]
            if dockerfile is not None:
                cmd += ["-f", str(dockerfile)]
            for key, value in (build_args or {}).items():
                cmd += ["--build-arg", f"{key}={value}"]
            if no_cache:
                cmd.append("--no-cache")
            cmd.append(str(context))
            start = time.monotonic()
            returncode, log, timed_out = run_bounded(cmd, timeout=timeout, env=self.cli_env())
            duration = time.monotonic() - start
            image_id = iidfile.read_text().strip() if iidfile.exists() else None
        if returncode not in (0, None) and any(s in log for s in _ENGINE_GONE):
            raise EngineUnavailable("the Docker engine stopped answering during a build")
        ok = returncode == 0 and bool(image_id)
        return BuildResult(ok, tag, image_id if ok else None, log, duration, timed_out, returncode,
                           parse_build_steps(log))
