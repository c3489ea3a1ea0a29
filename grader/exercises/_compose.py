"""Compose projects under grading (05-compose, 08-capstone), and the checks both exercises share.

Compose runs on a copy of the workspace, never in it. The copy gets the API token
in secrets/api_token.txt (and in API_TOKEN: the secret may come from either), and
a random value for any other secret file the configuration names but the
workspace lacks (a database password). Each project has its own name,
genai-grade-<session>, and an override file of the grader's own (outside the
copy, so never in a build context) that
- puts the session's labels on every container, network, volume and built image,
- names the built images after the session, so that no tag that existed is replaced,
- sets memory, CPU and process limits where the learner's files set none.
Every compose command is bounded in time, and `down -v --remove-orphans` runs when
the session ends, whatever happened. The grading session owns everything else: the
lock and the claim of fixed names, the image tags, and the removal by label that
follows, which also finds the volumes (anonymous ones too) the project's containers
mounted.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from dockerkit import archive
from dockerkit.buildkit import parse_build_steps
from dockerkit.containers import container_logs
from dockerkit.limits import ContainerLimits
from dockerkit.net import free_port, is_loopback
from dockerkit.process import run_bounded
from grader.dockerfile import NOTEBOOK_PLACEHOLDER
from grader.engine import BuildResult
from grader.errors import CheckFailed
from grader.exercises._common import ExerciseContext, memoized
from grader.exercises._service import Endpoint, wait_until_ready
from grader.registry import FixedNames, Passed, fail, passed
from grader.runner import GradingSession

PROJECT_PREFIX = "genai-grade-"
BASE_FILE, OVERRIDE_FILE = "compose.yaml", "compose.override.yaml"
TOKEN_FILE = "secrets/api_token.txt"
TOKEN_TARGET = "/run/secrets/api_token"
SERVER, DB = "server", "db"
SERVER_PORT = 8000
QUICK = 60.0                       # config, down: they never take long unless something is wrong
# The grader's limits where the learner's files set none: (deploy.resources.limits key, service-level key, value)
_LIMITS = ContainerLimits()   # the same defaults as every container the grader starts
GRADER_LIMITS = (("memory", "mem_limit", _LIMITS.memory), ("cpus", "cpus", _LIMITS.cpus),
                 ("pids", "pids_limit", _LIMITS.pids))
_COPY_IGNORED = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".ipynb_checkpoints", ".pytest_cache")
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


# -- the configuration, as `docker compose config` resolves it --------------------------------

class ComposeConfig:
    """`docker compose config --format json`: interpolated, merged, paths made absolute."""

    def __init__(self, data: dict, files: tuple[str, ...]) -> None:
        self.data = data
        self.files = files

    @property
    def services(self) -> dict[str, dict]:
        return self.data.get("services") or {}

    @property
    def networks(self) -> dict[str, dict]:
        return {k: (v or {}) for k, v in (self.data.get("networks") or {}).items()}

    @property
    def volumes(self) -> dict[str, dict]:
        return {k: (v or {}) for k, v in (self.data.get("volumes") or {}).items()}

    @property
    def secrets(self) -> dict[str, dict]:
        return {k: (v or {}) for k, v in (self.data.get("secrets") or {}).items()}

    def service(self, name: str) -> dict:
        try:
            return self.services[name]
        except KeyError:
            fail(f"there is no service {name!r} in {self.describe_files()} (services: "
                 f"{', '.join(self.services) or 'none'})")

    def describe_files(self) -> str:
        return " + ".join(self.files)

    def limits(self, name: str) -> dict[str, Any]:
        """Memory, CPU and process limits of a service, from deploy.resources.limits or the short keys."""
        svc = self.services.get(name) or {}
        deploy = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        return {"memory": deploy.get("memory") or svc.get("mem_limit"),
                "cpus": deploy.get("cpus") or svc.get("cpus"),
                "pids": deploy.get("pids") or svc.get("pids_limit")}

    def fixed_names(self, project: str) -> FixedNames:
        """Names the files fix instead of letting compose prefix them with the project name."""
        def fixed(section: Mapping[str, dict]) -> tuple[str, ...]:
            return tuple(sorted(v["name"] for v in section.values()
                                if v.get("name") and not v.get("external") and not v["name"].startswith(f"{project}_")))
        containers = tuple(sorted(s["container_name"] for s in self.services.values() if s.get("container_name")))
        return FixedNames(containers=containers, volumes=fixed(self.volumes), networks=fixed(self.networks))


def default_limits(svc: Mapping[str, Any]) -> dict[str, Any]:
    """The grader's limits for what a service leaves unlimited, written in the form the service uses.

    Compose refuses a service that sets one limit in both forms (`pids_limit` and
    `deploy.resources.limits.pids`), even to equal values, so a default never adds the
    other form: where the learner writes `deploy.resources.limits`, the defaults go there too.
    """
    deploy = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    unset = [(key, short, value) for key, short, value in GRADER_LIMITS
             if deploy.get(key) is None and svc.get(short) is None]
    if not unset:
        return {}
    if deploy:
        return {"deploy": {"resources": {"limits": {key: value for key, _, value in unset}}}}
    return {short: value for _, short, value in unset}


def grader_override(config: ComposeConfig, labels: Mapping[str, str], image_prefix: str) -> dict:
    """The grader's own compose file: labels everywhere, session-named images, default limits."""
    def missing(element: Mapping[str, Any] | None) -> dict[str, str]:
        # compose merges labels as a list that must not repeat an item the learner's files already hold
        have = (element or {}).get("labels") or {}
        return {k: v for k, v in labels.items() if have.get(k) != v}

    services = {}
    for name, svc in config.services.items():
        entry: dict[str, Any] = {"labels": missing(svc), "privileged": False}
        if svc.get("build") is not None:
            entry["image"] = f"{image_prefix}-{name}"
            entry["build"] = {"labels": missing(svc.get("build"))}
        entry.update(default_limits(svc))
        services[name] = entry
    override: dict[str, Any] = {"services": services}
    networks = {k: {"labels": missing(v)} for k, v in config.networks.items() if not v.get("external")}
    volumes = {k: {"labels": missing(v)} for k, v in config.volumes.items() if not v.get("external")}
    if networks:
        override["networks"] = networks
    if volumes:
        override["volumes"] = volumes
    return override


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
        done = run_bounded(cmd, timeout=timeout, cwd=self.dir, env=self.env)
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


# -- the context the checks of 05 and 08 receive ---------------------------------------------

class ComposeContext(ExerciseContext):
    """A compose workspace: its configurations, the stack it brings up, the service it serves."""

    stack_files: tuple[str, ...] = (BASE_FILE,)
    require_health = True     # stack_healthy wants every service healthy (05); 08 checks health apart

    def __init__(self, session: GradingSession, workspace: Path, environment: Any) -> None:
        super().__init__(session, workspace, environment)
        self.token = f"genai-grader-{secrets.token_hex(16)}"
        self.port = free_port()
        self.variables = {"PORT": str(self.port), "MODELS_DIR": str(environment.models_dir),
                          "API_TOKEN": self.token}

    @memoized
    def project(self) -> ComposeProject:
        return ComposeProject(self.session, self.workspace, self.variables)

    @memoized
    def base_config(self) -> ComposeConfig:
        return self.project.config((BASE_FILE,))

    @memoized
    def stack_config(self) -> ComposeConfig:
        return self.project.config(self.stack_files)

    @memoized
    def built(self) -> dict[str, str]:
        """service -> image id, for the services compose builds."""
        config = self.stack_config
        self.project.prepare(config, self.token)
        result = self.project.build(self.stack_files)
        if not result.ok:
            how = (f"did not finish within {self.options.build_timeout:.0f} s" if result.timed_out
                   else "failed")
            fail(f"`docker compose build` {how}; relevant output:\n{result.failure_summary()}",
                 log_tail=result.failure_summary())
        return {svc: self.client.images.get(tag).id for svc, tag in self.project.images.items()}

    def server_image(self) -> str:
        built = self.built
        if SERVER not in built:
            fail(f"the service {SERVER} has no build section, so it does not run the workspace's Dockerfile")
        return built[SERVER]

    @memoized
    def stack(self) -> list[ServiceState]:
        """`docker compose up --wait`, and the server answering /health; the states of the services."""
        self.built  # noqa: B018  (a failed build fails here)
        run = self.project.up(self.stack_files)
        states = self.project.states()
        described = "\n".join(s.describe() for s in states) or "no container was created"
        if not run.ok:
            if run.timed_out:
                why = (f"was stopped after {self.project.up_limit:.0f} s (the start limit is "
                       f"{self.options.start_timeout:.0f} s)")
            else:
                why = f"failed after {run.duration_s:.0f} s: {run.tail(3)}"
            fail(f"`docker compose up --wait` {why}\n{described}", states=[s.__dict__ for s in states])
        for name in (SERVER, DB):
            if not any(s.service == name for s in states):
                fail(f"compose started no container for the service {name}\n{described}")
        if self.require_health:
            bad = [s for s in states if s.health != "healthy"]
            if bad:
                fail("not every service is healthy after `docker compose up --wait`: "
                     + "; ".join(s.describe() for s in bad), states=[s.__dict__ for s in states])
        try:
            self.wait_ready()
        except CheckFailed as failure:
            fail(f"the stack is up, but the server does not answer GET /health: {failure.message}")
        return states

    def wait_ready(self) -> float:
        return wait_until_ready(self.endpoint(auth=False), timeout=self.options.start_timeout,
                                container=self.project.container(SERVER), what=SERVER)

    def stack_is_up(self) -> bool:
        """Whether stack_healthy brought the stack up; never starts it (a check graded without the stack
        judges the configuration alone)."""
        return memoized.done(self, "stack")

    def endpoint(self, auth: bool = True) -> Endpoint:
        """The server through the host port compose published for 8000 (loopback where it is bound to all)."""
        container = self.project.container(SERVER)
        container.reload()
        bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{SERVER_PORT}/tcp") or []
        if not bindings:
            fail(f"{SERVER} publishes nothing for port {SERVER_PORT}, so the grader cannot reach it; expected "
                 f'ports: ["127.0.0.1:${{PORT}}:{SERVER_PORT}"]')
        ip = bindings[0].get("HostIp") or "127.0.0.1"
        host = "127.0.0.1" if ip in ("0.0.0.0", "", "127.0.0.1") else (f"[{ip}]" if ":" in ip else ip)
        return Endpoint(f"http://{host}:{bindings[0]['HostPort']}", self.options.http_timeout,
                        self.token if auth else None)


# -- checks shared by 05 and 08 ----------------------------------------------------------------

def check_stack_healthy(ctx: ComposeContext) -> Passed:
    states = ctx.stack
    kinds = ", ".join(f"{s.service} {s.health or s.status}" for s in states)
    return passed(f"`docker compose up --wait` brought the stack up ({kinds}), and the server answers "
                  f"GET /health", services=[s.__dict__ for s in states])


def check_localhost_only(ctx: ComposeContext) -> Passed:
    """Every port the files publish is bound to a loopback address, and the server publishes 8000."""
    config = ctx.stack_config
    exposed: list[str] = []
    local: list[str] = []
    server_published = False
    for name, svc in config.services.items():
        if svc.get("network_mode") == "host":
            exposed.append(f"{name} uses network_mode: host, so every port it listens on is open on every "
                           f"interface")
        for port in svc.get("ports") or []:
            host_ip = port.get("host_ip") or "0.0.0.0"
            target = f"{port.get('target')}/{port.get('protocol') or 'tcp'}"
            entry = f"{name} {target} on {host_ip}:{port.get('published') or '(any port)'}"
            (local if is_loopback(host_ip) else exposed).append(entry)
            if name == SERVER and int(port.get("target") or 0) == SERVER_PORT:
                server_published = True
    if exposed:
        fail(f"published on every interface, so reachable from other machines: {'; '.join(exposed)}; expected "
             f"127.0.0.1 as the host address", exposed=exposed)
    if not server_published:
        fail(f"{SERVER} publishes nothing for port {SERVER_PORT}; expected "
             f'ports: ["127.0.0.1:${{PORT}}:{SERVER_PORT}"] (the grader sets PORT)', published=local)
    return passed(f"every published port is bound to localhost: {'; '.join(local)}", published=local)


def check_secret_file(ctx: ComposeContext) -> Passed:
    """The token reaches the server as a file, the server requires it, and no environment or image
    history holds it."""
    ctx.stack  # noqa: B018
    server = ctx.project.container(SERVER)
    content = archive.read_text(ctx.client, server.id, TOKEN_TARGET, limit=65536)
    if content is None:
        fail(f"the server has no {TOKEN_TARGET}; expected the api_token secret there (`secrets: [api_token]` "
             f"on the service, and a top-level secret from {TOKEN_FILE} or the environment variable API_TOKEN)")
    if content.strip() != ctx.token:
        fail(f"{TOKEN_TARGET} in the server does not hold the token the grader set (in {TOKEN_FILE} and "
             f"API_TOKEN): the secret must come from one of them")
    leaks = []
    images = {}
    for c in ctx.project.containers():
        c.reload()
        for item in c.attrs["Config"].get("Env") or []:
            if ctx.token in item:
                leaks.append(f"the environment of {c.labels.get(SERVICE_LABEL, c.name)} "
                             f"({item.split('=', 1)[0]})")
        for word in (c.attrs["Config"].get("Cmd") or []) + (c.attrs["Config"].get("Entrypoint") or []):
            if ctx.token in word:
                leaks.append(f"the command line of {c.labels.get(SERVICE_LABEL, c.name)}")
        images[c.attrs["Image"]] = c.labels.get(SERVICE_LABEL, c.name)
    for image_id, service in images.items():
        image = ctx.client.images.get(image_id)
        for entry in ctx.client.api.history(image_id):
            if ctx.token in (entry.get("CreatedBy") or ""):
                leaks.append(f"a layer of {service}'s image: {entry['CreatedBy'][:80]}")
        config = image.attrs.get("Config") or {}
        if any(ctx.token in item for item in config.get("Env") or []):
            leaks.append(f"the ENV of {service}'s image")
        if any(ctx.token in str(v) for v in (config.get("Labels") or {}).values()):
            leaks.append(f"a LABEL of {service}'s image")
    if leaks:
        fail(f"the token is readable in {'; '.join(dict.fromkeys(leaks))}: anyone who can inspect the container "
             f"or the image sees it; expected it only in {TOKEN_TARGET}", leaks=leaks)
    endpoint = ctx.endpoint()
    anonymous = endpoint.call("GET", "/info", auth=False).status
    authorised = endpoint.call("GET", "/info").status
    if anonymous != 401 or authorised != 200:
        fail(f"GET /info answered {anonymous} without the token and {authorised} with it; expected 401 and 200: "
             f"the server must read the token from {TOKEN_TARGET} (API_TOKEN_FILE)",
             without=anonymous, with_token=authorised)
    return passed(f"the token is in {TOKEN_TARGET} of the server, which answers 401 without it and 200 with it; "
                  f"it is in no container's environment ({len(ctx.project.containers())} checked) and in no "
                  f"layer of their {len(images)} images", images=len(images))


def config_services(config: ComposeConfig) -> str:
    """The server and the database are in the configuration, and the server is built from the workspace."""
    for name in (SERVER, DB):
        config.service(name)
    server = config.service(SERVER)
    if server.get("build") is None:
        fail(f"the service {SERVER} in {config.describe_files()} has no build section; expected it built from "
             f"the workspace (build: .)")
    return f"{config.describe_files()}: services {', '.join(config.services)}"
