"""08-capstone: the service and PostgreSQL in production shape (Dockerfile and compose.yaml).

compose.yaml alone is graded (production never merges the development override):
its resolved configuration for the settings (read-only root, limits, restart,
health checks, ports), the running stack for behaviour (the user of the server's
processes, the secret, a bounded burst of concurrent requests). size_budget and
the compose checks are the same code as in 06 and 05.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dockerkit.containers import processes
from grader.dockerfile import Dockerfile, DockerfileSyntaxError, parse
from grader.exercises._common import is_root_user, memoized
from grader.exercises._compose import (BASE_FILE, DB, SERVER, ComposeContext, check_localhost_only,
                                       check_secret_file, check_stack_healthy, config_services)
from grader.exercises._images import ImageAnalysis, analyse, size_budget
from grader.exercises._service import reference, vector_problem
from grader.registry import Exercise, fail, passed, register
from grader.wait import ProbeError, http

exercise = register(Exercise("08-capstone"))

RESTART_OK = ("always", "unless-stopped", "on-failure")
BURST = 64                 # concurrent requests, half /embed and half /search
BURST_DEADLINE_S = 15.0    # the whole burst, answers included
SEEDED = 8                 # documents stored before the burst, for /search to find
# Backpressure is correct behaviour: a 429 with Retry-After is the service protecting itself. Up to
# this share of the burst may be refused that way; more means it cannot take a modest burst.
MAX_THROTTLED_SHARE = 0.10


class CapstoneContext(ComposeContext):
    stack_files = (BASE_FILE,)     # production: compose.yaml alone
    require_health = False         # health is the healthcheck check's business

    @memoized
    def dockerfile(self) -> Dockerfile:
        build = self.stack_config.service(SERVER).get("build") or {}
        path = Path(build.get("context") or self.project.dir) / (build.get("dockerfile") or "Dockerfile")
        if not path.is_file():
            fail(f"the server is built from {self.project.relative(str(path))}, which does not exist")
        try:
            return parse(path.read_text(encoding="utf-8"))
        except DockerfileSyntaxError as exc:
            fail(f"{path.name} cannot be parsed: {exc}")

    @memoized
    def analysis(self) -> ImageAnalysis:
        return analyse(self.client, self.server_image(), self.dockerfile)

    def image_healthcheck(self, image: str) -> list[str] | None:
        try:
            test = ((self.client.images.get(image).attrs.get("Config") or {}).get("Healthcheck") or {}).get("Test")
        except Exception:
            return None
        return test if test and test != ["NONE"] else None


exercise.context(CapstoneContext)


@exercise.check("config_valid", points=1, summary="`docker compose -f compose.yaml config` accepts the file",
                concept="Compose must accept the production file on its own before anything starts.",
                problem=("Compose refused your compose.yaml: {output}.",
                         "Compose refused your compose.yaml: {found}."),
                fix="Run `docker compose -f compose.yaml config` (with PORT and MODELS_DIR set) and fix what it "
                    "reports.",
                section="Production settings in Compose")
def check_config_valid(ctx: CapstoneContext):
    return passed(config_services(ctx.stack_config))


exercise.check("stack_healthy", points=2,
               summary="`docker compose -f compose.yaml up --wait` starts both services and the server answers "
                       "GET /health",
               concept="A production stack is up when every service reports healthy; read-only roots, limits and "
                       "secrets each add a way for a service not to start.",
               problem=("The server's image did not build, so nothing started: {build_error}.",
                        "Your stack did not become healthy: {found}. The logs of the service that is not "
                        "healthy say why."),
               fix="Run `docker compose -f compose.yaml up -d --build --wait` yourself and read `docker compose "
                   "logs server`, `docker compose ps -a` (exit codes) and `docker inspect` (OOMKilled): a read-only "
                   "root needs tmpfs for /tmp, the model comes from ${MODELS_DIR}.",
               section="Debugging drill", requires=("config_valid",))(check_stack_healthy)


@exercise.check("non_root", points=1,
                summary="the server's image user is not root and its processes run with a non-zero uid",
                concept="In production the server runs as its own unprivileged user, set in the image and not "
                        "undone by the compose file.",
                problem=("Your server runs as {user}: {found}.",
                         "In your stack, {found}."),
                fix="USER in the final stage of the Dockerfile (lessons/04-permissions.ipynb), and no `user: root` "
                    "in compose.yaml.",
                section="The capstone, check by check", requires=("config_valid",))
def check_non_root(ctx: CapstoneContext):
    image = ctx.client.images.get(ctx.server_image())
    image_user = (image.attrs.get("Config") or {}).get("User") or ""
    user = ctx.stack_config.service(SERVER).get("user") or image_user
    source = "compose.yaml's user:" if ctx.stack_config.service(SERVER).get("user") else "the image's USER"
    if is_root_user(str(user)):
        how = f"as {user} ({source})" if user else "as root: the image sets no USER and compose.yaml no user:"
        fail(f"the server runs {how}; expected a non-root user", user=user)
    if not ctx.stack_is_up():
        return passed(f"the server runs as {user} ({source})", user=user)
    rows = processes(ctx.project.container(SERVER), "pid,uid,args")
    if rows is None:  # the engine cannot list them (rootless without cgroups): the declared user stands
        return passed(f"the server runs as {user} ({source}); this engine cannot list a container's processes "
                      "to confirm it", user=user)
    rooted = [r for r in rows if r.get("UID") == "0"]
    if rooted:
        fail(f"the server's user is {user}, but a process runs as root: {rooted[0].get('COMMAND', '')}")
    uids = sorted({str(r.get("UID")) for r in rows})
    return passed(f"the server runs as {user} ({source}); its processes run with uid {', '.join(uids)}", user=user)


@exercise.check("healthcheck", points=1, summary="server and db have health checks, and both report healthy",
                concept="A health check tells the engine when a service is ready and when it is broken; starting "
                        "order and the wait for a ready stack rely on it.",
                problem="Health checks in your stack: {found}. A service without a working one is never known to be ready "
                        "or broken.",
                fix="A HEALTHCHECK in the Dockerfile (GET /health with Python: the slim image has no curl) or "
                    "`healthcheck:` in compose.yaml for the server, with a start period longer than the model "
                    "load; `pg_isready` for db. `up --wait` and depends_on rely on them; restart policies do not "
                    "(they react to exits only).",
                section="HEALTHCHECK and the start period", requires=("config_valid",))
def check_healthcheck(ctx: CapstoneContext):
    found, missing = [], []
    for name in (SERVER, DB):
        svc = ctx.stack_config.service(name)
        declared = svc.get("healthcheck") or {}
        if declared.get("disable"):
            missing.append(f"{name} disables its health check")
            continue
        if declared.get("test"):
            found.append(f"{name} (compose.yaml)")
            continue
        image = ctx.server_image() if name == SERVER else svc.get("image", "")
        if ctx.image_healthcheck(image):
            found.append(f"{name} (its image's HEALTHCHECK)")
        else:
            missing.append(f"{name} has none (neither in compose.yaml nor in its image)")
    if missing:
        fail(f"{'; '.join(missing)}; expected a health check for server and db", found=found)
    if ctx.stack_is_up():
        states = {s.service: s for s in ctx.project.states()}
        sick = [states[n].describe() for n in (SERVER, DB) if n in states and states[n].health != "healthy"]
        if sick:
            fail(f"health checks are declared, but {'; '.join(sick)}")
        return passed(f"health checks: {', '.join(found)}; both report healthy")
    return passed(f"health checks: {', '.join(found)}")


@exercise.check("read_only_rootfs", points=1, summary="the server runs with a read-only root file system",
                concept="A read-only root file system stops anyone from changing the container's files; what must"
                        " be written goes to a tmpfs or a volume.",
                problem="In your stack, {found}: whoever gets into the server can change its files.",
                fix="`read_only: true` on the server, with `tmpfs: [/tmp]` for scratch space; its data goes to "
                    "PostgreSQL and its model comes from a read-only mount, so nothing else needs writing.",
                section="A read-only root file system", requires=("config_valid",))
def check_read_only_rootfs(ctx: CapstoneContext):
    if ctx.stack_config.service(SERVER).get("read_only") is not True:
        fail("the server's root file system is writable (no `read_only: true` in compose.yaml); expected it "
             "read-only, so that an intruder cannot change the image's files")
    if ctx.stack_is_up():
        container = ctx.project.container(SERVER)
        if not container.attrs["HostConfig"].get("ReadonlyRootfs"):
            fail("compose.yaml says read_only, but the running server's root file system is writable")
        return passed("the server runs with a read-only root file system, and serves")
    return passed("the server's root file system is read-only (read_only: true)")


@exercise.check("resource_limits", points=1, summary="every service has a memory and a CPU limit",
                concept="Without limits one runaway container can use all the memory and CPU of the host and "
                        "starve everything else on it.",
                problem="In your stack, {found}: such a service can take all the memory or CPU of the host.",
                fix="Under each service: `deploy: {resources: {limits: {cpus: \"1\", memory: 1g, pids: 256}}}`: "
                    "without limits one runaway container can starve the host and everything on it.",
                section="Memory, CPU and process limits", requires=("config_valid",))
def check_resource_limits(ctx: CapstoneContext):
    config = ctx.stack_config
    shown, missing = [], []
    for name in config.services:
        limits = config.limits(name)
        lacks = [k for k in ("memory", "cpus") if not limits[k]]
        if lacks:
            missing.append(f"{name} has no {' and no '.join(lacks)} limit")
        shown.append(f"{name}: memory {_memory(limits['memory'])}, cpus {limits['cpus'] or '-'}, "
                     f"pids {limits['pids'] or '-'}")
    if missing:
        fail(f"{'; '.join(missing)}; expected memory and cpus limits on every service ({'; '.join(shown)})")
    return passed("; ".join(shown))


def _memory(value: Any) -> str:
    """compose config writes memory in bytes: show it the way a learner writes it."""
    if not value:
        return "-"
    try:
        size = int(value)
    except (TypeError, ValueError):
        return str(value)
    for unit, factor in (("g", 1 << 30), ("m", 1 << 20)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size} bytes"


@exercise.check("restart_policy", points=1, summary="every service restarts on failure",
                concept="A restart policy brings a service back after a crash or a reboot; without one it stays "
                        "down.",
                problem="In your stack, {found}: after a crash or a reboot such a service stays down.",
                fix="`restart: unless-stopped` (or always, on-failure) under each service: a crash or a reboot "
                    "must not leave the service down.",
                section="What restarts a container", requires=("config_valid",))
def check_restart_policy(ctx: CapstoneContext):
    shown, missing = [], []
    for name, svc in ctx.stack_config.services.items():
        policy = str(svc.get("restart") or "")
        condition = str(((svc.get("deploy") or {}).get("restart_policy") or {}).get("condition") or "")
        if policy.split(":")[0] in RESTART_OK or condition in ("any", "on-failure"):
            shown.append(f"{name}: {policy or 'deploy.restart_policy ' + condition}")
        else:
            missing.append(f"{name} has restart policy {policy or 'no'}")
    if missing:
        fail(f"{'; '.join(missing)}; expected unless-stopped, always or on-failure on every service")
    return passed("; ".join(shown))


exercise.check("localhost_only", points=1, summary="every published port is bound to 127.0.0.1",
               concept="A port published without an address is open to the whole network; only the server needs "
                       "one, on the loopback address.",
               problem=("Your stack publishes {exposed}: reachable from other machines.",
                        "In your stack, {found}."),
               fix='`ports: ["127.0.0.1:${PORT}:8000"]` on the server, and no published port on db.',
               section="Production settings in Compose", requires=("config_valid",))(check_localhost_only)


exercise.check("secret_file", points=1,
               summary="the token reaches the server as /run/secrets/api_token and appears in no container "
                       "environment and no image layer",
               concept="The token reaches the server as a file from a secret, readable by the server's user, and "
                       "never as an environment variable.",
               problem=("In your stack the token leaks: {leaks}.",
                        "In your stack, {found}."),
               fix="The api_token secret from ./secrets/api_token.txt (lessons/06-compose.ipynb, “Secrets are "
                   "files, not environment variables”); Compose bind-mounts the file, so its mode must let the "
                   "server's user read it (a 0600 file of yours is unreadable to uid 1001).",
               section="Production settings in Compose", requires=("stack_healthy",))(check_secret_file)


@exercise.check("size_budget", points=2, summary="the server's image adds at most 280 MB to its final base image",
                concept="An image's size is the sum of its layers over the base; a multi-stage build keeps only "
                        "what the service needs at run time.",
                problem="Your server's image: {found}. The largest layers in the table above are where to look.",
                fix="A multi-stage venv build of requirements.txt, as in exercise 06 (lessons/07-image-optimisation"
                    ".ipynb): the layer table above shows where the megabytes are.",
                section="The capstone, check by check", requires=("config_valid",))
def check_size_budget(ctx: CapstoneContext):
    return size_budget(ctx.analysis)


def _timed(call) -> tuple[Any, float]:
    start = time.monotonic()
    try:
        return call(), time.monotonic() - start
    except ProbeError as exc:
        return exc, time.monotonic() - start


@exercise.check("serves_under_load", points=3,
                summary=f"a burst of {BURST} concurrent /embed and /search requests is answered within "
                        f"{BURST_DEADLINE_S:.0f} s, correctly, without any 5xx",
                concept="Under a burst of requests the service must answer each one correctly or say it is busy "
                        "(429 with Retry-After); errors and timeouts are failures.",
                problem="Under the grader's burst your stack answered: {found}.",
                fix="Check the server's limits (memory, CPUs) and its queue (MAX_QUEUE_SIZE): the service batches "
                    "concurrent requests and answers 429 with Retry-After when its queue is full; a few of those "
                    "are fine, errors and timeouts are not. `docker compose logs server` shows what went wrong.",
                section="Under a burst: 429 and Retry-After", requires=("stack_healthy",))
def check_serves_under_load(ctx: CapstoneContext):
    endpoint = ctx.endpoint()
    ref = reference(str(ctx.environment.models_dir))
    variant = endpoint.json("GET", "/info").get("variant")
    expected = ref["embeddings"].get(variant)
    if expected is None:
        fail(f"/info reports the variant {variant!r}, which has no reference embeddings")
    min_cosine = float(ref["thresholds"]["grader_min_cosine"])
    sentences = ref["sentences"]
    prefix = f"grader-{ctx.session.id[:8]}"
    for i in range(SEEDED):
        endpoint.json("POST", "/documents", {"id": f"{prefix}-{i}", "text": sentences[i]}, expect=201)

    timeout = BURST_DEADLINE_S
    headers = endpoint.headers()

    def embed(i: int):
        return http("POST", f"{endpoint.base}/embed", timeout=timeout, payload={"inputs": sentences[i]},
                    headers=headers)

    def search(j: int):
        from urllib.parse import quote
        return http("GET", f"{endpoint.base}/search?q={quote(sentences[j])}&k=3", timeout=timeout, headers=headers)

    jobs = [("embed", (n // 2) % len(sentences)) if n % 2 == 0 else ("search", (n // 2) % SEEDED)
            for n in range(BURST)]
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=BURST) as pool:
        futures = [pool.submit(_timed, (lambda k=k, i=i: embed(i) if k == "embed" else search(i))) for k, i in jobs]
        answers = [f.result() for f in futures]
    took = time.monotonic() - start

    wrong, errors, throttled, no_answer, latencies = [], [], [], [], []
    for (kind, i), (answer, elapsed) in zip(jobs, answers):
        if isinstance(answer, ProbeError):
            no_answer.append(f"{kind} ({answer})")
            continue
        latencies.append(elapsed)
        if answer.status == 429 and any(k.lower() == "retry-after" for k in answer.headers):
            throttled.append(kind)
        elif answer.status >= 500:
            errors.append(f"{kind} {answer.status}")
        elif answer.status != 200:
            wrong.append(f"{kind} answered {answer.status}")
        elif kind == "embed":
            body = answer.json()
            vector = body[0] if isinstance(body, list) and len(body) == 1 else body
            problem = vector_problem(vector, expected[i], min_cosine)
            if problem:
                wrong.append(f"the embedding of reference sentence {i + 1} {problem}")
        else:
            hits = answer.json()
            top = hits[0].get("id") if isinstance(hits, list) and hits and isinstance(hits[0], dict) else None
            if top != f"{prefix}-{i}":
                wrong.append(f"/search for document {i + 1}'s own text found {top!r} first")
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else None
    evidence: dict[str, Any] = {"requests": BURST, "seconds": round(took, 2), "throttled": len(throttled), "errors": errors,
                "wrong": wrong[:5], "no_answer": no_answer[:5], "p95_s": round(p95, 3) if p95 else None}
    if errors:
        fail(f"{len(errors)} of {BURST} concurrent requests got a server error ({', '.join(errors[:4])}); "
             f"expected none", **evidence)
    if no_answer:
        fail(f"{len(no_answer)} of {BURST} concurrent requests got no answer within {timeout:.0f} s "
             f"({'; '.join(no_answer[:3])})", **evidence)
    if wrong:
        fail(f"{len(wrong)} of {BURST} concurrent requests were answered wrongly: {'; '.join(wrong[:3])}", **evidence)
    if len(throttled) > MAX_THROTTLED_SHARE * BURST:
        fail(f"{len(throttled)} of {BURST} concurrent requests were refused with 429; at most "
             f"{int(MAX_THROTTLED_SHARE * BURST)} may be ({MAX_THROTTLED_SHARE:.0%}): the service cannot take a "
             f"modest burst", **evidence)
    if took > BURST_DEADLINE_S:
        fail(f"the burst of {BURST} requests took {took:.1f} s; expected at most {BURST_DEADLINE_S:.0f} s",
             **evidence)
    health = http("GET", f"{endpoint.base}/health", timeout=endpoint.timeout)
    if health.status != 200:
        fail(f"after the burst, GET /health answered {health.status}", **evidence)
    note = f", {len(throttled)} refused with 429 and Retry-After" if throttled else ""
    return passed(f"{BURST} concurrent requests ({BURST // 2} /embed, {BURST // 2} /search) answered correctly in "
                  f"{took:.1f} s (p95 {p95:.2f} s){note}; no 5xx", **evidence)
