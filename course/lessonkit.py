"""What every lesson notebook shares: visible shell commands, waits that poll
instead of sleeping, and the labels and clean-up of what a lesson creates.

A lesson starts with ``L = Lesson("02")``. Everything it creates carries
``L.labels`` and a name that starts with ``lesson02-``; its last cell calls
``L.cleanup()``, which removes exactly what carries the lesson's label, and
nothing else. ``L.sh("docker run ...")`` shows a command as a learner types it
and runs it with the labels added (``sh(..., labels=L.labels)``), so no echoed
command carries flags the learner would not write.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

from dockerkit.http import http
from dockerkit.labels import LESSON_LABEL, MANAGED_LABEL, reap
from dockerkit.net import free_port as free_port
from dockerkit.process import run_bounded
from dockerkit.wait import WaitFailed, poll

ROOT = Path(__file__).resolve().parent.parent
# A tiny image every machine running the course has (make images); lessons use it
# for helper containers, e.g. to remove root-owned files from a bind mount.
HELPER_IMAGE = "python:3.11-slim"

T = TypeVar("T")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# The CLI verbs that create something a lesson must clean up; `with_labels` adds the labels after
# each (a space must follow, so `docker build` is not found inside `docker buildx build`).
_LABELLED_VERBS = re.compile(r"(?<![\w-])(docker (?:run|create|build|buildx build|network create|volume create|"
                             r"container run|container create|image build)) ")


class LessonError(RuntimeError):
    """Base class of the errors a lesson cell can raise."""


class CommandFailed(LessonError):
    """A shell command did not end the way the lesson expected."""


class WaitTimeout(LessonError):
    """Something did not become ready in time; the message carries diagnostics."""


# --------------------------------------------------------------------------- shell


@dataclass(frozen=True)
class CommandResult:
    command: str
    returncode: int
    output: str  # stdout and stderr, interleaved as a terminal shows them
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def lines(self) -> list[str]:
        return self.output.splitlines()

    def _ipython_display_(self) -> None:
        """Already printed as it ran: a notebook shows nothing more for a cell's last `sh(...)`."""


def with_labels(command: str, labels: Mapping[str, str] | None) -> str:
    """`command` with `--label key=value` after every docker verb in it that creates something."""
    if not labels:
        return command
    flags = " ".join(f"--label {shlex.quote(f'{k}={v}')}" for k, v in labels.items())
    return _LABELLED_VERBS.sub(lambda m: f"{m.group(1)} {flags} ", command)


def sh(command: str, *, check: bool = True, expect_failure: bool = False, quiet: bool = False,
       tail: int | None = None, timeout: float = 600, cwd: str | os.PathLike | None = None,
       input: str | None = None, env: dict[str, str] | None = None,
       labels: Mapping[str, str] | None = None) -> CommandResult:
    """Run `command` in bash and print it as a terminal would (``$ command`` then its output).

    A non-zero exit raises CommandFailed (unless check=False). Where a lesson shows a
    command that *should* fail, expect_failure=True turns success into the error instead.
    `tail` prints only the last lines of a long output (a traceback's last line says it all;
    tail=0 prints none: the cell shows what matters). `labels` are added to what the command
    creates (see `with_labels`) without showing: the echo is the command as a learner types it.
    """
    if not quiet:
        print(f"$ {command}", flush=True)
    started = time.monotonic()
    done = run_bounded(["bash", "-c", with_labels(command, labels)], timeout=timeout, cwd=cwd,
                       stdin=input.encode() if input is not None else None,
                       env={**os.environ, "DOCKER_BUILDKIT": "1", **(env or {})})
    if done.timed_out:  # the whole process group is stopped, not only bash
        raise CommandFailed(f"`{command}` did not finish within {timeout:.0f} s")
    output = strip_ansi(done.text).rstrip("\n")
    result = CommandResult(command, done.returncode or 0, output, time.monotonic() - started)
    if not quiet and result.output and tail != 0:
        lines = result.lines
        if tail is not None and len(lines) > tail:
            lines = [f"[... {len(lines) - tail} more lines]"] + lines[-tail:]
        print("\n".join(lines), flush=True)
    if expect_failure:
        if result.ok:
            raise CommandFailed(f"`{command}` was expected to fail, but it succeeded")
        if not quiet:
            print(f"(exit status {result.returncode}, as expected)")
    elif check and not result.ok:
        shown = "" if not quiet else f"\n{result.output[-3000:]}"
        raise CommandFailed(f"`{command}` failed with exit status {result.returncode}{shown}")
    return result


def strip_ansi(text: str) -> str:
    """Drop terminal control sequences (colours, line erasing): noise in a notebook's text."""
    return _ANSI.sub("", text)


def quote(value: str | os.PathLike) -> str:
    """Quote a path or value for a shell command."""
    return shlex.quote(str(value))


# --------------------------------------------------------------------------- engine


_client = None


def docker_client():
    """One docker-py client per kernel, with a clear error when no engine answers."""
    global _client
    if _client is None:
        import docker

        try:
            client = docker.from_env(timeout=120)
            client.ping()
        except Exception as exc:  # any failure here means the environment, not the lesson
            raise LessonError(f"no Docker engine answers ({exc}). Start one with `make engine`, "
                              "then restart this notebook's kernel.") from None
        _client = client
    return _client


def container_diagnostics(name: str, tail: int = 25) -> str:
    """State and last log lines of a container, for error messages."""
    import docker.errors

    try:
        c = docker_client().containers.get(name)
    except docker.errors.NotFound:
        return f"container {name} does not exist"
    state = c.attrs["State"]
    health = state.get("Health", {}).get("Status")
    logs = c.logs(tail=tail).decode(errors="replace").rstrip()
    return (f"container {name} is {state['Status']} (exit code {state.get('ExitCode')}"
            f"{', health ' + health if health else ''}); last logs:\n{logs or '(no output)'}")


# --------------------------------------------------------------------------- waits


def wait_for(probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.2,
             container: str | None = None) -> T:
    """Poll `probe` until it returns something truthy, at most `timeout` seconds.

    On timeout the error says what was awaited and, given a container, shows its
    state and last logs. A container that exits while we wait fails at once.
    """
    def stopped() -> str | None:
        if container is not None and _has_exited(container):
            return f"the container stopped.\n{container_diagnostics(container)}"
        return None

    try:
        return poll(probe, timeout=timeout, what=what, interval=interval, stopped=stopped)
    except WaitFailed as failed:
        diag = f"\n{container_diagnostics(container)}" if container and "stopped" not in str(failed) else ""
        raise WaitTimeout(f"{failed}{diag}") from None


def _has_exited(name: str) -> bool:
    import docker.errors

    try:
        return docker_client().containers.get(name).status in ("exited", "dead")
    except docker.errors.NotFound:
        return True


@dataclass(frozen=True)
class HttpAnswer:
    """An answer as a lesson shows it: the status and the body as text."""
    status: int
    body: str


def http_request(method: str, url: str, *, json_body: Any = None, headers: dict[str, str] | None = None,
                 timeout: float = 30) -> HttpAnswer:
    """Send a JSON request; return status and body (no exception on 4xx/5xx). Loopback requests
    never go through a proxy."""
    answer = http(method, url, timeout=timeout, payload=json_body, headers=headers)
    return HttpAnswer(answer.status, answer.text)


def http_get(url: str, *, headers: dict[str, str] | None = None, timeout: float = 5) -> HttpAnswer:
    """GET `url` and return its status and body, also for 4xx/5xx answers."""
    return http_request("GET", url, headers=headers, timeout=timeout)


def wait_http(url: str, *, status: int | tuple[int, ...] = 200, timeout: float = 60,
              container: str | None = None, headers: dict[str, str] | None = None) -> HttpAnswer:
    """Poll `url` until it answers with `status` (one code or several)."""
    wanted = (status,) if isinstance(status, int) else tuple(status)

    def probe():
        answer = http_get(url, headers=headers, timeout=3)
        return answer if answer.status in wanted else None

    return wait_for(probe, timeout=timeout, what=f"GET {url} answering {'/'.join(map(str, wanted))}",
                    container=container)


def wait_healthy(container: str, *, timeout: float = 120) -> None:
    """Wait for a container's HEALTHCHECK to report healthy."""

    def probe():
        c = docker_client().containers.get(container)
        return c.attrs["State"].get("Health", {}).get("Status") == "healthy"

    wait_for(probe, timeout=timeout, what=f"{container} healthy", container=container, interval=0.5)


def wait_log(container: str, text: str, *, timeout: float = 60) -> None:
    """Wait until `text` appears in a container's logs."""

    def probe():
        return text in docker_client().containers.get(container).logs().decode(errors="replace")

    wait_for(probe, timeout=timeout, what=f"{text!r} in the logs of {container}", container=container)


# --------------------------------------------------------------------------- a lesson's resources


@dataclass
class Resources:
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any((self.containers, self.networks, self.volumes, self.images))

    def summary(self) -> str:
        parts = [f"{len(v)} {k}" for k, v in vars(self).items()]
        return ", ".join(parts)


class Lesson:
    """Labels, names, scratch files and clean-up for one lesson (``Lesson("02")``)."""

    def __init__(self, number: int | str) -> None:
        self.id = f"{int(number):02d}"
        self.prefix = f"lesson{self.id}-"
        self._scratch: Path | None = None

    def fresh_start(self) -> Lesson:
        """Remove what an earlier, interrupted run of this lesson left (containers holding the
        names, a database volume with an old password...), so the lesson runs again as new."""
        leftovers = self.resources()
        old_scratch = self.scratch_folders()
        if leftovers or old_scratch:
            print(f"removing what an earlier run of lesson {self.id} left: {leftovers.summary()}, "
                  f"{len(old_scratch)} scratch folder(s)")
            self.cleanup(quiet=True)
            for folder in old_scratch:
                self.remove_tree(folder)
        return self

    @property
    def labels(self) -> dict[str, str]:
        return {MANAGED_LABEL: "true", LESSON_LABEL: self.id}

    @property
    def flags(self) -> str:
        """The --label flags for `docker run/build/network create/volume create`."""
        return " ".join(f"--label {k}={v}" for k, v in self.labels.items())

    def sh(self, command: str, **kwargs: Any) -> CommandResult:
        """`sh`, with this lesson's labels added behind the scenes: the echo shows `command` as typed."""
        return sh(command, labels=self.labels, **kwargs)

    @property
    def label_filter(self) -> str:
        return f"{LESSON_LABEL}={self.id}"

    def name(self, suffix: str) -> str:
        return f"{self.prefix}{suffix}"

    # scratch files: build contexts and bind-mounted folders live outside the repository
    @property
    def scratch(self) -> Path:
        if self._scratch is None or not self._scratch.exists():
            self._scratch = Path(tempfile.mkdtemp(prefix=self.prefix))
        return self._scratch

    def write(self, relative: str, text: str, *, show: bool = True, mode: int | None = None) -> Path:
        """Write a scratch file (a Dockerfile, an app) and show it, so the cell reads like the file."""
        path = self.scratch / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if mode is not None:
            path.chmod(mode)
        if show:
            print(f"--- {relative} ---\n{text.rstrip()}\n")
        return path

    # what the lesson created, found by its label
    def resources(self) -> Resources:
        client = docker_client()
        flt = {"label": self.label_filter}
        images: list[str] = []
        for image in client.images.list(filters=flt):
            images.extend(image.tags or [image.short_id])
        return Resources(
            containers=sorted(c.name for c in client.containers.list(all=True, filters=flt)),
            networks=sorted(n.name for n in client.networks.list(filters=flt)),
            volumes=sorted(v.name for v in client.volumes.list(filters=flt)),
            images=sorted(set(images)),
        )

    def cleanup(self, *, quiet: bool = False) -> None:
        """Remove every container, network, volume and image carrying this lesson's label,
        and the scratch folder, and say what went (and what could not go, and why)."""
        reaped = reap(docker_client(), self.label_filter, force_images=False)
        removed = Resources(**{kind: sorted(names) for kind, names in reaped.removed.items()})
        self._remove_scratch()
        if not quiet:
            print(f"lesson {self.id}: removed {removed.summary()} labelled {self.label_filter}")
        if reaped.problems:
            print("could not remove:\n  " + "\n  ".join(reaped.problems))

    def _remove_scratch(self) -> None:
        if self._scratch is not None:
            self.remove_tree(self._scratch)
        self._scratch = None

    def remove_tree(self, path: Path) -> None:
        """Delete a scratch folder, also where containers left files only root may delete."""
        if not path.exists():
            return
        try:
            shutil.rmtree(path)
        except PermissionError:
            subprocess.run(["docker", "run", "--rm", *self.flags.split(), "-v", f"{path}:/scratch",
                            HELPER_IMAGE, "sh", "-c", "rm -rf /scratch/* /scratch/.[!.]*"],
                           check=True, capture_output=True)
            shutil.rmtree(path)

    def scratch_folders(self) -> set[Path]:
        """Every scratch folder of this lesson in the temp directory (from any kernel)."""
        return set(Path(tempfile.gettempdir()).glob(f"{self.prefix}*"))


# --------------------------------------------------------------------------- GPUs


@dataclass(frozen=True)
class GpuStatus:
    """What this machine offers containers in GPUs, and the evidence."""
    runtimes: tuple[str, ...]  # OCI runtimes the engine knows (an "nvidia" one comes with the toolkit)
    host_gpus: tuple[str, ...]  # `nvidia-smi -L` on the host, if it has the driver
    engine_error: str  # why `docker run --gpus all` failed; empty when it works

    @property
    def available(self) -> bool:
        return not self.engine_error

    def text(self) -> str:
        lines = [f"engine runtimes: {', '.join(self.runtimes) or '(none listed)'}",
                 f"host GPUs (nvidia-smi -L): {'; '.join(self.host_gpus) or 'none found'}"]
        lines.append("docker run --gpus all: works" if self.available else
                     f"docker run --gpus all: fails: {self.engine_error}")
        return "\n".join(lines)


def gpu_status(lesson: Lesson) -> GpuStatus:
    """Ask the host and the engine whether a container can get a GPU. The decisive test is
    a `--gpus all` container: it fails at once where the engine cannot hand one out."""
    runtimes = tuple(sorted((docker_client().info().get("Runtimes") or {}).keys()))
    host_gpus: tuple[str, ...] = ()
    smi = shutil.which("nvidia-smi")
    if smi:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=60)
        host_gpus = tuple(line.strip() for line in listed.stdout.splitlines() if line.startswith("GPU"))
    probe = subprocess.run(["docker", "run", "--rm", *lesson.flags.split(), "--gpus", "all", HELPER_IMAGE, "true"],
                           capture_output=True, text=True, timeout=300)
    error = "" if probe.returncode == 0 else (probe.stderr.strip().splitlines() or ["exit status "
                                                                                   f"{probe.returncode}"])[0]
    return GpuStatus(runtimes, host_gpus, error)
