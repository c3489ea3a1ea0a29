"""The narrow interface to the Docker engine: a docker-py client for everything,
and the docker CLI for BuildKit builds (docker-py cannot do BuildKit)."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import docker
import docker.errors
import requests.exceptions

from dockerkit.buildkit import BuildStep, failure_summary, parse_build_steps
from dockerkit.process import run_bounded as _run_bounded
from grader import progress
from grader.errors import EngineUnavailable

__all__ = ["BuildResult", "BuildStep", "Engine", "parse_build_steps"]

_ENGINE_GONE = ("Cannot connect to the Docker daemon", "error during connect",
                "Is the docker daemon running")


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

    @property
    def built_id(self) -> str:
        """The image id of a build that succeeded."""
        if self.image_id is None:
            raise ValueError(f"the build of {self.tag} produced no image")
        return self.image_id

    def failure_summary(self, max_lines: int = 25) -> str:
        """The lines that explain a failed build: the failing step's last output and the error."""
        return failure_summary(self.log, self.steps, timed_out=self.timed_out, max_lines=max_lines)


def run_bounded(cmd: list[str], *, timeout: float, cwd: Path | None = None,
                env: Mapping[str, str] | None = None) -> tuple[int | None, str, bool]:
    """(returncode, merged output, timed_out): the kit's bounded run (the whole group stopped)."""
    # builds (the CLI's and compose's) report each step as it starts to whoever listens
    done = _run_bounded(cmd, timeout=timeout, cwd=cwd, env=env, on_output=progress.build_output_watcher())
    return done.returncode, done.text, done.timed_out


class Engine:
    """A connected engine. `client` is docker-py; builds go through the CLI."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client

    @classmethod
    def connect(cls, timeout: float = 120.0) -> Engine:
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
              build_args: Mapping[str, str] | None = None, target: str | None = None) -> BuildResult:
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
            if target is not None:
                cmd += ["--target", target]
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
