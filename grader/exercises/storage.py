"""02-storage: run.sh starts the service with a named volume, a tmpfs and a read-only model."""

from __future__ import annotations

import os
import re

from grader.errors import CheckFailed
from grader.exercises._common import ScriptContext, memoized, published_ports_are_local
from grader.registry import Exercise, fail, passed, register
from grader.wait import ProbeError, http


exercise = register(Exercise("02-storage"))
(CONTAINER,), (VOLUME,) = exercise.fixed_names.containers, exercise.fixed_names.volumes  # from course.yaml

_ANONYMOUS = re.compile(r"^[0-9a-f]{64}$")


class StorageContext(ScriptContext):
    @memoized
    def started(self) -> dict:
        """genai-storage as run.sh left it, once it answers; its inspect data is kept as it was then."""
        if not self.first_run.ok:
            fail(self.first_run.describe(), script_exit=self.first_run.exit_code,
                 script_output=self.first_run.tail())
        container = self.container(CONTAINER)
        took = self.wait_for_health(container, CONTAINER)
        container.reload()
        return {"attrs": container.attrs, "ready_after_s": took}

    def mount(self, destination: str) -> dict | None:
        for m in self.started["attrs"].get("Mounts") or []:
            if m.get("Destination") == destination:
                return m
        return None


exercise.context(StorageContext)


def _describe_mount(m: dict | None) -> str:
    if m is None:
        return "not a mount (it lives in the container's writable layer, which goes with the container)"
    kind = m.get("Type")
    if kind == "volume":
        name = m.get("Name") or ""
        return f"an anonymous volume ({name[:12]}...)" if _ANONYMOUS.match(name) else f"the volume {name}"
    if kind == "bind":
        return f"a bind mount of {m.get('Source')}"
    return f"a {kind} mount"


@exercise.check("runs", points=2, summary="run.sh exits 0 and genai-storage answers GET /health",
                concept="run.sh starts the service detached from the image it is given, published on the port it "
                        "is given; every other check inspects the container it leaves running.",
                problem=("run.sh exited with {script_exit}; its last output: {script_output}.",
                         "When the grader ran your run.sh: {found}."),
                fix=f"Start the service detached (`docker run -d --name {CONTAINER} ...`) from \"$IMAGE\" and "
                    f"publish port 8000 on 127.0.0.1:\"$PORT\"; run `bash run.sh` yourself and read "
                    f"`docker logs {CONTAINER}`.",
                section="Exercise")
def check_runs(ctx: StorageContext):
    started = ctx.started
    return passed(f"run.sh exited 0 and {CONTAINER} answered GET /health after {started['ready_after_s']:.1f} s",
                  ready_after_s=round(started["ready_after_s"], 2))


@exercise.check("named_volume", points=2, summary="/data is the named volume genai-data",
                concept="Data that must outlive a container lives on a volume; a named volume is the one you can "
                        "find again, back up and hand to the next container.",
                problem="In your container, {found}: the next container run.sh starts will not find its data there.",
                fix=f"Mount the named volume at /data: `--mount type=volume,source={VOLUME},target=/data` (or "
                    f"`-v {VOLUME}:/data`): a named volume outlives containers and is easy to find, back up "
                    f"and reuse; an anonymous one is orphaned when its container goes.",
                section="Named volumes", requires=("runs",))
def check_named_volume(ctx: StorageContext):
    m = ctx.mount("/data")
    if m is not None and m.get("Type") == "volume" and m.get("Name") == VOLUME:
        return passed(f"/data is the named volume {VOLUME}", mount=m)
    fail(f"/data is {_describe_mount(m)}; expected the named volume {VOLUME}", mount=m)


@exercise.check("data_persists", points=2,
                summary="a document stored through the API survives removing the container and running "
                        "run.sh again",
                concept="A named volume keeps its data when the container goes; running the script again must "
                        "reuse the same volume, not a new or emptied one.",
                problem=("Document {document_id}, stored before your container was removed, was gone after run.sh"
                         " ran again (answer {status}): the new container did not see the same data.",
                         "When the grader removed the container and ran your run.sh again: {found}."),
                fix=f"Keep the data on the named volume and let run.sh reuse it: never remove or recreate "
                    f"{VOLUME} in run.sh (`docker volume create` is harmless when it exists).",
                section="Named volumes", requires=("runs",))
def check_data_persists(ctx: StorageContext):
    base = f"http://127.0.0.1:{ctx.port}"
    text = f"grader persistence probe {ctx.session.id[:12]}"
    try:
        stored = http("POST", f"{base}/documents", timeout=ctx.options.http_timeout, payload={"text": text})
        doc_id = stored.json().get("id") if stored.status in (200, 201) else None
    except (ProbeError, ValueError, AttributeError) as exc:
        fail(f"POST /documents did not answer: {exc}")
    if not doc_id:
        fail(f"POST /documents answered {stored.status} without an id: {stored.body[:200]!r}")
    ctx.client.containers.get(CONTAINER).remove(force=True)  # volumes stay: v=False
    again = ctx.run_script()
    ctx.runs.append(again)
    if not again.ok:
        fail(f"after removing {CONTAINER}, running run.sh again failed: {again.describe()}",
             hint="run.sh must work a second time, when the volume already exists.")
    try:
        ctx.wait_for_health(ctx.container(CONTAINER), CONTAINER)
    except CheckFailed as failure:
        fail(f"after removing {CONTAINER} and running run.sh again: {failure.message}")
    try:
        answer = http("GET", f"{base}/documents/{doc_id}", timeout=ctx.options.http_timeout)
    except ProbeError as exc:
        fail(f"GET /documents/{doc_id} did not answer: {exc}")
    if answer.status == 200 and answer.json().get("text") == text:
        return passed(f"document {doc_id} was still there after removing {CONTAINER} and running run.sh again",
                      document_id=doc_id)
    fail(f"document {doc_id}, stored before {CONTAINER} was removed, is gone after running run.sh again "
         f"(GET /documents/{doc_id} answered {answer.status}); expected it to survive on the volume",
         document_id=doc_id, status=answer.status)


@exercise.check("tmpfs_cache", points=1, summary="/cache is a tmpfs mount",
                concept="Scratch files that must never reach the disk belong in memory: a tmpfs mount lives and "
                        "dies with the container.",
                problem="In your container, {found}: what the service writes there lands on disk.",
                fix="Add `--tmpfs /cache`: scratch files then live in memory, vanish with the container and "
                    "never reach the disk.",
                section="tmpfs: memory only", requires=("runs",))
def check_tmpfs_cache(ctx: StorageContext):
    attrs = ctx.started["attrs"]
    tmpfs = (attrs.get("HostConfig") or {}).get("Tmpfs") or {}
    m = ctx.mount("/cache")
    if "/cache" in tmpfs or (m is not None and m.get("Type") == "tmpfs"):
        return passed("/cache is a tmpfs mount", options=tmpfs.get("/cache", ""))
    fail(f"/cache is {_describe_mount(m)}; expected a tmpfs mount", mount=m)


@exercise.check("models_read_only", points=2, summary="/models is a read-only bind mount of $MODELS_DIR",
                concept="A bind mount shows a host folder inside the container; a service that only reads the "
                        "model should get it read-only, so that no one can change it from inside.",
                problem=("In your container, {found}: the service (or an intruder) could change the model or read"
                         " something else.",
                         "In your container, {found}."),
                fix='Bind-mount the model read-only: `--mount type=bind,source="$MODELS_DIR",target=/models,'
                    'readonly` (or `-v "$MODELS_DIR":/models:ro`): the service only reads it, and a '
                    "compromised service must not be able to swap the model.",
                section="Bind mounts: the host's own files", requires=("runs",))
def check_models_read_only(ctx: StorageContext):
    m = ctx.mount("/models")
    expected_source = os.path.realpath(str(ctx.environment.models_dir))
    if m is None or m.get("Type") != "bind":
        fail(f"/models is {_describe_mount(m)}; expected a read-only bind mount of $MODELS_DIR", mount=m)
    if os.path.realpath(m.get("Source", "")) != expected_source:
        fail(f"/models is a bind mount of {m.get('Source')}; expected $MODELS_DIR ({expected_source})", mount=m)
    if m.get("RW", True):
        fail("/models is a bind mount of $MODELS_DIR, but writable; expected it read-only (readonly or :ro)",
             mount=m)
    return passed(f"/models is a read-only bind mount of {expected_source}", mount=m)


@exercise.check("localhost_only", points=1, summary="every published port is bound to 127.0.0.1",
                concept="A port published without an address is open on every interface of the machine, to the "
                        "whole network; the loopback address keeps it for this machine only.",
                problem=("Your container publishes {exposed}: reachable from other machines.",
                         "In your container, {found}."),
                fix='Publish on the loopback address only: `-p 127.0.0.1:"$PORT":8000`. Without an address, '
                    "Docker opens the port on every interface and its firewall rules bypass the host's.",
                section="Exercise", requires=("runs",))
def check_localhost_only(ctx: StorageContext):
    return published_ports_are_local({CONTAINER: ctx.started["attrs"]})
