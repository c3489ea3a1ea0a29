"""Grading a class: submissions per hour through the grading jobs `make autograde` runs
(course/instructor/jobs.py), one job at a time vs N at once, the same submissions in one run.

The submissions: the reference and the untouched starter of exercises 01 and 02 (four distinct
jobs, each executed in one box and cross-checked in another). Each measurement starts from an
empty job store, so no result is reused. GENAI_BENCH_CLASS_JOBS sets N (default 2).

Then the same jobs through the grading queue (course/instructor/taskqueue.py: a project-owned
Redis, two `python -m course.instructor worker --jobs 1` processes on this machine, each taking
one job at a time), as `make autograde` sends them to grading hosts.

Each mode's rows include the share of the machine's CPU it kept busy: one job at a time that keeps
a share B busy leaves room for at most 1/B times its rate here, whatever the concurrency.

The last line printed reads `class: <R>x serial at concurrency <N>; two workers <W>x serial`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXERCISES = ("01-first-image", "02-storage")
GOAL_RATIO = 2.0
SUMMARY: list[str] = []


def _plan_class(root: Path) -> list[dict[str, str]]:
    """Plan the jobs of the class into the job store under `root` (GENAI_COURSE_ROOT)."""
    import nbformat

    from course.instructor import jobs
    from course.instructor.preprocessors import runnable_copy
    from grader.workspace import materialize

    rows = []
    for exercise in EXERCISES:
        for who, with_solution in (("reference", True), ("starter", False)):
            folder = materialize(exercise, root / "submissions" / who / exercise, with_solution=with_solution)
            notebook = next(folder.glob("*.ipynb"))
            runnable = nbformat.writes(runnable_copy(nbformat.read(notebook, as_version=4)))
            key = jobs.plan(runnable, folder, who, exercise)
            rows.append({"student": who, "exercise": exercise, "key": key})
    return rows


@contextlib.contextmanager
def _environment(**values: str):
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _two_workers(tmp: Path):
    """A Redis of its own and two grading workers on this machine, stopped afterwards."""
    from course.instructor import jobs, settings, taskqueue
    from dockerkit.net import free_port
    from dockerkit.wait import poll

    port = str(free_port())
    env = {taskqueue.QUEUE_DIR_ENV: str(tmp / "queue"), "GENAI_QUEUE_PORT": port,
           taskqueue.QUEUE_ENV: f"redis://127.0.0.1:{port}/0"}
    redis_sh = str(settings.REPO_ROOT / "scripts" / "redis.sh")
    workers: list[subprocess.Popen] = []
    with _environment(**env):
        subprocess.run(["bash", redis_sh, "start"], check=True)
        try:
            jobs.grader_version()  # now, as the workers compute it: the version of every job planned here
            for n in (1, 2):
                with open(tmp / f"worker-{n}.log", "w") as log:
                    workers.append(subprocess.Popen(
                        [sys.executable, "-m", "course.instructor", "worker", "--jobs", "1"], cwd=settings.REPO_ROOT,
                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            runner = taskqueue.QueueRunner(echo=lambda line: print(f"  {line}", flush=True))
            poll(lambda: sum(taskqueue.queue_name() in q for q in runner.workers().values()) >= 2, timeout=300,
                 interval=1.0, what="two grading workers",
                 stopped=lambda: next((f"a worker exited: {(tmp / f'worker-{n}.log').read_text()[-2000:]}"
                                       for n, w in enumerate(workers, 1) if w.poll() is not None), None))
            yield runner
        finally:
            for worker in workers:
                if worker.poll() is None:
                    os.killpg(worker.pid, signal.SIGTERM)  # warm shutdown: a running job finishes
                worker.wait(timeout=600)
            subprocess.run(["bash", redis_sh, "stop"], check=False)


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all this machine's cores since boot (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _measure(runner) -> tuple[float, list, float]:
    """Seconds the runner took for the class, its job states, and the share of the machine's CPU
    that was busy meanwhile (1.0: every core, all the time)."""
    from course.instructor.box import JANITOR

    with tempfile.TemporaryDirectory(prefix="genai-bench-class-") as tmp, _environment(GENAI_COURSE_ROOT=tmp):
        try:
            rows = _plan_class(Path(tmp))
            busy0, total0 = _cpu_ticks()
            start = time.monotonic()
            states = runner.run(rows)
            elapsed = time.monotonic() - start
            busy1, total1 = _cpu_ticks()
            JANITOR.drain()
        finally:
            shutil.rmtree(Path(tmp) / ".state", ignore_errors=True)
    failed = [s.error for s in states if s.error]
    if failed:
        raise RuntimeError(f"a grading job failed: {failed[0]}")
    return elapsed, states, (busy1 - busy0) / max(total1 - total0, 1)


def _phase_means(states: list) -> dict[str, float]:
    spans: dict[str, list[float]] = {"box ready": [], "executed": [], "cross-checked": []}
    for s in states:
        p = s.phases
        started = p.get("started")
        if started is None:
            continue
        for name, key in (("box ready", "box_ready"), ("executed", "executed"), ("cross-checked", "cross_checked")):
            if key in p:
                spans[name].append(p[key] - started)
    return {name: statistics.mean(values) for name, values in spans.items() if values}


def run() -> list[dict]:
    from course.instructor import boximage, jobs

    boximage.ensure_image(lambda line: print(line, flush=True))
    n = int(os.environ.get("GENAI_BENCH_CLASS_JOBS") or 2)
    def echo(line: str) -> None:
        print(f"  {line}", flush=True)

    # The workers start first: they take the jobs of the grader version this run plans with.
    with tempfile.TemporaryDirectory(prefix="genai-bench-queue-") as tmp, _two_workers(Path(tmp)) as queue:
        serial_s, serial_states, serial_busy = _measure(jobs.JobRunner(2, echo=echo))  # one job at a time
        parallel_s, parallel_states, parallel_busy = _measure(jobs.JobRunner(2 * n, echo=echo))  # N at once
        queued_s, queued_states, queued_busy = _measure(queue)  # two workers, one job at a time each
    count = len(serial_states)
    serial_rate, parallel_rate = count * 3600 / serial_s, count * 3600 / parallel_s
    ratio = parallel_rate / serial_rate
    workers_ratio = serial_s / queued_s
    rows: list[dict] = [
        {"name": f"submissions/hour, concurrency 1 ({count} jobs, {serial_s:.0f} s)", "value": serial_rate,
         "unit": "/h", "goal": "", "met": None},
        {"name": f"submissions/hour, concurrency {n} ({count} jobs, {parallel_s:.0f} s)", "value": parallel_rate,
         "unit": "/h", "goal": "", "met": None},
        {"name": f"ratio, concurrency {n} vs 1", "value": ratio, "unit": "x",
         "goal": f">= {GOAL_RATIO:g}x", "met": ratio >= GOAL_RATIO},
        {"name": f"submissions/hour, two workers through the queue ({count} jobs, {queued_s:.0f} s)",
         "value": count * 3600 / queued_s, "unit": "/h", "goal": "", "met": None},
        {"name": "ratio, two workers vs concurrency 1", "value": workers_ratio, "unit": "x", "goal": "",
         "met": None},
    ]
    cores = os.cpu_count() or 1
    for label, busy in (("concurrency 1", serial_busy), (f"concurrency {n}", parallel_busy),
                        ("two workers", queued_busy)):
        rows.append({"name": f"{label}: CPU busy, share of this machine's {cores} cores", "value": 100 * busy,
                     "unit": "%", "goal": "", "met": None})
    # What running more jobs at once can give on this machine: the CPU that one job at a time leaves idle.
    rows.append({"name": "ratio ceiling on this machine (1 / CPU busy at concurrency 1)",
                 "value": 1 / max(serial_busy, 0.01), "unit": "x", "goal": "", "met": None})
    for label, states in (("concurrency 1", serial_states), (f"concurrency {n}", parallel_states),
                          ("two workers", queued_states)):
        for phase, mean in _phase_means(states).items():
            rows.append({"name": f"{label}: mean s from job start to {phase}", "value": mean, "unit": "s",
                         "goal": "", "met": None})
    SUMMARY[:] = [f"class: {ratio:.2f}x serial at concurrency {n}; two workers {workers_ratio:.2f}x serial"]
    return rows


def summary() -> str:
    return SUMMARY[0] if SUMMARY else "class: not measured (see the error above)"
