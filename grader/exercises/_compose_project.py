"""One compose project under grading: bounded compose commands on a copy of the workspace, the
state of its services, and `down -v` when the grading session ends."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from dockerkit.buildkit import parse_build_steps
from dockerkit.containers import container_logs
from dockerkit.process import run_bounded
from grader import progress
from grader.dockerfile import NOTEBOOK_PLACEHOLDER
from grader.engine import BuildResult
from grader.exercises._compose_config import (PROJECT_LABEL, PROJECT_PREFIX, QUICK, SERVICE_LABEL, TOKEN_FILE,
                                              ComposeConfig, grader_override)
from grader.registry import fail
from grader.runner import GradingSession

_COPY_IGNORED = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".ipynb_checkpoints", ".pytest_cache")


# -- one compose project ---------------------------------------------------------------------

@dataclass(frozen=True)
class ComposeRun:
    args: tuple[str, ...]
    code: int | None
    output: str
    timed_out: bool
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.code == 0

    def tail(self, lines: int = 12) -> str:
        kept = [ln.strip()[:300] for ln in self.output.strip().splitlines() if ln.strip()][-lines:]
        return "\n".join(kept) if kept else "(no output)"


@dataclass(frozen=True)
class ServiceState:
    service: str
    name: str
    status: str               # running, exited, ...
    health: str | None        # healthy, unhealthy, starting; None: no health check
    exit_code: int
    health_output: str
    logs: str

    def describe(self) -> str:
        if self.status != "running":
            return f"{self.service} is {self.status} (exit status {self.exit_code}); last logs:\n{self.logs}"
        if self.health is None:
            return f"{self.service} is running, with no health check"
        text = f"{self.service} is running, health {self.health}"
        if self.health != "healthy" and self.health_output:
            text += f" (last health check: {self.health_output})"
        if self.health != "healthy":
            text += f"; last logs:\n{self.logs}"
        return text


class ComposeProject:
    def __init__(self, session: GradingSession, workspace: Path, variables: Mapping[str, str]) -> None:
        self.session = session
        self.client = session.client
        self.options = session.options
        self.name = f"{PROJECT_PREFIX}{session.id}"
        root = session.tmpdir()
        self.dir = root / "workspace"
        shutil.copytree(workspace, self.dir, symlinks=True, ignore=_COPY_IGNORED)
        self._outside = root                     # the grader's own files: outside any build context
        self.variables = dict(variables)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
        self.env.update(self.variables)
        self.env["DOCKER_BUILDKIT"] = "1"
        self.override: Path | None = None
        self.images: dict[str, str] = {}          # service -> the tag the grader built
        self._started = False
        self._counter = 0
        self._files: tuple[str, ...] = ()        # the learner's files of the running stack

    # commands
    def compose(self, *args: str, files: Iterable[str], timeout: float) -> ComposeRun:
        cmd = ["docker", "compose", "--ansi", "never", "--project-name", self.name,
               "--project-directory", str(self.dir)]
        for f in files:
            cmd += ["--file", str(f if Path(f).is_absolute() else self.dir / f)]
        cmd += list(args)
        done = run_bounded(cmd, timeout=timeout, cwd=self.dir, env=self.env,
                           on_output=progress.build_output_watcher())  # compose build's steps, live
        return ComposeRun(tuple(args), done.returncode, done.text, done.timed_out, done.duration_s)

    def config(self, files: tuple[str, ...]) -> ComposeConfig:
        """The resolved configuration; a file compose refuses is a failed check that quotes compose."""
        missing = [f for f in files if not (self.dir / f).is_file()]
        if missing:
            fail(f"there is no {', '.join(missing)} in the workspace")
        self._counter += 1
        out = self._outside / f"config-{self._counter}.json"
        run = self.compose("config", "--format", "json", "--output", str(out), files=files, timeout=QUICK)
        if not run.ok or not out.is_file():
            placeholder = [f for f in files if NOTEBOOK_PLACEHOLDER in (self.dir / f).read_text(errors="replace")]
            if placeholder:
                fail(f"{placeholder[0]} still holds the notebook's placeholder: replace `# YOUR CODE HERE` and "
                     f"`raise NotImplementedError()` with your configuration", files=list(files))
            why = "did not finish in time" if run.timed_out else f"failed:\n{run.tail()}"
            fail(f"`docker compose -f {' -f '.join(files)} config` {why}", files=list(files),
                 output=run.tail())
        return ComposeConfig(json.loads(out.read_text()), files)

    def stack_files(self, files: tuple[str, ...]) -> list[str]:
        self._files = files
        return [*files, str(self.override)] if self.override else list(files)

    def prepare(self, config: ComposeConfig, token: str) -> None:
        """Secret files, fixed names (claimed by the session, which takes the grading lock), the
        grader's override, and `down -v` at the end of the session. Once per project."""
        if self._started:
            return
        self._started = True
        token_file = self.dir / TOKEN_FILE
        token_file.parent.mkdir(parents=True, exist_ok=True)
        token_file.write_text(token + "\n")
        for secret in config.secrets.values():
            path = Path(secret.get("file") or "")
            if secret.get("file") and not path.exists() and self.dir in path.parents:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(secrets.token_hex(16) + "\n")
        self.session.claim(config.fixed_names(self.name))
        self.images = {name: self.session.image_tag(name) for name, svc in config.services.items()
                       if svc.get("build")}
        self.override = self._outside / "grader.compose.yaml"
        # JSON is YAML without anchors: compose would read a repeated mapping as a list
        override = grader_override(config, self.session.labels, self.session.image_prefix)
        self.override.write_text(json.dumps(override, indent=1))
        self.session.add_cleanup(f"compose project {self.name}", self.remove)

    def build(self, files: tuple[str, ...]) -> BuildResult:
        args = ["--progress", "plain", "build"] + (["--no-cache"] if self.options.no_cache else [])
        run = self.compose(*args, files=self.stack_files(files), timeout=self.options.build_timeout)
        return BuildResult(run.ok, ",".join(self.images.values()), None, run.output, run.duration_s,
                           run.timed_out, run.code, parse_build_steps(run.output))

    def up(self, files: tuple[str, ...], *services: str, recreate: bool = False, wait: bool = True) -> ComposeRun:
        """`up --detach`; with `wait`, until every service is healthy (or running, without a health check).
        Without it, compose still honours depends_on conditions; the caller polls the server itself, which
        is quicker than the health check's interval."""
        args = ["up", "--detach", "--no-build"]
        if wait:
            args += ["--wait", "--wait-timeout", str(max(1, int(self.options.start_timeout)))]
        if recreate:
            args += ["--force-recreate", "--no-deps"]
        # `up` itself waits for depends_on conditions, which --wait-timeout does not bound
        progress.emit(progress.PHASE, f"  docker compose up{' --wait' if wait else ''} {' '.join(services)}".rstrip())
        return self.compose(*args, *services, files=self.stack_files(files), timeout=self.up_limit)

    @property
    def up_limit(self) -> float:
        # the start limit, and as long again (30 s at most) to create the containers
        return self.options.start_timeout + min(30.0, self.options.start_timeout)

    def down(self, files: tuple[str, ...], volumes: bool = False) -> ComposeRun:
        args = ["down", "--remove-orphans", "--timeout", "10"] + (["--volumes"] if volumes else [])
        return self.compose(*args, files=self.stack_files(files), timeout=QUICK + 30)

    def containers(self, service: str | None = None) -> list[Any]:
        labels = [f"{PROJECT_LABEL}={self.name}"] + ([f"{SERVICE_LABEL}={service}"] if service else [])
        return self.client.containers.list(all=True, filters={"label": labels})

    def container(self, service: str) -> Any:
        found = [c for c in self.containers(service) if c.status == "running"] or self.containers(service)
        if not found:
            fail(f"compose created no container for the service {service}")
        return found[0]

    def states(self) -> list[ServiceState]:
        found = []
        for c in self.containers():
            state = c.attrs.get("State") or {}
            health = state.get("Health")
            output = ""
            if health and health.get("Log"):
                lines = (health["Log"][-1].get("Output") or "").strip().splitlines()
                output = lines[-1][:200] if lines else ""
            found.append(ServiceState(c.labels.get(SERVICE_LABEL, c.name), c.name, state.get("Status", "?"),
                                      health.get("Status") if health else None, int(state.get("ExitCode") or 0),
                                      output, container_logs(c, 12)))
        return sorted(found, key=lambda s: s.service)

    def remove(self) -> None:
        """`down -v --remove-orphans`: compose stops the stack in order. What it cannot know (the
        anonymous volumes of containers an earlier `down` removed, the images built for the grading)
        the session removes next."""
        if self.override is not None:
            self.down(self._files, volumes=True)
