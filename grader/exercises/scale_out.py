"""09-scale-out: stack.yaml runs the service and PostgreSQL on a throwaway three-node Swarm.

The grader makes the cluster (dockerkit.swarm: Docker-in-Docker nodes and a registry) and
removes it at the end of the session; the learner's engine never enters swarm mode. The
stack is deployed as `genai` with SERVICE_IMAGE (the service image, through the cluster's
registry) and MODELS_DIR (the model, read-only on every node) in its environment, and the
secrets under ./secrets/ next to it. The manager node carries the label genai.db=true: it
holds the database's volume. The checks run in order; the node loss comes last.

A rootless engine (the grading box) cannot run a node (no overlay networks): every check is
skipped there, not counted, and graded by `make grade` on the learner's own engine.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from dockerkit.swarm import NODE_MODELS, Cluster, ClusterError
from dockerkit.wait import WaitFailed, poll
from grader.exercises._common import ExerciseContext, memoized
from grader.registry import Exercise, fail, passed, register, skip

exercise = register(Exercise("09-scale-out"))

STACK = "genai"
SERVER, DB = f"{STACK}_server", f"{STACK}_db"
DB_LABEL = "genai.db=true"
CONVERGE_TIMEOUT = 300.0   # images pulled on three nodes, the model loaded, PostgreSQL initialised
UPDATE_TIMEOUT = 180.0
NODE_LOSS_TIMEOUT = 60.0   # the contract's figure
SECRET_TARGET = "api_token"


def _rootless(client: Any) -> bool:
    return any("rootless" in option for option in client.info().get("SecurityOptions") or [])


class SwarmContext(ExerciseContext):
    token = secrets.token_hex(24)

    @memoized
    def cluster(self) -> Cluster:
        if _rootless(self.client):
            skip("self-paced only: this engine is rootless (the grading box), and a Swarm node needs a rootful "
                 "engine for overlay networks; `make grade EX=09-scale-out` grades it on your own engine")
        cluster = Cluster(self.client, self.session.labels, self.session.unique_name("swarm"),
                          models_dir=self.environment.models_dir)
        self.session.add_cleanup("the swarm cluster", cluster.close)
        try:
            cluster.start()
            cluster.docker(cluster.manager, "node", "update", "--label-add", DB_LABEL, cluster.manager, check=True)
        except (ClusterError, WaitFailed) as exc:
            raise RuntimeError(f"the throwaway swarm could not be made (not your stack.yaml): {exc}") from exc
        return cluster

    @memoized
    def images(self) -> dict[str, str]:
        image = self.environment.service_image
        for base in exercise.facts.images:  # postgres:15, through the registry that mirrors Docker Hub for the nodes
            self.cluster.mirror(base)
        refs = {"v1": self.cluster.push(image, "genai/service:v1"), "v2": self.cluster.push(image, "genai/service:v2")}
        broken = self.client.containers.create(image, labels=self.session.labels)
        try:  # the same image, whose server exits at once: an update to it must fail and roll back
            committed = broken.commit(changes=['CMD ["false"]', "HEALTHCHECK NONE"])
        finally:
            broken.remove(v=True)
        try:
            refs["broken"] = self.cluster.push(committed.id, "genai/service:broken")
        finally:
            self.client.images.remove(committed.id, force=True)
        return refs

    @memoized
    def deployed(self) -> str:
        path = self.workspace / "stack.yaml"
        if not path.is_file():
            fail("stack.yaml: not written yet")
        text = path.read_bytes()
        files = {"stack.yaml": text, "secrets/api_token.txt": self.token.encode(),
                 "secrets/db_password.txt": secrets.token_hex(16).encode()}
        self.cluster.put_files(self.cluster.manager, files, "/stack")
        env = {"SERVICE_IMAGE": self.images["v1"], "MODELS_DIR": NODE_MODELS}
        done = self.cluster.run(self.cluster.manager, ["sh", "-c", "cd /stack && docker stack deploy -c stack.yaml "
                                                       f"{STACK}"], env=env)
        if not done.ok:
            fail(f"`docker stack deploy` refused stack.yaml: {done.output.strip()[-600:]}")
        return done.output

    def services(self) -> dict[str, str]:
        listed = self.cluster.docker(self.cluster.manager, "service", "ls", "--format", "{{.Name}} {{.Replicas}}")
        return dict(line.split(" ", 1) for line in listed.output.splitlines() if " " in line)

    def inspect(self, kind: str, name: str) -> dict[str, Any]:
        found = self.cluster.docker(self.cluster.manager, kind, "inspect", name)
        if not found.ok:
            fail(f"the stack has no {kind} {name}: name the services `server` and `db`")
        return dict(json.loads(found.output)[0])

    def running_tasks(self, service: str) -> list[str]:
        """The nodes of a service's running tasks."""
        listed = self.cluster.docker(self.cluster.manager, "service", "ps", service, "--filter",
                                     "desired-state=running", "--format", "{{.Node}} {{.CurrentState}}")
        return [line.split()[0] for line in listed.output.splitlines() if " Running " in f" {line} "]

    def answering(self) -> list[str]:
        return [node for node in self.cluster.nodes if self.cluster.answers(node)]

    def replicas(self) -> int:
        spec = self.inspect("service", SERVER)["Spec"]
        return int(((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas") or 0)

    def settled(self) -> bool:
        """Every service at its replica count, and the server answering on as many nodes."""
        counts = self.services()
        full = bool(counts) and all(value.split()[0].split("/")[0] == value.split()[0].split("/")[1]
                                    for value in counts.values())
        return full and len(self.answering()) >= self.replicas()

    @memoized
    def converged(self) -> float:
        self.deployed  # noqa: B018 - deploys once
        start = time.monotonic()
        try:
            poll(self.settled, timeout=CONVERGE_TIMEOUT, what="the stack")
        except WaitFailed:
            states = ", ".join(f"{name} {count}" for name, count in sorted(self.services().items()))
            tasks = self.cluster.docker(self.cluster.manager, "service", "ps", "--no-trunc", "--format",
                                        "{{.Name}} {{.CurrentState}} {{.Error}}", SERVER).output
            fail(f"the stack did not converge within {CONVERGE_TIMEOUT:.0f} s: {states or 'no services'}; "
                 f"server tasks: {tasks.strip()[-500:] or 'none'}")
        return time.monotonic() - start


exercise.context(SwarmContext)


def _spec(ctx: SwarmContext, service: str) -> dict[str, Any]:
    return dict(ctx.inspect("service", service)["Spec"])


@exercise.check("stack_deploys", points=2, summary="`docker stack deploy` accepts the file and every service converges",
                concept="A stack file describes services that swarm schedules on its nodes; it runs images that "
                        "already exist in a registry the nodes reach, and swarm reports each service converged "
                        "once its tasks run.",
                problem="Swarm could not run your stack: {found}. The tasks' own errors name the cause (an image "
                        "the nodes cannot pull, a key swarm ignores or refuses).",
                fix="Deploy it yourself on the lesson's cluster (`docker stack deploy -c stack.yaml genai` on the "
                    "manager) and read `docker service ps --no-trunc genai_server`: stack files need `version: "
                    "\"3.9\"`, no `build:`, and `image: ${SERVICE_IMAGE}`.",
                section="Deploying a stack")
def check_stack_deploys(ctx: SwarmContext):
    took = ctx.converged
    return passed(f"the stack converged after {took:.0f} s: "
                  + ", ".join(f"{n} {c}" for n, c in sorted(ctx.services().items())), converged_s=round(took, 1))


@exercise.check("replicated", points=2, summary="at least 2 healthy server replicas, on at least 2 nodes",
                concept="Swarm runs a service as replicas spread over its nodes; with a health check it counts "
                        "only healthy replicas, and a placement rule keeps two of them off the same node.",
                problem="In your stack, {found}: a single node going down would take the service with it.",
                fix="`deploy: replicas: 2` and `placement: max_replicas_per_node: 1` for the server, its port "
                    "published with `mode: host`, and a health check so that swarm counts only healthy tasks.",
                section="Replicas across nodes", requires=("stack_deploys",))
def check_replicated(ctx: SwarmContext):
    nodes = ctx.running_tasks(SERVER)
    answering = ctx.answering()
    if len(nodes) < 2 or len(set(nodes)) < 2:
        fail(f"the server runs {len(nodes)} replica(s) on {len(set(nodes))} node(s); expected at least 2 on 2 nodes",
             nodes=nodes)
    if len(answering) < 2:
        fail(f"only {len(answering)} node(s) answer GET /health on port 8000; expected 2", answering=answering)
    return passed(f"{len(nodes)} server replicas on {', '.join(sorted(set(nodes)))}, healthy", nodes=nodes)


@exercise.check("overlay_network", points=1, summary="the services share an overlay network declared in stack.yaml",
                concept="An overlay network spans the nodes of a swarm: services on it reach each other by name "
                        "wherever their tasks run; one you declare is one you control.",
                problem="In your stack, {found}.",
                fix="Declare a network with `driver: overlay` under `networks:` and attach both services to it; "
                    "the stack's implicit default network is not one you chose.",
                section="Overlay networks", requires=("stack_deploys",))
def check_overlay_network(ctx: SwarmContext):
    def networks(service: str) -> set[str]:
        return {n["Target"] for n in _spec(ctx, service)["TaskTemplate"].get("Networks") or []}

    shared = networks(SERVER) & networks(DB)
    declared = []
    for network_id in shared:
        info = ctx.inspect("network", network_id)
        if info.get("Driver") == "overlay" and info.get("Name") != f"{STACK}_default":
            declared.append(info["Name"])
    if not declared:
        fail("server and db share no overlay network declared in stack.yaml (only the stack's default one, or none)")
    return passed(f"server and db share the overlay network {', '.join(sorted(declared))}")


@exercise.check("swarm_secret", points=2,
                summary="the API token is a swarm secret at /run/secrets/api_token and in no container environment",
                concept="A swarm secret is stored encrypted by the managers and handed to the tasks that name it "
                        "as a file in memory; an environment variable shows in every inspect.",
                problem="In your stack, {found}.",
                fix="`secrets: api_token: file: ./secrets/api_token.txt` at the top level, `secrets: [api_token]` "
                    "on the server (it reads /run/secrets/api_token by default), and no API_TOKEN variable.",
                section="Swarm secrets", requires=("stack_deploys",))
def check_swarm_secret(ctx: SwarmContext):
    container = _spec(ctx, SERVER)["TaskTemplate"]["ContainerSpec"]
    targets = [s.get("File", {}).get("Name") for s in container.get("Secrets") or []]
    leaked = [v.split("=", 1)[0] for v in container.get("Env") or [] if ctx.token in v]
    if leaked:
        fail(f"the API token is in the server's environment ({', '.join(leaked)}); a secret is a file")
    if SECRET_TARGET not in targets:
        shown = ", ".join(f"/run/secrets/{t}" for t in targets) or "no secret"
        fail(f"the server gets {shown}; expected the token at /run/secrets/{SECRET_TARGET}")
    return passed(f"the token is the swarm secret at /run/secrets/{SECRET_TARGET}, in no environment")


def _update_state(ctx: SwarmContext) -> str:
    return str((ctx.inspect("service", SERVER).get("UpdateStatus") or {}).get("State") or "")


@exercise.check("rolling_update", points=2,
                summary="an image update rolls start-first with no failed request; a broken image is rolled back",
                concept="A rolling update replaces replicas one at a time; starting the new one before stopping "
                        "the old keeps the service answering, and a failure action decides what happens to a "
                        "broken image.",
                problem="In your stack, {found}.",
                fix="`deploy: update_config: {order: start-first, parallelism: 1, failure_action: rollback, "
                    "monitor: 30s}` and a `rollback_config` with stop-first (the tasks it replaces never served; "
                    "stopping them frees their node); keep one node free of the server (3 nodes, 2 replicas) so "
                    "that a new task can start before an old one stops.",
                section="Rolling updates and rollback", requires=("stack_deploys",))
def check_rolling_update(ctx: SwarmContext):
    update = _spec(ctx, SERVER).get("UpdateConfig") or {}
    if update.get("Order") != "start-first":
        fail(f"update_config.order is {update.get('Order') or 'stop-first (the default)'}; expected start-first")
    if update.get("FailureAction") != "rollback":
        fail(f"update_config.failure_action is {update.get('FailureAction') or 'pause (the default)'}; "
             "expected rollback")
    replicas, images, cluster = ctx.replicas(), ctx.images, ctx.cluster
    cluster.docker(cluster.manager, "service", "update", "--detach", "--image", images["v2"], SERVER, check=True)
    short: list[int] = []

    def rolled() -> bool:
        up = len(ctx.answering())
        if up < replicas:
            short.append(up)
        return _update_state(ctx) == "completed" and len(ctx.running_tasks(SERVER)) >= replicas

    try:
        poll(rolled, timeout=UPDATE_TIMEOUT, what="the update to a new image")
    except WaitFailed:
        fail(f"the update to a new image did not complete within {UPDATE_TIMEOUT:.0f} s "
             f"(state: {_update_state(ctx) or 'none'})")
    if short:
        fail(f"during the update only {min(short)} of {replicas} replicas answered: requests failed")
    cluster.docker(cluster.manager, "service", "update", "--detach", "--image", images["broken"], SERVER, check=True)
    try:
        # twice the time: the failure has to show before the rollback's own start-first roll begins
        poll(lambda: _update_state(ctx) in ("rollback_completed", "paused", "rollback_paused"),
             timeout=2 * UPDATE_TIMEOUT, what="the update to a broken image")
    except WaitFailed:
        fail(f"an update to a broken image neither rolled back nor paused within {2 * UPDATE_TIMEOUT:.0f} s "
             f"(state: {_update_state(ctx) or 'none'})")
    if _update_state(ctx) != "rollback_completed":
        fail(f"an update to a broken image ended {_update_state(ctx)}; expected it rolled back")
    poll(lambda: len(ctx.answering()) >= replicas, timeout=UPDATE_TIMEOUT, what="the server after the rollback")
    return passed(f"the update rolled start-first with {replicas} replicas answering throughout; "
                  "a broken image was rolled back")


_OPERATORS = ("==", "!=")


def _matches(node: dict[str, Any], constraint: str) -> bool | None:
    """Whether a node satisfies one placement constraint; None for an attribute this check does not read."""
    op = next((o for o in _OPERATORS if o in constraint), None)
    if op is None:
        return None
    key, value = (part.strip() for part in constraint.split(op, 1))
    spec, description = node.get("Spec") or {}, node.get("Description") or {}
    if key.startswith("node.labels."):
        actual = (spec.get("Labels") or {}).get(key[len("node.labels."):])
    elif key == "node.hostname":
        actual = description.get("Hostname")
    elif key == "node.role":
        actual = spec.get("Role")
    elif key == "node.id":
        actual = node.get("ID")
    else:
        return None
    return (actual == value) == (op == "==")


@exercise.check("db_pinned", points=1, summary="the database is constrained to the node that holds its volume",
                concept="A local volume lives on one node: a database must always be scheduled where its data is,"
                        " or it starts empty somewhere else.",
                problem="In your stack, {found}.",
                fix="`deploy: placement: constraints: [node.labels.genai.db == true]` on db: a local volume "
                    "lives on one node, and a database rescheduled elsewhere would start empty.",
                section="Where state lives", requires=("stack_deploys",))
def check_db_pinned(ctx: SwarmContext):
    constraints = ((_spec(ctx, DB)["TaskTemplate"].get("Placement") or {}).get("Constraints") or [])
    if not constraints:
        fail("db has no placement constraint: swarm may start it on any node, away from its volume")
    listed = ctx.cluster.docker(ctx.cluster.manager, "node", "ls", "-q").output.split()
    nodes = json.loads(ctx.cluster.docker(ctx.cluster.manager, "node", "inspect", *listed).output)
    chosen = [n["Description"]["Hostname"] for n in nodes
              if all(_matches(n, c) is not False for c in constraints)]
    if len(chosen) != 1:
        fail(f"db's constraints ({'; '.join(constraints)}) allow {len(chosen)} nodes; expected exactly one")
    mounts = _spec(ctx, DB)["TaskTemplate"]["ContainerSpec"].get("Mounts") or []
    if not any(m.get("Type") == "volume" and m.get("Target") == "/var/lib/postgresql/data" for m in mounts):
        fail("db keeps /var/lib/postgresql/data in no volume")
    running = ctx.running_tasks(DB)
    if running != chosen:
        fail(f"db runs on {', '.join(running) or 'no node'}, not on {chosen[0]}")
    return passed(f"db is pinned to {chosen[0]} ({'; '.join(constraints)}), where its volume lives")


@exercise.check("survives_node_loss", points=2,
                summary="with a worker node stopped, the server is back at its replica count and answering within "
                        "60 s",
                concept="When a node is lost, swarm starts its tasks on the nodes left, if the restart policy "
                        "allows it and the placement rules leave room.",
                problem="When the grader stopped a worker node: {found}.",
                fix="Keep swarm's default restart policy (`condition: any`) so that tasks of a lost node are "
                    "started elsewhere, and leave room for them: 3 nodes, 2 replicas, one per node.",
                section="Losing a node", requires=("stack_deploys",))
def check_survives_node_loss(ctx: SwarmContext):
    cluster, replicas = ctx.cluster, ctx.replicas()
    db_nodes = set(ctx.running_tasks(DB))
    serving = [node for node in ctx.running_tasks(SERVER) if node in cluster.workers]
    # a worker with a server replica and without the database, if there is one (replicated grades the spread)
    candidates = [node for node in serving if node not in db_nodes] or serving or cluster.workers
    lost = candidates[0]
    cluster.stop_node(lost)
    started = time.monotonic()

    def back() -> bool:
        nodes = [n for n in ctx.running_tasks(SERVER) if n != lost]
        up = [n for n in ctx.answering() if n != lost]
        return len(nodes) >= replicas and len(up) >= replicas

    try:
        poll(back, timeout=NODE_LOSS_TIMEOUT, what="the server after losing a node", interval=1.0)
    except WaitFailed:
        nodes = [n for n in ctx.running_tasks(SERVER) if n != lost]
        fail(f"{NODE_LOSS_TIMEOUT:.0f} s after {lost} stopped, {len(nodes)} of {replicas} server replicas run "
             "elsewhere")
    took = time.monotonic() - started
    return passed(f"{lost} stopped; {replicas} replicas answered again after {took:.0f} s", recovered_s=round(took, 1))
