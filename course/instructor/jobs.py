"""Grading jobs: the expensive part of autograding one submission, as a job with a stored result.

A job executes a submission's notebook in one box and grades its files in another (the trusted
cross-check), at the same time. Its identity is the submission's content (the notebook as the box
runs it and the files it gets), the exercise and the grader version (the trusted code the boxes
get and the box image): two identical submissions (untouched starters) are one job, graded once
per grader version, and its result is reused. The result is data (the executed notebook, the
trusted report, the time of each phase), stored under `.state/grading-jobs/<key>/result.json`.

`make autograde` (workflow.autograde) runs in three passes:

1. plan: nbgrader autograde with GENAI_AUTOGRADE_PHASE=plan. BoxExecute sees each submission
   exactly as nbgrader prepared it (locked cells restored, files restored), writes its job's
   inputs to the store and stops that submission (nbgrader removes its autograded folder);
2. run: every job without a result runs, with a bounded number of boxes in flight (JobRunner);
3. grade: nbgrader autograde with GENAI_AUTOGRADE_PHASE=grade. BoxExecute and TrustedCrossCheck
   read the stored results; no box starts, no submission code runs.

`grade_job` is a pure function of its inputs (folder in, result data out): a task queue's worker
can call it as it is.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from course.instructor import settings
from course.instructor.errors import InstructorError

PHASE_ENV = "GENAI_AUTOGRADE_PHASE"     # plan | grade (unset: nbgrader's own serial path)
RUN_ENV = "GENAI_AUTOGRADE_RUN"         # one id per `make autograde`: which submissions it planned
BOXES_ENV = "GENAI_GRADING_BOXES"       # boxes in flight at once
COURSE_FILES = ("dockerkit", "grader", "course", "course.yaml", "service")  # as sandbox.COURSE_FILES
_SKIP = ("__pycache__", ".ipynb_checkpoints", ".pytest_cache")
NBGRADER_FILES = ("timestamp.txt", "submission_secret.txt")


class Planned(Exception):
    """Raised by BoxExecute in the plan pass: the submission's job is written, nothing graded."""


class JobMissing(InstructorError):
    """A planned job has no result: the grading machinery failed, not the learner."""


def store_root() -> Path:
    return settings.course_root() / ".state" / "grading-jobs"


def _hash_tree(digest: Any, root: Path, exclude: Callable[[str], bool]) -> None:
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if any(part in _SKIP for part in rel.split("/")) or exclude(rel) or path.is_symlink():
            continue
        if path.is_file():
            digest.update(f"{rel}\0{path.stat().st_mode & 0o111 != 0}\0{path.stat().st_size}\0".encode())
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)


@lru_cache(maxsize=1)
def grader_version() -> str:
    """The trusted code the boxes get and the box image: what a job's result depends on."""
    from course.instructor import boximage

    digest = hashlib.sha256(boximage.image_tag().encode())
    for rel in COURSE_FILES:
        source = settings.REPO_ROOT / rel
        digest.update(f"\0{rel}\0".encode())
        if source.is_dir():
            _hash_tree(digest, source, lambda rel: rel.endswith(".pyc"))
        elif source.is_file():
            digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def not_sent(rel: str) -> bool:
    """What never goes into a job's box (as sandbox._not_submitted): notebooks, caches, and
    nbgrader's own files (when it was submitted, the exchange's secret: not the learner's work)."""
    name = rel.rsplit("/", 1)[-1]
    return name.endswith(".ipynb") or name in _SKIP or rel in NBGRADER_FILES


def content_hash(notebook_json: str, folder: Path) -> str:
    digest = hashlib.sha256(json.dumps(json.loads(notebook_json), sort_keys=True).encode())
    _hash_tree(digest, folder, not_sent)
    return digest.hexdigest()


def job_key(notebook_json: str, folder: Path, exercise: str, content: str | None = None) -> str:
    identity = f"{content or content_hash(notebook_json, folder)}:{exercise}:{grader_version()}"
    return hashlib.sha256(identity.encode()).hexdigest()[:24]


# -- the store -----------------------------------------------------------------------------------
def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(text)
    os.replace(tmp, path)


def plan(notebook_json: str, folder: Path, student: str, exercise: str) -> str:
    """Write a submission's job inputs to the store (once per key) and record who planned it."""
    content = content_hash(notebook_json, folder)
    key = job_key(notebook_json, folder, exercise, content)
    job = store_root() / key
    if not (job / "spec.json").is_file():
        staging = store_root() / f".{key}.{uuid.uuid4().hex[:8]}"
        (staging / "files").mkdir(parents=True)
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink() or any(part in _SKIP for part in rel.split("/")) or not_sent(rel):
                continue
            if path.is_dir():
                (staging / "files" / rel).mkdir(parents=True, exist_ok=True)
            elif path.is_file():
                shutil.copy2(path, staging / "files" / rel)
        (staging / "notebook.json").write_text(notebook_json)
        _write_atomic(staging / "spec.json", json.dumps({"key": key, "exercise": exercise, "student": student,
                                                         "grader_version": grader_version()}))
        try:
            os.replace(staging, job)
        except OSError:  # planned meanwhile by an identical submission
            shutil.rmtree(staging, ignore_errors=True)
    run = os.environ.get(RUN_ENV)
    if run:
        runs = store_root() / "runs" / run
        runs.mkdir(parents=True, exist_ok=True)
        _write_atomic(runs / f"{student}+{exercise}.json", json.dumps({"student": student, "exercise": exercise,
                                                                        "key": key, "content": content}))
    return key


def planned_key(notebook_json: str, folder: Path, student: str, exercise: str) -> str:
    """The grade pass: the job this run planned for the submission, if its content is still the same
    (the grader version was fixed when the run planned it)."""
    path = store_root() / "runs" / os.environ.get(RUN_ENV, "-") / f"{student}+{exercise}.json"
    if not path.is_file():
        raise JobMissing(f"{student}/{exercise} was not planned by this `make autograde` run")
    record = json.loads(path.read_text())
    if record["content"] != content_hash(notebook_json, folder):
        raise JobMissing(f"{student}/{exercise} changed between planning and grading; run `make autograde` again")
    return str(record["key"])


def planned(run: str) -> list[dict[str, str]]:
    runs = store_root() / "runs" / run
    return [json.loads(p.read_text()) for p in sorted(runs.glob("*.json"))] if runs.is_dir() else []


def load_result(key: str) -> dict[str, Any] | None:
    path = store_root() / key / "result.json"
    return json.loads(path.read_text()) if path.is_file() else None


# -- one job ---------------------------------------------------------------------------------------
def grade_job(job_dir: Path, *, limits: settings.BoxLimits | None = None,
              on_phase: Callable[[str], None] = lambda phase: None,
              announce: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Execute the job's notebook in one box and grade its files in another, at the same time.

    Inputs: `job_dir` (spec.json, notebook.json, files/). Output: the result as data. Whatever the
    submission does counts in the result; a failure of the machinery is `infrastructure_error`."""
    import json as _json

    import nbformat

    from course.instructor import sandbox
    from course.instructor.errors import BoxTimeout, UntrustedOutput

    spec = _json.loads((job_dir / "spec.json").read_text())
    notebook_json = (job_dir / "notebook.json").read_text()
    label = f"job-{spec['key'][:8]}"
    limits = limits or settings.BoxLimits.from_env()
    phases: dict[str, float] = {"started": time.time()}
    ready_once = threading.Lock()

    def ready() -> None:
        with ready_once:
            if "box_ready" not in phases:
                phases["box_ready"] = time.time()
                on_phase("box ready")

    needs = sandbox.exercise_needs(spec["exercise"], announce)
    submission = sandbox.Submission(label, spec["exercise"], job_dir / "files")
    result: dict[str, Any] = {"key": spec["key"], "exercise": spec["exercise"],
                              "grader_version": spec["grader_version"]}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="trusted") as pool:
        trusted_future = pool.submit(sandbox.trusted_grade, sandbox.Submission(label, spec["exercise"],
                                                                               job_dir / "files"),
                                     limits=limits, needs=needs, announce=announce)
        try:
            executed = sandbox.execute_notebook(notebook_json, submission, limits=limits, needs=needs,
                                                announce=announce, on_ready=ready)
            result["executed"] = {"notebook_json": executed.notebook_json, "problem": executed.problem,
                                  "duration_s": executed.duration_s, "skipped": list(executed.skipped)}
        except (BoxTimeout, UntrustedOutput, nbformat.ValidationError, _json.JSONDecodeError) as exc:
            result["executed"] = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}  # the submission's doing
        except Exception as exc:
            result["infrastructure_error"] = f"executing the notebook: {type(exc).__name__}: {exc}"
        phases["executed"] = time.time()
        on_phase("executed")
        trusted = trusted_future.result()
    phases["cross_checked"] = time.time()
    on_phase("cross-checked")
    result["trusted"] = {"report": trusted.report, "error": trusted.error, "duration_s": trusted.duration_s,
                         "notes": list(trusted.notes)}
    result["phases"] = phases
    return result


def trusted_from(result: dict[str, Any]):
    from course.instructor import sandbox

    data = result["trusted"]
    return sandbox.TrustedGrade(data["report"], data["error"], data["duration_s"], tuple(data.get("notes", ())))


# -- many jobs ---------------------------------------------------------------------------------------
def default_boxes(limits: settings.BoxLimits | None = None) -> int:
    """Boxes in flight: what the host's cores and memory allow for the box limits. A box mostly
    waits (engine start, image loads, builds' downloads), so two boxes share a core's worth of
    its CPU limit; memory is counted at the box's full limit, its disk (tmpfs) included."""
    limits = limits or settings.BoxLimits.from_env()
    by_cpu = int(2 * (os.cpu_count() or 1) / max(limits.cpus, 0.5))
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        available = limits.memory_bytes * 2
    by_memory = int(available // limits.memory_bytes)
    return max(2, min(by_cpu, by_memory))


def boxes_in_flight() -> int:
    value = os.environ.get(BOXES_ENV)
    if value:
        if not value.isdigit() or int(value) < 1:
            raise InstructorError(f"{BOXES_ENV}={value!r}: a whole number of boxes, at least 1")
        return int(value)
    return default_boxes()


@dataclass
class JobState:
    key: str
    exercise: str
    submissions: list[str]           # student ids that share it
    reused: bool = False              # a stored result of this grader version
    state: str = "queued"
    phases: dict[str, float] = field(default_factory=dict)
    error: str | None = None


class JobRunner:
    """Runs jobs with at most `boxes` grading boxes in flight (a job uses two: execution and
    cross-check, so `boxes // 2` jobs at once, at least one). Prints progress on every change."""

    def __init__(self, boxes: int, echo: Callable[[str], None] | None = print,
                 limits: settings.BoxLimits | None = None) -> None:
        self.jobs_at_once = max(1, boxes // 2)
        self.boxes = boxes
        self.echo = echo
        self.limits = limits
        self._lock = threading.Lock()
        self.states: dict[str, JobState] = {}

    def _progress(self, state: JobState, what: str) -> None:
        with self._lock:
            counts = {s: sum(1 for j in self.states.values() if j.state == s) for s in ("done", "running", "queued")}
            if self.echo:
                who = ", ".join(state.submissions)
                self.echo(f"[done {counts['done']} / running {counts['running']} / queued {counts['queued']}] "
                          f"{state.exercise} {who}: {what}")

    def _run_one(self, state: JobState) -> None:
        with self._lock:
            state.state = "running"
        self._progress(state, "started")

        def phase(name: str) -> None:
            self._progress(state, name)

        try:
            result = grade_job(store_root() / state.key, limits=self.limits, on_phase=phase)
        except Exception as exc:  # the machinery's failure: the grade pass says so for each submission
            result = {"key": state.key, "infrastructure_error": f"{type(exc).__name__}: {exc}"}
        self._finish(state, result)

    def _finish(self, state: JobState, result: dict[str, Any]) -> None:
        """Store a job's result (a failure of the machinery is not stored as one) and say so."""
        job_dir = store_root() / state.key
        result.setdefault("phases", {})["queued"] = state.phases["queued"]
        if "infrastructure_error" in result:
            state.error = result["infrastructure_error"]
            # not stored as a result: the next `make autograde` runs it again
            _write_atomic(job_dir / "failure.json", json.dumps(result))
        else:
            _write_atomic(job_dir / "result.json", json.dumps(result))
        with self._lock:
            state.phases = result["phases"]
            state.state = "done"
        self._progress(state, f"failed: {state.error}" if state.error else "done")

    def run(self, planned_rows: list[dict[str, str]]) -> list[JobState]:
        now = time.time()
        for row in planned_rows:
            state = self.states.get(row["key"])
            if state is None:
                state = self.states[row["key"]] = JobState(row["key"], row["exercise"], [])
                state.phases["queued"] = now
                stored = load_result(row["key"])
                if stored is not None:
                    state.reused, state.state, state.phases = True, "done", stored.get("phases", {})
            state.submissions.append(row["student"])
        pending = [s for s in self.states.values() if not s.reused]
        if self.echo:
            shared = sum(len(s.submissions) for s in self.states.values()) - len(self.states)
            earlier = sum(1 for s in self.states.values() if s.reused)
            self.echo(f"autograde: {len(planned_rows)} submission(s), {len(self.states)} job(s) "
                      f"({shared} identical submission(s) share a job, {earlier} result(s) reused from an "
                      f"earlier grading); {self.where()}")
        if pending:
            self._execute(pending)
        return list(self.states.values())

    def where(self) -> str:
        return f"{self.boxes} boxes in flight, {self.jobs_at_once} job(s) at once"

    def _execute(self, pending: list[JobState]) -> None:
        with ThreadPoolExecutor(max_workers=self.jobs_at_once, thread_name_prefix="grading-job") as pool:
            list(pool.map(self._run_one, pending))


def phase_table(states: list[JobState]) -> list[str]:
    """Per job: the time of each phase from when it was queued (s), and who shares it."""
    lines = [f"  {'exercise':<18} {'job':<10} {'queued':>7} {'box ready':>9} {'executed':>9} "
             f"{'cross-checked':>13}  submissions"]
    for s in sorted(states, key=lambda s: (s.exercise, s.submissions)):
        p = s.phases
        start = p.get("queued", 0.0)

        def at(name: str, p=p, start=start) -> str:
            return f"{p[name] - start:.1f}" if name in p and start else "-"
        note = "reused (graded earlier, same content and grader)" if s.reused else ""
        if len(s.submissions) > 1:
            note = (note + "; " if note else "") + f"one job for {len(s.submissions)} identical submissions"
        if s.error:
            note = f"FAILED (not the learner's fault): {s.error}"
        lines.append(f"  {s.exercise:<18} {s.key[:8]:<10} {'0.0' if not s.reused else '-':>7} {at('box_ready'):>9} "
                     f"{at('executed'):>9} {at('cross_checked'):>13}  {', '.join(sorted(s.submissions))}"
                     + (f"  ({note})" if note else ""))
    return lines
