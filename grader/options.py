"""Where things are, and the limits a grading runs under (all in one place).

Every limit can be set from the environment (seconds), so that tests make a
hanging build or container fail in seconds and a slow machine can allow more.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dockerkit.labels import MANAGED_LABEL as MANAGED_LABEL
from dockerkit.labels import SESSION_LABEL as SESSION_LABEL
from dockerkit.limits import ContainerLimits as Limits

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVICE_DIR = REPO_ROOT / "service"
DEFAULT_MODELS_DIR = REPO_ROOT / "models" / "all-MiniLM-L6-v2"

SERVICE_IMAGE_TAG = "genai-course/service:grader"


def models_dir() -> Path:
    return Path(os.environ.get("GENAI_MODELS_DIR") or DEFAULT_MODELS_DIR).resolve()


def positive_number(name: str, default: float) -> float:
    """A positive number from the environment variable `name`, else `default`; a clear error if bad."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {raw}")
    return value


@dataclass(frozen=True)
class GradingOptions:
    build_timeout: float = 900.0     # one docker build
    start_timeout: float = 60.0      # a container until it answers
    script_timeout: float = 120.0    # one run of the learner's run.sh
    http_timeout: float = 10.0       # one HTTP request
    lock_timeout: float = 900.0      # waiting for another grading that uses the same fixed names
    no_cache: bool = False           # cold builds (benchmarks); a rebuild check still uses the cache
    service_image: str | None = None  # a prebuilt service image instead of building service/
    reference_image: bool = False    # run.sh gets the reference image, never the learner's own (tests, instructors)
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_env(cls, **overrides: Any) -> GradingOptions:
        options = cls(
            build_timeout=positive_number("GENAI_GRADER_BUILD_TIMEOUT", cls.build_timeout),
            start_timeout=positive_number("GENAI_GRADER_START_TIMEOUT", cls.start_timeout),
            script_timeout=positive_number("GENAI_GRADER_SCRIPT_TIMEOUT", cls.script_timeout),
            http_timeout=positive_number("GENAI_GRADER_HTTP_TIMEOUT", cls.http_timeout),
            lock_timeout=positive_number("GENAI_GRADER_LOCK_TIMEOUT", cls.lock_timeout),
            service_image=os.environ.get("GENAI_SERVICE_IMAGE") or None,
            reference_image=os.environ.get("GENAI_GRADER_REFERENCE_IMAGE", "") not in ("", "0"),
        )
        return replace(options, **overrides)
