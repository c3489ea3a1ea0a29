"""Grading results: plain frozen data. Reporters render them; nothing here prints."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping


class Status(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class CheckResult:
    id: str
    status: Status
    points: float
    max_points: float
    message: str
    hint: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    tiers: tuple[str, ...] = ()  # a failed check's hints: concept, problem found, exact fix (grader.hints)
    shown: int = 0               # how many of them are shown; `hint` is the highest one shown

    def __post_init__(self) -> None:
        object.__setattr__(self, "evidence", _frozen(self.evidence))
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "tiers", tuple(self.tiers))

    @property
    def lost_points(self) -> bool:
        return self.points < self.max_points


@dataclass(frozen=True)
class ExerciseReport:
    exercise: str
    title: str
    workspace: str
    checks: tuple[CheckResult, ...]
    duration_s: float = 0.0
    session_id: str = ""   # the label value of everything the grading created (all removed since)
    cleanup_problems: tuple[str, ...] = ()  # what the grading could not remove afterwards, and why
    notices: tuple[str, ...] = ()  # what the grading used in place of the learner's files, and why

    @property
    def score(self) -> float:
        return float(sum(c.points for c in self.checks))

    @property
    def max_score(self) -> float:
        return float(sum(c.max_points for c in self.checks))

    @property
    def full_marks(self) -> bool:
        # a check skipped because the host lacks something (a GPU) is worth 0 here and not counted
        return all(c.status is Status.PASSED or (c.status is Status.SKIPPED and c.max_points == 0)
                   for c in self.checks)

    def check(self, check_id: str) -> CheckResult:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)
