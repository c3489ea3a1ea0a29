"""Grading jobs on many hosts: Celery, with Redis as its broker and result backend.

`make grading-queue` starts a project-owned Redis (scripts/redis.sh: password, bound to the
addresses GENAI_QUEUE_BIND names). Each grading host runs `make grading-worker`: a Celery worker
that owns the host's Docker engine and runs `jobs.grade_job` there, as many jobs at once as its
box bound allows. With GENAI_GRADING_QUEUE=redis://host:port/db, `make autograde` plans as in
local mode, sends each job that has no stored result (its inputs travel in the message), collects
the results into the job store and lets nbgrader consume them: it runs no submission itself.

Delivery is at least once, the results idempotent:
- a task's id is the job key (content hash, exercise, grader version), its result is stored under
  that id: a job delivered twice (a worker died after grading, before acknowledging) returns the
  stored result without starting a box, and each submission reads its job's one result;
- late acknowledgement, one message prefetched: a worker killed mid-job never acknowledged it, and
  Redis hands it to another worker once the visibility timeout (longer than a job may take) passed;
- each grader version has its own queue: a host whose checkout or box image differs never gets a
  job it would grade differently;
- every box a worker starts carries its id (settings.WORKER_LABEL): a worker removes the boxes and
  work folders of the dead workers of its host when it starts and before each job, and puts the jobs
  they took back in the queue at once (`hand_back`); the visibility timeout remains for a host
  that died with its workers.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from course.instructor import jobs, settings
from course.instructor.errors import InstructorError

QUEUE_ENV = "GENAI_GRADING_QUEUE"            # redis://host:port/db; unset: local mode
PASSWORD_ENV = "GENAI_GRADING_QUEUE_PASSWORD"  # else the password file scripts/redis.sh wrote
QUEUE_DIR_ENV = "GENAI_QUEUE_DIR"            # the queue's folder (as in scripts/redis.sh)
VISIBILITY_ENV = "GENAI_GRADING_VISIBILITY_TIMEOUT"
TASK = "genai.grade_job"
MAX_MESSAGE_BYTES = 64 << 20                 # one job's inputs, compressed
POLL_S = 0.5                                 # how often the instructor looks at the results


class QueueError(InstructorError):
    """The grading queue cannot be used as configured."""


def configured() -> bool:
    return bool(os.environ.get(QUEUE_ENV))


def queue_dir() -> Path:
    return Path(os.environ.get(QUEUE_DIR_ENV) or settings.REPO_ROOT / ".state" / "redis")


def broker_url() -> str:
    """The queue's URL with its password (from the URL, GENAI_GRADING_QUEUE_PASSWORD, or the file
    scripts/redis.sh generated); never printed: see `shown()`."""
    url = os.environ.get(QUEUE_ENV, "")
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise QueueError(f"{QUEUE_ENV}={shown(url)!r}: use redis://HOST:PORT/DB (see docs/instructor.md)")
    if parts.password:
        return url
    password = os.environ.get(PASSWORD_ENV)
    secret = queue_dir() / "password"
    if not password and secret.is_file():
        password = secret.read_text().strip()
    if not password:
        raise QueueError(f"no password for the grading queue: set {PASSWORD_ENV}, or copy the instructor's "
                         f"{secret.relative_to(settings.REPO_ROOT) if secret.is_relative_to(settings.REPO_ROOT) else secret}"
                         " to this host (docs/instructor.md, adding a grading host)")
    netloc = f":{quote(password, safe='')}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def shown(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f":***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def job_time_limit(limits: settings.BoxLimits | None = None) -> float:
    """The longest a job may take: a box's start and image loads, then the longer of its two boxes."""
    limits = limits or settings.BoxLimits.from_env()
    return limits.start_timeout + 600 + max(limits.notebook_timeout, limits.grading_timeout)


def visibility_timeout(limits: settings.BoxLimits | None = None) -> float:
    """How long an unacknowledged job waits before Redis hands it to another worker: longer than a
    job may take, so that a slow job is not graded twice while its worker lives."""
    value = os.environ.get(VISIBILITY_ENV)
    if value:
        try:
            seconds = float(value)
        except ValueError:
            seconds = 0
        if seconds <= 0:
            raise QueueError(f"{VISIBILITY_ENV}={value!r}: a number of seconds above 0")
        return seconds
    return job_time_limit(limits) + 300


def queue_name() -> str:
    return f"grading-{jobs.grader_version()}"


def make_app():
    from celery import Celery  # type: ignore[import-untyped]

    url = broker_url()
    app = Celery("genai-grading", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": visibility_timeout()},
        broker_connection_retry_on_startup=True,
        task_serializer="json", result_serializer="json", accept_content=["json"],
        result_expires=14 * 24 * 3600,
        task_time_limit=job_time_limit(),
    )
    app.task(name=TASK, bind=True)(_grade_task)
    return app


# -- a job as a message ----------------------------------------------------------------------------
def pack(job_dir: Path) -> dict[str, Any]:
    """A planned job's inputs (spec, notebook, files) as a message."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ("spec.json", "notebook.json", "files"):
            tar.add(job_dir / name, arcname=name)
    data = buffer.getvalue()
    if len(data) > MAX_MESSAGE_BYTES:
        raise QueueError(f"job {job_dir.name}: its files take {len(data) >> 20} MiB compressed, more than the "
                         f"{MAX_MESSAGE_BYTES >> 20} MiB a grading message carries")
    spec = json.loads((job_dir / "spec.json").read_text())
    return {"key": spec["key"], "exercise": spec["exercise"], "grader_version": spec["grader_version"],
            "inputs": base64.b64encode(data).decode()}


def unpack(payload: dict[str, Any], dest: Path) -> Path:
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(payload["inputs"])), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")  # no links out, no absolute paths, no devices
    return dest


# -- the worker side -----------------------------------------------------------------------------
def _start_time(pid: int) -> str:
    """A process's start time (clock ticks since boot): with its pid, an id no later process reuses."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[19]


def worker_id(pid: int | None = None) -> str:
    pid = pid or os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def alive(owner: str) -> bool:
    """Whether the worker `owner` still runs; a worker of another host counts as alive (its own
    host's workers judge it)."""
    host, pid, started = (owner.rsplit(":", 2) + ["", ""])[:3]
    if host != socket.gethostname():
        return True
    try:
        return _start_time(int(pid)) == started
    except (OSError, ValueError, IndexError):
        return False


def worker_root() -> Path:
    return settings.course_root() / ".state" / "grading-worker"


def reap(client=None) -> list[str]:
    """Remove the boxes (containers with their volumes, networks) and work folders that dead
    workers of this host left behind; returns what was removed."""
    import docker

    from dockerkit import labels

    own_client = client is None
    client = client or docker.from_env(timeout=120)
    removed: list[str] = []
    try:
        flt = {"label": settings.WORKER_LABEL}
        owners = {c.labels.get(settings.WORKER_LABEL, "") for c in client.containers.list(all=True, filters=flt)}
        owners |= {(n.attrs.get("Labels") or {}).get(settings.WORKER_LABEL, "")
                   for n in client.networks.list(filters=flt)}
        for owner in sorted(o for o in owners if not alive(o)):
            done = labels.reap(client, f"{settings.WORKER_LABEL}={owner}")
            removed += [name for names in done.removed.values() for name in names]
    finally:
        if own_client:
            client.close()
    if worker_root().is_dir():
        for folder in worker_root().iterdir():
            owner = folder.name.replace("+", ":")
            if owner.count(":") == 2 and not alive(owner):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(str(folder))
    return removed


def hand_back(app) -> list[str]:
    """Put back in the queue, now, the jobs that dead workers of this host took and never
    acknowledged (their PROGRESS names the worker), instead of after the visibility timeout.
    Returns their keys. Reads the unacknowledged deliveries where Celery's Redis transport keeps them."""
    handed: list[str] = []
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        with channel.conn_or_acquire() as client:
            for tag, raw in client.hgetall(channel.unacked_key).items():
                try:
                    key = json.loads(raw)[0]["headers"]["id"]  # [message, exchange, routing key]
                except (ValueError, KeyError, IndexError, TypeError):
                    continue  # not a task message of ours
                meta = app.backend.get_task_meta(key)
                info = meta.get("result") if meta.get("status") == "PROGRESS" else None
                owner = info.get("owner") if isinstance(info, dict) else None
                if owner and not alive(owner):
                    channel.qos.restore_by_tag(tag, client)
                    handed.append(key)
    return handed


def _grade_task(task, payload: dict[str, Any]) -> dict[str, Any]:
    key = payload["key"]
    stored = task.backend.get_task_meta(key)
    if _graded(stored):
        return stored["result"]  # delivered again: graded already
    owner = settings.grading_worker() or worker_id()
    node = task.request.hostname or socket.gethostname()

    def progress(phase: str) -> None:
        task.update_state(state="PROGRESS", meta={"phase": phase, "worker": node, "owner": owner})

    progress("started")
    reap()
    hand_back(task.app)
    work = unpack(payload, worker_root() / owner.replace(":", "+") / f"{key}-{uuid.uuid4().hex[:8]}")
    try:
        result = jobs.grade_job(work, on_phase=progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["worker"] = node
    return result


def worker_main(concurrency: int | None = None, announce=print) -> int:
    """`make grading-worker`: grade this grader version's jobs on this host's engine."""
    from course.instructor import boximage

    os.environ[settings.WORKER_ENV] = worker_id()  # the pool's processes inherit it
    app = make_app()
    url = broker_url()
    for gone in reap():
        announce(f"grading-worker: removed {gone} (left by a worker that died)")
    for key in hand_back(app):
        announce(f"grading-worker: job {key[:12]} back in the queue (its worker died before it finished)")
    boximage.ensure_image(announce)
    jobs_at_once = concurrency or max(1, jobs.boxes_in_flight() // 2)
    announce(f"grading-worker: {jobs_at_once} job(s) at once from {shown(url)}, queue {queue_name()}")
    app.worker_main(["worker", f"--concurrency={jobs_at_once}", "--prefetch-multiplier=1", "-Q", queue_name(),
                     "-n", f"grading-{os.getpid()}@%h", "--without-gossip", "--without-mingle", "--loglevel=INFO"])
    return 0


# -- the instructor side ---------------------------------------------------------------------------
class QueueRunner(jobs.JobRunner):
    """JobRunner whose jobs run on the grading workers: sends them, collects their results."""

    def __init__(self, echo=print) -> None:
        super().__init__(boxes=2, echo=echo)
        self.url = broker_url()
        self.app = make_app()

    def where(self) -> str:
        return f"sent to the grading queue {shown(self.url)} ({queue_name()})"

    def workers(self) -> dict[str, list[str]]:
        """Each worker that answers, with the queues it takes jobs from."""
        try:
            answers = self.app.control.inspect(timeout=3.0).active_queues() or {}
        except Exception as exc:  # the broker is down or refuses the password
            raise QueueError(f"the grading queue {shown(self.url)} does not answer: "
                             f"{type(exc).__name__}: {exc}".replace(self.url, shown(self.url))) from None
        return {node: [q["name"] for q in queues] for node, queues in answers.items()}

    def _execute(self, pending: list[jobs.JobState]) -> None:
        workers = self.workers()
        if not any(queue_name() in queues for queues in workers.values()):
            others = ", ".join(f"{node} ({', '.join(q)})" for node, q in sorted(workers.items())) or "none"
            raise QueueError(f"no grading worker takes jobs of this grader version ({queue_name()}); workers "
                             f"that answer: {others}. Start `make grading-worker` on a grading host with this "
                             "checkout (docs/instructor.md)")
        # Results are read from the backend by key (no AsyncResult: it subscribes, and outlives the queue).
        backend = self.app.backend
        for state in pending:
            stored = backend.get_task_meta(state.key)
            if _graded(stored):
                continue  # graded already, by an earlier run
            if stored["status"] in ("FAILURE", "REVOKED"):
                backend.forget(state.key)  # an earlier failure: grade again
            sent = self.app.send_task(TASK, args=[pack(jobs.store_root() / state.key)], task_id=state.key,
                                      queue=queue_name())
            backend.result_consumer.cancel_for(sent.id)
            del sent
        seen: dict[str, str] = {}
        waiting = {s.key: s for s in pending}
        while waiting:
            for key, state in list(waiting.items()):
                meta = backend.get_task_meta(key)
                status, info = meta["status"], meta.get("result")
                if status == "PROGRESS" and isinstance(info, dict):
                    said = f"{info.get('phase')} ({info.get('worker')})"
                    if seen.get(key) != said:
                        seen[key] = said
                        with self._lock:
                            state.state = "running"
                        self._progress(state, said)
                elif status in ("SUCCESS", "FAILURE", "REVOKED"):
                    if status == "SUCCESS":
                        data = dict(info)
                    else:
                        data = {"key": key, "infrastructure_error": f"on the grading worker: {info!r}"}
                    del waiting[key]
                    self._finish(state, data)
            if waiting:
                time.sleep(POLL_S)


def _graded(meta: dict[str, Any]) -> bool:
    """A stored result of a job that was graded (not a failure of the machinery)."""
    return meta.get("status") == "SUCCESS" and "infrastructure_error" not in (meta.get("result") or {})
