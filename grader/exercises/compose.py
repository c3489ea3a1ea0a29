"""05-compose: compose.yaml (production shape) and compose.override.yaml (development) for the
service and PostgreSQL.

The configuration is graded as `docker compose config` resolves it (the base file
alone, and with the override, as a plain `docker compose up` merges them); the
running stack by experiments: a marker written into PostgreSQL must survive
`down` then `up`, and a document stored through the API must survive recreating
the server. app/ and requirements.txt are the service's code (shared with service/);
the Dockerfile is the learner's own of an earlier exercise, else a checkpoint on the
reference image (grading uses it where the workspace has none): it is not graded here.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import PurePosixPath

from grader.errors import CheckFailed
from grader.exercises._compose import (BASE_FILE, DB, OVERRIDE_FILE, SERVER, ComposeContext, check_localhost_only,
                                       check_secret_file, check_stack_healthy, config_services)
from grader.exercises._common import memoized
from grader.registry import Exercise, fail, passed, register

exercise = register(Exercise("05-compose"))

NETWORK = "genai-net"
CODE_FILE = "app/main.py"                      # where the code is, relative to the workspace
DEFAULT_PGDATA = "/var/lib/postgresql/data"
SYNC_ACTIONS = ("sync", "sync+restart", "sync+exec")
# where images usually keep the package app/, after the image's own WORKDIR
CODE_CANDIDATES = ("/code", "/app", "/usr/src/app", "/srv", "/opt/app")


class ComposeExerciseContext(ComposeContext):
    stack_files = (BASE_FILE, OVERRIDE_FILE)   # what a plain `docker compose up` merges
    require_health = True

    @memoized
    def code_dir(self) -> str:
        """The folder of the server image that holds app/main.py."""
        image = self.server_image()
        workdir = (self.client.images.get(image).attrs.get("Config") or {}).get("WorkingDir") or "/"
        with self.session.files(image) as files:
            for folder in dict.fromkeys((workdir, *CODE_CANDIDATES)):
                if files.exists(str(PurePosixPath(folder) / CODE_FILE)):
                    return folder
        fail(f"the server image has no {CODE_FILE} under its WORKDIR {workdir}, so the grader cannot tell where "
             f"the code lives")

    def maps_code(self, source: str, target: str) -> str | None:
        """Why a host path -> container path mapping does not carry app/main.py onto the image's copy."""
        code = os.path.join(str(self.project.dir), CODE_FILE)
        source = os.path.normpath(source)
        if os.path.commonpath([source, code]) != source:
            return f"{source} does not hold {CODE_FILE}"
        relative = os.path.relpath(code, source)
        lands = str(PurePosixPath(target) / relative)
        expected = str(PurePosixPath(self.code_dir) / CODE_FILE)
        if lands != expected:
            return f"it puts {CODE_FILE} at {lands}, but the image runs {expected}"
        return None

    def relative(self, path: str) -> str:
        try:
            rel = os.path.relpath(path, self.project.dir)
        except ValueError:
            return path
        return "./" + rel if not rel.startswith("..") else path


exercise.context(ComposeExerciseContext)


@exercise.check("config_valid", points=1,
                summary="`docker compose config` accepts compose.yaml alone and with compose.override.yaml",
                concept="Compose reads the base file and merges the override over it; both must be valid on their"
                        " own terms before anything starts.",
                problem=("Compose refused your files ({files}): {output}.",
                         "Compose refused your files: {found}."),
                fix="Run `docker compose -f compose.yaml config` and `docker compose config` in the folder (with "
                    "PORT and MODELS_DIR set) and fix what they report: YAML indentation, unknown keys, "
                    "variables without a value.",
                section="Setting up a project")
def check_config_valid(ctx: ComposeExerciseContext):
    base = config_services(ctx.base_config)
    merged = config_services(ctx.stack_config)
    return passed(f"{base}; {merged}")


exercise.check("stack_healthy", points=2,
               summary="`docker compose up --wait` brings both services to healthy",
               concept="Bringing a stack up waits until each service reports healthy: a service without a health "
                       "check, or one that cannot start, keeps the stack from being ready.",
               problem=("The server's image did not build, so nothing started: {build_error}.",
                        "Your stack did not become healthy: {found}. The logs of the service that is not "
                        "healthy say why."),
               fix="Give db a healthcheck (`pg_isready`), mount the model read-only at /models from ${MODELS_DIR}, "
                   "and read `docker compose logs` for the service that failed.",
               section="Up", requires=("config_valid",))(check_stack_healthy)


@exercise.check("user_network", points=1, summary="both services are on genai-net",
                concept="Services on a network of their own find each other by service name, apart from "
                        "everything else on the machine.",
                problem="In your compose files, {found}: a service off genai-net cannot find the other by name.",
                fix="Declare `networks: {genai-net: {driver: bridge}}` at the top level and list genai-net under "
                    "both services: a user-defined bridge of their own, where they find each other by name.",
                section="Setting up a project", requires=("config_valid",))
def check_user_network(ctx: ComposeExerciseContext):
    config = ctx.stack_config
    networks = config.networks
    key = NETWORK if NETWORK in networks else next((k for k, n in networks.items() if n.get("name") == NETWORK), None)
    if key is None:
        fail(f"there is no network {NETWORK} in the configuration (networks: {', '.join(networks) or 'none'}); "
             f"expected a top-level `networks:` entry {NETWORK}")
    network = networks[key]
    driver = network.get("driver") or "bridge"
    if driver != "bridge":
        fail(f"{NETWORK} uses the driver {driver}; expected bridge")
    problems = []
    for name in (SERVER, DB):
        svc = config.service(name)
        if svc.get("network_mode"):
            problems.append(f"{name} uses network_mode: {svc['network_mode']}")
        elif key not in (svc.get("networks") or {}):
            on = [n if n != "default" else "the default network" for n in svc.get("networks") or {}]
            problems.append(f"{name} is on {', '.join(on) or 'the default network'}")
    if problems:
        fail(f"{'; '.join(problems)}; expected both services on {NETWORK}")
    attached = ""
    if ctx.stack_is_up():
        name = network.get("name") or key
        for service in (SERVER, DB):
            container = ctx.project.container(service)
            container.reload()
            if name not in (container.attrs["NetworkSettings"].get("Networks") or {}):
                fail(f"the {service} container is not attached to {name}")
        attached = ", and the running containers are attached to it"
    return passed(f"{SERVER} and {DB} are on {NETWORK} (driver {driver}){attached}")


@exercise.check("depends_healthy", points=1, summary="server depends on db with condition service_healthy",
                concept="Starting order is not readiness: a service can wait for another's container to start, or"
                        " for it to report healthy, and a database takes a while to accept connections.",
                problem=("Your server depends on db with the condition '{condition}', which does not wait for "
                         "PostgreSQL to be ready.",
                         "In your compose files, {found}."),
                fix="Write `depends_on: {db: {condition: service_healthy}}` under server: a plain depends_on only "
                    "waits for the database's container to start, not for PostgreSQL to accept connections.",
                section="Up", requires=("config_valid",))
def check_depends_healthy(ctx: ComposeExerciseContext):
    depends = ctx.stack_config.service(SERVER).get("depends_on") or {}
    if DB not in depends:
        fail(f"{SERVER} does not depend on {DB} (depends_on: {', '.join(depends) or 'none'}); expected "
             f"{DB} with condition service_healthy")
    condition = (depends[DB] or {}).get("condition", "service_started")
    if condition != "service_healthy":
        fail(f"{SERVER} depends on {DB} with condition {condition}; expected service_healthy", condition=condition)
    return passed(f"{SERVER} waits for {DB} to be healthy")


exercise.check("localhost_only", points=1, summary="every published port is bound to 127.0.0.1",
               concept="A port published without an address is open to the whole network; the database needs no "
                       "published port at all, the server one on the loopback address.",
               problem=("Your stack publishes {exposed}: reachable from other machines.",
                        "In your stack, {found}."),
               fix='Publish with the loopback address: `ports: ["127.0.0.1:${PORT}:8000"]`, and do not publish '
                   "the database at all: the server reaches it on genai-net.",
               section="Setting up a project", requires=("config_valid",))(check_localhost_only)


exercise.check("secret_file", points=2,
               summary="the token reaches the server as /run/secrets/api_token and appears in no container "
                       "environment and no image layer",
               concept="A secret given as an environment variable or a build argument shows in inspect output and"
                       " image history; given as a file, it reaches only the services that name it.",
               problem=("In your stack the token leaks: {leaks}.",
                        "In your stack, {found}."),
               fix="Declare `secrets: {api_token: {file: ./secrets/api_token.txt}}` at the top level and "
                   "`secrets: [api_token]` under server; never pass the token as an environment variable or a "
                   "build argument, where `docker inspect` and `docker history` show it.",
               section="Secrets are files, not environment variables", requires=("stack_healthy",))(check_secret_file)


@exercise.check("server_uses_db", points=1,
                summary="a document stored through the server's API is read back after the server is recreated",
                concept="The server keeps documents in PostgreSQL only when it is told where the database is; "
                        "otherwise it writes to a file inside its own container, gone when the container is "
                        "recreated.",
                problem=("Your server keeps its documents in {storage}, not in PostgreSQL.",
                         "In your stack, {found}."),
                fix="Point the server at PostgreSQL: `DATABASE_URL: postgresql://<user>@db:5432/<database>` "
                    "(the password from a secret file, DATABASE_PASSWORD_FILE); without it the service keeps "
                    "documents in SQLite inside its own container.",
                section="Talk to it", requires=("stack_healthy",))
def check_server_uses_db(ctx: ComposeExerciseContext):
    endpoint = ctx.endpoint()
    info = endpoint.json("GET", "/info")
    storage = info.get("storage") if isinstance(info, dict) else None
    text = f"grader document {secrets.token_hex(6)}"
    stored = endpoint.json("POST", "/documents", {"text": text}, expect=201)
    doc_id = stored.get("id") if isinstance(stored, dict) else None
    if not doc_id:
        fail(f"POST /documents answered without an id: {stored}")
    run = ctx.project.up(ctx.stack_files, SERVER, recreate=True, wait=False)
    if not run.ok:
        fail(f"recreating the server (`docker compose up --force-recreate --no-deps {SERVER}`) failed: {run.tail(4)}")
    try:
        ctx.wait_ready()
    except CheckFailed as failure:
        fail(f"after recreating the server: {failure.message}")
    answer = ctx.endpoint().call("GET", f"/documents/{doc_id}")
    found = answer.status == 200 and answer.json().get("text") == text
    where = f"; /info reports storage {storage}" if storage else ""
    if not found:
        fail(f"document {doc_id}, stored through the API, is gone after the server was recreated (GET "
             f"/documents/{doc_id} answered {answer.status}){where}; expected it in PostgreSQL",
             document_id=doc_id, storage=storage)
    if storage and storage != "postgresql":
        fail(f"document {doc_id} survived, but /info reports storage {storage}: the server keeps documents in "
             f"its own SQLite file, not in PostgreSQL", storage=storage)
    return passed(f"document {doc_id} was read back after the server was recreated{where}", document_id=doc_id)


@exercise.check("db_volume", points=1, summary="db data lives on a named volume and survives `down` then `up`",
                concept="PostgreSQL's data must live on a named volume: the container's writable layer goes with "
                        "the container, a named volume survives it.",
                problem=("In your stack, PostgreSQL's data folder is {mount}.",
                         "In your stack, {found}."),
                fix="Mount a named volume at PostgreSQL's data folder: `volumes: [db-data:/var/lib/postgresql/data]` "
                    "under db and `volumes: {db-data: {}}` at the top level; `down` keeps it, `down -v` deletes it.",
                section="Down and up again: the data stays", requires=("stack_healthy",))
def check_db_volume(ctx: ComposeExerciseContext):
    db = ctx.project.container(DB)
    env = dict(item.split("=", 1) for item in db.attrs["Config"].get("Env") or [] if "=" in item)
    pgdata = env.get("PGDATA", DEFAULT_PGDATA)
    mount = next((m for m in db.attrs.get("Mounts") or [] if m.get("Destination") == pgdata), None)
    declared = [v for v in ctx.stack_config.service(DB).get("volumes") or [] if v.get("target") == pgdata]
    where = _describe_mount(mount, declared, ctx)
    marker = f"grader-{secrets.token_hex(8)}"
    user = env.get("POSTGRES_USER", "postgres")
    psql(db, user, f"CREATE TABLE IF NOT EXISTS genai_grader_probe (marker text); "
                   f"INSERT INTO genai_grader_probe VALUES ('{marker}')")
    down = ctx.project.down(ctx.stack_files)
    if not down.ok:
        fail(f"`docker compose down` failed: {down.tail(4)}")
    up = ctx.project.up(ctx.stack_files, wait=False)
    if not up.ok:
        fail(f"after `docker compose down`, `docker compose up --wait` failed: {up.tail(4)}\n"
             + "\n".join(s.describe() for s in ctx.project.states()))
    ctx.wait_ready()
    found = psql(ctx.project.container(DB), user, "SELECT marker FROM genai_grader_probe", missing_ok=True,
                 patience=ctx.options.start_timeout)
    if marker not in found:
        fail(f"a row written into PostgreSQL is gone after `docker compose down` then `up`: its data folder "
             f"{pgdata} is {where}; expected a named volume there", pgdata=pgdata, mount=mount)
    if not mount or mount.get("Type") != "volume" or not declared or declared[0].get("type") != "volume":
        fail(f"the data survived, but {pgdata} is {where}; expected a named volume declared under `volumes:`",
             mount=mount)
    return passed(f"a row written into PostgreSQL survived `down` then `up`: {pgdata} is {where}",
                  volume=mount.get("Name"))


def _describe_mount(mount: dict | None, declared: list, ctx: ComposeExerciseContext) -> str:
    if mount is None:
        return "not a mount (it lives in the container, which `down` removes)"
    if mount.get("Type") == "volume":
        if declared and declared[0].get("type") == "volume":
            return f"the named volume {mount.get('Name')}"
        return f"an anonymous volume ({mount.get('Name', '')[:12]}...), which `down` leaves behind unused"
    return f"a {mount.get('Type')} mount of {ctx.relative(mount.get('Source', ''))}"


def psql(container, user: str, sql: str, missing_ok: bool = False, patience: float = 0.0) -> str:
    """Run SQL in the database container (local socket, as its superuser); the output, or a failed check.
    With `patience`, a database still starting is asked again until that many seconds have passed."""
    deadline = time.monotonic() + patience
    while True:
        code, output = container.exec_run(["timeout", "20", "psql", "-v", "ON_ERROR_STOP=1", "-U", user, "-d",
                                           "postgres", "-tAc", sql], environment={"PGCONNECT_TIMEOUT": "5"})
        text = (output or b"").decode("utf-8", errors="replace")
        if code == 0:
            return text
        if missing_ok and "does not exist" in text:
            return ""
        starting = "could not connect" in text or "starting up" in text or "No such file" in text
        if not starting or time.monotonic() >= deadline:
            fail(f"psql in the {DB} container failed (exit {code}): {text.strip()[-300:]}")
        time.sleep(0.5)


def _command(svc: dict) -> list[str]:
    return [str(w) for w in (svc.get("entrypoint") or []) + (svc.get("command") or [])]


def _source_binds(ctx: ComposeExerciseContext, svc: dict) -> list[dict]:
    """Bind mounts of the workspace (the model directory aside)."""
    root = str(ctx.project.dir)
    return [v for v in svc.get("volumes") or [] if v.get("type") == "bind"
            and os.path.commonpath([root, os.path.normpath(v.get("source", "/"))]) == root]


@exercise.check("override_dev", points=1,
                summary="the override adds a source bind mount and a reloading command; the base file has neither",
                concept="The base file is the production shape; the override adds what only development needs "
                        "(the source from the host, a server that reloads), so production never gets it.",
                problem="In your compose files, {found}: development and production must differ only through the "
                        "override.",
                fix="Keep compose.yaml the production shape; in compose.override.yaml bind-mount ./app over the "
                    "image's app folder and run uvicorn with --reload, so that an edit shows at once in "
                    "development and never in production.",
                section="Override files: production base, development on top", requires=("config_valid",))
def check_override_dev(ctx: ComposeExerciseContext):
    base = ctx.base_config.service(SERVER)
    merged = ctx.stack_config.service(SERVER)
    problems = []
    if _source_binds(ctx, base):
        problems.append(f"compose.yaml already bind-mounts {ctx.relative(_source_binds(ctx, base)[0]['source'])}")
    if "--reload" in _command(base):
        problems.append("compose.yaml already runs with --reload")
    if problems:
        fail(f"{'; '.join(problems)}: production would run the code from your disk and restart on every change; "
             f"expected both only in {OVERRIDE_FILE}")
    binds = _source_binds(ctx, merged)
    if not binds:
        fail(f"with {OVERRIDE_FILE}, {SERVER} bind-mounts nothing from the workspace; expected the source "
             f"(./app) mounted over the image's code")
    reasons = [why for v in binds if (why := ctx.maps_code(v["source"], v["target"]))]
    if len(reasons) == len(binds):
        fail(f"the bind mount {ctx.relative(binds[0]['source'])} -> {binds[0]['target']} misses the code: "
             f"{reasons[0]}")
    if "--reload" not in _command(merged):
        fail(f"with {OVERRIDE_FILE}, the command is {_command(merged) or 'the image default'}; expected uvicorn "
             f"with --reload")
    bind = next(v for v in binds if not ctx.maps_code(v["source"], v["target"]))
    return passed(f"{OVERRIDE_FILE} bind-mounts {ctx.relative(bind['source'])} at {bind['target']} and runs "
                  f"with --reload; compose.yaml has neither")


@exercise.check("watch", points=1, summary="develop.watch syncs the source into the server",
                concept="Compose can watch the source folder and sync each change into the running container, "
                        "without a rebuild.",
                problem="In your compose files, {found}: an edit under ./app never reaches the running server.",
                fix="Under server in compose.override.yaml add `develop: {watch: [{action: sync, path: ./app, "
                    "target: <the image's app folder>}]}` and run `docker compose watch`.",
                section="`docker compose watch`", requires=("config_valid",))
def check_watch(ctx: ComposeExerciseContext):
    watch = ((ctx.stack_config.service(SERVER).get("develop") or {}).get("watch")) or []
    if not watch:
        fail(f"{SERVER} has no develop.watch section; expected a sync rule for ./app")
    syncs = [w for w in watch if w.get("action") in SYNC_ACTIONS]
    if not syncs:
        fail(f"develop.watch has no sync rule (actions: {', '.join(str(w.get('action')) for w in watch)}); "
             f"expected action: sync for ./app")
    reasons = []
    for rule in syncs:
        why = ctx.maps_code(rule.get("path", ""), rule.get("target", "")) if rule.get("target") else "it has no target"
        if why is None:
            return passed(f"develop.watch syncs {ctx.relative(rule['path'])} to {rule['target']} "
                          f"({rule['action']})", rule=rule)
        reasons.append(f"{ctx.relative(rule.get('path', ''))} -> {rule.get('target')}: {why}")
    fail(f"no sync rule carries the code into the image's app folder: {'; '.join(reasons)}")
