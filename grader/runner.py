"""The grading session: the one owner of every build, container, volume and
network a grading creates, including what the learner's run.sh creates.

Everything is labelled `org.genai-course.managed=true` and
`org.genai-course.session=<uuid>`; `cleanup()` runs in `finally` (also after a
timeout, an exception, Ctrl-C or SIGTERM) and removes by label, plus the
fixed-name resources the exercise names, which `claim()` has checked did not
exist before. Nothing that existed before the session is removed.
"""

from __future__ import annotations

import itertools
import shutil
import signal
import tempfile
import threading
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import docker.errors

from dockerkit import archive
from dockerkit.labels import MountWatch, reap
from grader import progress
from dockerkit.net import free_port
from dockerkit.process import run_bounded
from grader.engine import BuildResult, Engine
from grader.errors import ResourceInTheWay
from grader.lock import grading_lock
from grader.options import MANAGED_LABEL, SESSION_LABEL, GradingOptions
from grader.registry import FixedNames

SHIM_SOURCE = Path(__file__).with_name("docker_label_shim.sh")


@dataclass(frozen=True)
class ScriptResult:
    script: str
    exit_code: int | None     # None: missing, or stopped at the time limit
    output: str
    timed_out: bool
    duration_s: float
    missing: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def tail(self, lines: int = 15) -> str:
        kept = [ln[:300] for ln in self.output.strip().splitlines()[-lines:]]
        return "\n".join(kept) if kept else "(no output)"

    def describe(self) -> str:
        if self.missing:
            return f"there is no {self.script} in the workspace"
        if self.timed_out:
            return (f"{self.script} did not finish within {self.duration_s:.0f} s (a `docker run` "
                    f"without -d waits for the container to exit); last output:\n{self.tail()}")
        if self.exit_code == 0:
            return f"{self.script} exited 0 after {self.duration_s:.1f} s"
        return f"{self.script} exited with status {self.exit_code}; last output:\n{self.tail()}"


class GradingSession:
    def __init__(self, engine: Engine, options: GradingOptions, name: str = "grading",
                 announce: Callable[[str], None] | None = None) -> None:
        self.engine = engine
        self.client = engine.client
        self.options = options
        self.id = uuid.uuid4().hex
        self.name = name
        self.labels = {MANAGED_LABEL: "true", SESSION_LABEL: self.id}
        self._counter = itertools.count(1)
        self._image_tags: list[str] = []
        self._claimed = FixedNames()
        self._volumes_before: set[str] = set()
        self._mounts: MountWatch | None = None
        self._tmpdirs: list[Path] = []
        self._cleanups: list[tuple[str, Callable[[], None]]] = []
        self.cleanup_errors: list[str] = []
        self._announce = announce
        self._lock: ExitStack | None = None  # the grading lock, held from the first claim to the end

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> GradingSession:
        self._volumes_before = {v.name for v in self.client.volumes.list()}
        self._mounts = MountWatch(self.client, f"{SESSION_LABEL}={self.id}").__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.cleanup()

    def unique_name(self, what: str) -> str:
        return f"genai-grader-{self.id[:12]}-{what}-{next(self._counter)}"

    def add_cleanup(self, what: str, action: Callable[[], None]) -> None:
        """Run `action` first when the session ends (last added, first run), e.g. `compose down`;
        the removal by label that follows catches whatever it leaves."""
        self._cleanups.append((what, action))

    def tmpdir(self) -> Path:
        path = Path(tempfile.mkdtemp(prefix="genai-grader-"))
        self._tmpdirs.append(path)
        return path

    # -- fixed names -----------------------------------------------------------------------
    def claim(self, names: FixedNames) -> None:
        """Stop if a fixed name is taken; otherwise remember to remove it at the end.

        Fixed names are shared by every grading on the engine: the first claim takes the grading
        lock, which the session holds until its cleanup has removed them."""
        if not names:
            return
        if self._lock is None:
            lock = ExitStack()
            lock.enter_context(grading_lock(self.options.lock_timeout, announce=self._announce))
            self._lock = lock
        for name in names.containers:
            if self._exists(self.client.containers, name):
                raise ResourceInTheWay(
                    f"a container named {name} already exists and was not created by this grading; "
                    f"remove it with `docker rm -f {name}` (or `make clean` if a grading left it) and grade again")
        for name in names.volumes:
            if self._exists(self.client.volumes, name):
                raise ResourceInTheWay(
                    f"a volume named {name} already exists and may hold your data; the grader never "
                    f"removes it: back it up if you need it, remove it with `docker volume rm {name}`, "
                    f"and grade again")
        for name in names.networks:
            if any(n.name == name for n in self.client.networks.list(names=[name])):  # names= is a prefix filter
                raise ResourceInTheWay(
                    f"a network named {name} already exists and was not created by this grading; "
                    f"remove it with `docker network rm {name}` and grade again")
        self._claimed = FixedNames(self._claimed.containers + names.containers,
                                   self._claimed.volumes + names.volumes, self._claimed.networks + names.networks)

    @staticmethod
    def _exists(collection: Any, name: str) -> bool:
        try:
            collection.get(name)
            return True
        except docker.errors.NotFound:
            return False

    # -- builds ----------------------------------------------------------------------------
    def build(self, context: Path, *, dockerfile: Path | None = None, no_cache: bool | None = None,
              build_args: Mapping[str, str] | None = None, target: str | None = None) -> BuildResult:
        tag = self.image_tag(str(next(self._counter)))
        return self.engine.build(context, tag=tag, labels=self.labels, timeout=self.options.build_timeout,
                                 dockerfile=dockerfile, build_args=build_args, target=target,
                                 no_cache=self.options.no_cache if no_cache is None else no_cache)

    def image_tag(self, what: str) -> str:
        """A tag for an image the grading builds (compose builds too), removed at the end: never
        one that existed before."""
        tag = f"{self.image_prefix}-{what}"
        self._image_tags.append(tag)
        return tag

    @property
    def image_prefix(self) -> str:
        return f"genai-course/grading:{self.id[:12]}"

    # -- containers, volumes, networks -------------------------------------------------------
    def run(self, image: str, *, publish: int | None = None, **kwargs: Any) -> Any:
        """Start a detached container with limits; `publish`: container port to put on 127.0.0.1."""
        params: dict[str, Any] = dict(detach=True, labels=dict(self.labels), name=self.unique_name("ctr"),
                                      **self.options.limits.run_kwargs())
        if publish is not None:
            params["ports"] = {f"{publish}/tcp": ("127.0.0.1", free_port())}
        params.update(kwargs)
        return self.client.containers.run(image, **params)

    def create(self, image: str, **kwargs: Any) -> Any:
        """A container that is never started: a handle to read the image's files."""
        params: dict[str, Any] = dict(labels=dict(self.labels), name=self.unique_name("files"),
                                      command=["/grader-never-runs"], network_disabled=True)
        params.update(kwargs)
        return self.client.containers.create(image, **params)

    def volume(self) -> Any:
        return self.client.volumes.create(name=self.unique_name("vol"), labels=dict(self.labels))

    @staticmethod
    def host_port(container: Any, port: int) -> int:
        container.reload()
        bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp") or []
        if not bindings:  # a container that already exited has no live ports: use what was asked for
            bindings = (container.attrs["HostConfig"].get("PortBindings") or {}).get(f"{port}/tcp") or []
        return int(bindings[0]["HostPort"])

    # -- image files -----------------------------------------------------------------------
    @contextmanager
    def files(self, image: str) -> Iterator[ImageFiles]:
        container = self.create(image)
        try:
            yield ImageFiles(self.client, container)
        finally:
            self._remove_container(container)

    # -- the learner's run.sh ----------------------------------------------------------------
    def run_script(self, workspace: Path, script: str, env: Mapping[str, str]) -> ScriptResult:
        """`bash <script>` in the workspace, with `docker` wrapped so that what it creates is labelled."""
        if not (workspace / script).is_file():
            return ScriptResult(script, None, "", False, 0.0, missing=True)
        progress.emit(progress.PHASE, f"  running bash {script}")
        real_docker = shutil.which("docker")
        shim_dir = self.tmpdir()
        shim = shim_dir / "docker"
        shim.write_text(SHIM_SOURCE.read_text())
        shim.chmod(0o755)
        full_env = self.engine.cli_env({
            **env,
            "PATH": f"{shim_dir}:{self.engine.cli_env().get('PATH', '')}",
            "GENAI_GRADER_REAL_DOCKER": real_docker or "docker",
            "GENAI_GRADER_SESSION": self.id,
        })
        done = run_bounded(["bash", script], cwd=workspace, env=full_env, timeout=self.options.script_timeout)
        return ScriptResult(script, done.returncode, done.text, done.timed_out, done.duration_s)

    # -- cleanup ---------------------------------------------------------------------------
    def _remove_container(self, container: Any) -> None:
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass

    def cleanup(self) -> None:
        with _signals_deferred():
            try:
                self._cleanup()
            finally:
                if self._lock is not None:  # only now may another grading use the fixed names
                    self._lock.close()
                    self._lock = None

    def _cleanup(self) -> None:
        label = f"{SESSION_LABEL}={self.id}"
        while self._cleanups:
            what, action = self._cleanups.pop()
            try:
                action()
            except docker.errors.NotFound:
                pass
            except Exception as exc:  # keep cleaning; report what stayed
                self.cleanup_errors.append(f"{what}: {exc}")
        # volumes the session's containers mounted, anonymous ones (`-v /data`) included, also of
        # containers a check or run.sh removed without -v; what existed before is spared
        mounted: set[str] = set()
        if self._mounts is not None:
            try:
                mounted = self._mounts.volumes()
            except Exception as exc:
                self.cleanup_errors.append(f"reading the engine's events: {exc}")
            finally:
                self._mounts.close()
                self._mounts = None
        reaped = reap(self.client, label, containers=self._claimed.containers,
                      networks=self._claimed.networks,
                      volumes=set(self._claimed.volumes) | (mounted - self._volumes_before),
                      images=self._image_tags, spare=self._volumes_before)
        self.cleanup_errors += reaped.problems
        for path in self._tmpdirs:
            shutil.rmtree(path, ignore_errors=True)
        self._tmpdirs.clear()


class ImageFiles:
    """Read files of an image through a created (never started) container."""

    def __init__(self, client: Any, container: Any) -> None:
        self.client = client
        self.container = container

    def stat(self, path: str) -> dict[str, Any] | None:
        return archive.stat(self.client, self.container.id, path)

    def exists(self, path: str) -> bool:
        return self.stat(path) is not None

    def file_count(self, path: str, stop_at: int = 1) -> int:
        """How many regular files lie under `path` (counting stops at `stop_at`; the archive streams)."""
        return archive.file_count(self.client, self.container.id, path, stop_at)

    def read_text(self, path: str, limit: int = 1_000_000) -> str | None:
        return archive.read_text(self.client, self.container.id, path, limit)


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Finish cleaning up even if Ctrl-C or SIGTERM arrives again meanwhile."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if received:
            raise KeyboardInterrupt
