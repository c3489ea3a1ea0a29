"""Compose exercises (05-compose, 08-capstone): the context their checks receive, and the checks both
share. The configuration model and the grader's override are in _compose_config, one project's
lifecycle in _compose_project.

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

import secrets
from pathlib import Path
from typing import Any

from dockerkit import archive
from dockerkit.net import free_port, is_loopback
from grader.errors import CheckFailed
from grader.exercises._common import ExerciseContext, memoized
from grader.exercises._service import Endpoint, wait_until_ready
from grader.registry import Passed, fail, passed
from grader.exercises._compose_config import (BASE_FILE, DB, SERVER, SERVER_PORT, SERVICE_LABEL, TOKEN_FILE,
                                              TOKEN_TARGET, ComposeConfig, grading_variables)
from grader.exercises._compose_project import ComposeProject, ServiceState
from grader.runner import GradingSession

# what the exercises and the tests import from here: one name for the compose layer
from grader.exercises._compose_config import GRADER_LIMITS as GRADER_LIMITS
from grader.exercises._compose_config import OVERRIDE_FILE as OVERRIDE_FILE
from grader.exercises._compose_config import default_limits as default_limits
from grader.exercises._compose_config import grader_override as grader_override


# -- the context the checks of 05 and 08 receive ---------------------------------------------

class ComposeContext(ExerciseContext):
    """A compose workspace: its configurations, the stack it brings up, the service it serves."""

    stack_files: tuple[str, ...] = (BASE_FILE,)
    require_health = True     # stack_healthy wants every service healthy (05); 08 checks health apart

    def __init__(self, session: GradingSession, workspace: Path, environment: Any) -> None:
        super().__init__(session, workspace, environment)
        self.token = f"genai-grader-{secrets.token_hex(16)}"
        self.port = free_port()
        self.variables = grading_variables(environment.models_dir, self.port, self.token)

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
