"""What several exercises share: the Dockerfile context, the run.sh context, and the
checks that mean the same in each (builds, localhost_only)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, Callable, TypedDict

import docker.errors

from dockerkit.net import free_port, is_loopback
from grader import hadolint
from grader.dockerfile import Dockerfile, DockerfileSyntaxError, parse
from grader.engine import BuildResult
from grader.errors import CheckFailed
from grader.registry import Passed, fail, passed
from grader.runner import GradingSession, ScriptResult
from grader.wait import wait_for_http

PLACEHOLDER_SCRIPT = "raise NotImplementedError()"
_MISSING_BASE = re.compile(r"failed to resolve source metadata|pull access denied|"
                           r"failed to authorize|repository does not exist|: not found", re.IGNORECASE)


class memoized:
    """A property computed once per context; a CheckFailed is remembered and raised again,
    so a failed build fails every check that needs it without building twice."""

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        cache = obj.__dict__.setdefault("_memoized", {})
        if self.name not in cache:
            try:
                cache[self.name] = (True, self.func(obj))
            except CheckFailed as failure:
                cache[self.name] = (False, failure)
        ok, value = cache[self.name]
        if ok:
            return value
        raise value

    @staticmethod
    def done(obj: Any, name: str) -> bool:
        """Whether `obj.<name>` was computed, and without failing (computing nothing)."""
        found = obj.__dict__.get("_memoized", {}).get(name)
        return bool(found and found[0])


class ImageInfo:
    """An image's configuration, as `docker image inspect` shows it."""

    def __init__(self, attrs: dict) -> None:
        self.attrs = attrs
        self.id = attrs["Id"]
        self.config = attrs.get("Config") or {}

    @property
    def user(self) -> str:
        return self.config.get("User") or ""

    @property
    def exposed_ports(self) -> list[str]:
        return sorted((self.config.get("ExposedPorts") or {}).keys())

    @property
    def env(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.config.get("Env") or [] if "=" in item)

    @property
    def layers(self) -> list[str]:
        return list((self.attrs.get("RootFS") or {}).get("Layers") or [])


def probe_output(container: Any, timeout: float, what: str) -> tuple[int | None, str]:
    """(exit status, stdout) of a probe container once it finished; a failed check if it does not in time."""
    try:
        status = container.wait(timeout=timeout)
    except Exception:
        fail(f"{what} did not finish within {timeout:.0f} s")
    return status.get("StatusCode"), container.logs(stdout=True, stderr=False).decode(errors="replace").strip()


def is_root_user(user: str) -> bool:
    name = user.split(":", 1)[0].strip()
    return name in ("", "root", "0")


class ExerciseContext:
    """What the checks of every exercise receive: the session that owns the grading's resources,
    the workspace, and what the machine provides (the model, the service image)."""

    def __init__(self, session: GradingSession, workspace: Path, environment: Any) -> None:
        self.session = session
        self.workspace = workspace
        self.environment = environment
        self.options = session.options

    @property
    def client(self) -> Any:
        """docker-py, through the session (a context never holds a client of its own)."""
        return self.session.client


class DockerfileContext(ExerciseContext):
    """A Dockerfile workspace: its text, parse, lint findings, build and image, each computed once."""

    dockerfile_name = "Dockerfile"

    @memoized
    def text(self) -> str:
        path = self.workspace / self.dockerfile_name
        if not path.is_file():
            fail(f"there is no {self.dockerfile_name} in the workspace {self.workspace}")
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"{self.dockerfile_name} cannot be read: {exc}")

    @memoized
    def parsed(self) -> Dockerfile:
        try:
            return parse(self.text)
        except DockerfileSyntaxError as exc:
            fail(f"the {self.dockerfile_name} cannot be parsed: {exc}", line=exc.line,
                 hint=f"Write or fix the {self.dockerfile_name} first: the builds check shows what is wrong.")

    @memoized
    def lint(self) -> list[hadolint.Finding]:
        return hadolint.lint(self.text)

    def lint_notes(self, *codes: str) -> list[str]:
        try:
            findings = self.lint
        except CheckFailed:
            return []
        return [f"({f})" for f in hadolint.matching(findings, *codes)]

    @memoized
    def build(self) -> BuildResult:
        self.text  # noqa: B018  (a missing Dockerfile fails here, with a clear message)
        return self.session.build(self.workspace, dockerfile=self.workspace / self.dockerfile_name)

    @memoized
    def image(self) -> ImageInfo:
        result = self.build
        if not result.ok:
            fail("the image could not be built")
        return ImageInfo(self.session.client.images.get(result.image_id).attrs)


def rebuild_after_code_change(ctx: DockerfileContext, code_file: str) -> BuildResult:
    """Rebuild a copy of the workspace in which only `code_file` changed; fails the check if it can't."""
    if not (ctx.workspace / code_file).is_file():
        fail(f"there is no {code_file} in the workspace to change")
    copy = ctx.session.tmpdir() / "workspace"
    shutil.copytree(ctx.workspace, copy, symlinks=True)
    code = copy / code_file
    # unique per grading: a change an earlier grading made would come from the cache
    code.write_text(code.read_text() + f"\n# changed by the grader ({ctx.session.id}): code only\n")
    rebuild = ctx.session.build(copy, dockerfile=copy / ctx.dockerfile_name, no_cache=False)
    if not rebuild.ok:
        fail(f"the rebuild after changing only {code_file} failed:\n{rebuild.failure_summary()}")
    return rebuild


def check_builds(ctx: DockerfileContext) -> Passed:
    result = ctx.build
    if result.ok:
        cached = sum(1 for s in result.steps if s.cached)
        return passed(f"the {ctx.dockerfile_name} builds ({result.duration_s:.1f} s, {len(result.steps)} steps, "
                      f"{cached} from the cache)", image_id=result.image_id, duration_s=round(result.duration_s, 2))
    summary = result.failure_summary()
    if result.timed_out:
        fail(f"the build did not finish within {ctx.options.build_timeout:.0f} s and was stopped; "
             f"last output:\n{summary}",
             hint="A build step never ends: look for a RUN that waits for input or runs a server, and make "
                  "it finish (e.g. `apt-get install -y`, no server started during the build).",
             timed_out=True, log_tail=summary)
    reason = ""
    try:
        ctx.parsed  # noqa: B018  (parsing is the point: its failure says why)
    except CheckFailed as failure:
        reason = f" ({failure.message})"
    hint = None
    directives = {}
    try:
        directives = dict(ctx.parsed.directives)
    except CheckFailed:
        pass
    if "syntax" in directives:
        hint = ("Remove the `# syntax=` line: it makes BuildKit download a Dockerfile frontend from a "
                "registry, which this machine cannot reach; the built-in frontend knows every instruction "
                "the course uses.")
    elif _MISSING_BASE.search(summary):
        hint = ("A base image could not be found: this machine cannot pull from a registry, so use one that "
                "is present locally (`docker images`), such as python:3.11-slim.")
    fail(f"the build failed{reason}; relevant output:\n{summary}", hint=hint,
         returncode=result.returncode, log_tail=summary)


# -- runtime (run.sh) exercises --------------------------------------------------------------

class ScriptContext(ExerciseContext):
    """A run.sh workspace: run.sh is run once when the context is made, with IMAGE, PORT and
    MODELS_DIR set; checks inspect what it created by the names the exercise fixes."""

    script = "run.sh"

    def __init__(self, session: GradingSession, workspace: Path, environment: Any) -> None:
        super().__init__(session, workspace, environment)
        self.port = free_port()
        self.variables = {"IMAGE": environment.service_image, "PORT": str(self.port),
                          "MODELS_DIR": str(environment.models_dir)}
        self.runs: list[ScriptResult] = [self.run_script()]

    def run_script(self) -> ScriptResult:
        return self.session.run_script(self.workspace, self.script, self.variables)

    @property
    def first_run(self) -> ScriptResult:
        return self.runs[0]

    def script_note(self) -> str:
        """Where a resource is missing, say how run.sh went: it is usually why."""
        run = self.first_run
        if run.ok:
            return ""
        if PLACEHOLDER_SCRIPT in run.output or "NotImplementedError" in run.output:
            return " (run.sh still holds the notebook's placeholder: write your commands in its place)"
        return f" ({run.describe()})"

    def container(self, name: str) -> Any:
        try:
            return self.client.containers.get(name)
        except docker.errors.NotFound:
            created = self.created_names()
            made = f"; run.sh created {', '.join(created)}" if created else ""
            fail(f"there is no container named {name}{made}{self.script_note()}", created=created)

    def created_names(self) -> list[str]:
        label = f"org.genai-course.session={self.session.id}"
        return sorted(c.name for c in self.client.containers.list(all=True, filters={"label": label}))

    def wait_for_health(self, container: Any, what: str) -> float:
        return wait_for_http(f"http://127.0.0.1:{self.port}/health", timeout=self.options.start_timeout,
                             http_timeout=self.options.http_timeout, container=container, what=what,
                             diagnose=lambda: publishing_problem(container, 8000, self.port))


def published_bindings(attrs: dict) -> list[tuple[str, str, str]]:
    """(container port, host ip, host port) for every published port, configured or active."""
    found = set()
    for key, section in (("NetworkSettings", "Ports"), ("HostConfig", "PortBindings")):
        for port, bindings in ((attrs.get(key) or {}).get(section) or {}).items():
            for b in bindings or []:
                found.add((port, b.get("HostIp") or "0.0.0.0", str(b.get("HostPort") or "")))
    return sorted(found)


def publishing_problem(container: Any, container_port: int, host_port: int) -> str | None:
    """Why 127.0.0.1:host_port cannot reach the container, judging by its port bindings."""
    try:
        container.reload()
    except docker.errors.NotFound:
        return f"{container.name} was removed"
    bindings = [b for b in published_bindings(container.attrs) if b[0] == f"{container_port}/tcp"]
    if container.attrs["HostConfig"].get("NetworkMode") == "host":
        return None
    if not bindings:
        return (f"{container.name} publishes nothing for {container_port}/tcp; expected "
                f"-p 127.0.0.1:$PORT:{container_port} (PORT={host_port})")
    if not any(b[2] == str(host_port) for b in bindings):
        shown = ", ".join(f"{b[1]}:{b[2]}" for b in bindings)
        return (f"{container.name} publishes {container_port}/tcp on {shown}, not on port $PORT "
                f"({host_port}): use the PORT variable the grader sets")
    return None


def published_ports_are_local(attrs_by_name: dict[str, dict]) -> Passed:
    """Every published port of these containers is bound to 127.0.0.1 (or ::1)."""
    exposed: list[str] = []
    local: list[str] = []
    for name, attrs in attrs_by_name.items():
        for port, host_ip, host_port in published_bindings(attrs):
            entry = f"{name} {port} on {host_ip}:{host_port}"
            (local if is_loopback(host_ip) else exposed).append(entry)
        if (attrs.get("HostConfig") or {}).get("PublishAllPorts"):
            exposed.append(f"{name} publishes all exposed ports (-P) on every interface")
    if exposed:
        fail(f"published on every interface, so reachable from other machines: {'; '.join(exposed)}; "
             f"expected 127.0.0.1 as the host address", exposed=exposed)
    if not local:
        return passed("no port is published on an outside interface (none is published)", published=[])
    return passed(f"every published port is bound to localhost: {'; '.join(local)}", published=local)


__all__ = ["DockerfileContext", "ExerciseContext", "ImageInfo", "ScriptContext", "check_builds", "is_root_user", "memoized",
           "published_bindings", "published_ports_are_local", "publishing_problem"]


class HintTiers(TypedDict):
    concept: str
    problem: tuple[str, ...]
    fix: str


# The hint tiers of every exercise's `builds` check (check_builds): the same build, the same help.
BUILDS_TIERS: HintTiers = dict(
    concept="An image is built step by step from the Dockerfile; when one step fails, the build stops "
            "there and the step's own output says why.",
    problem=("Your build was stopped at the time limit (timed out: {timed_out}): a step waits for input or "
             "runs a server, so it never ends.",
             "Your Dockerfile cannot be read at line {line}: {found}.",
             "Your build stopped at this error: {build_error}. Fix the step that printed it: the steps "
             "after it never ran.",
             "Your build failed: {found}."),
    fix="Read the build output above: it names the step that failed and why.",
)
