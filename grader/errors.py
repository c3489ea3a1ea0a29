"""The grader's exceptions, rooted in one base class.

Two families:
- `CheckFailed`: the learner's work does not do what a check expects. A check
  raises it; the grading records a failed check and goes on.
- `CannotGrade`: grading cannot happen at all (no engine, no model, unknown
  exercise, a name already taken...). The command line exits with status 2 and
  prints `.line`, one sentence that says why and what to do.
"""

from __future__ import annotations

from typing import Any, Mapping

NOT_YOUR_FAULT = "this is not a problem with your work"


class GraderError(Exception):
    """Base class of everything the grader raises on purpose."""


class CheckFailed(GraderError):
    """A check's expectation is not met; `message` says expected vs found."""

    def __init__(self, message: str, evidence: Mapping[str, Any] | None = None,
                 hint: str | None = None, notes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.evidence = dict(evidence or {})
        self.hint = hint    # replaces the check's default hint when the failure calls for another
        self.notes = notes  # appended to the hint (e.g. hadolint's findings)


class CheckSkipped(GraderError):
    """The host lacks what a check needs (e.g. a GPU): the check is skipped and not counted."""

    def __init__(self, message: str, evidence: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.evidence = dict(evidence or {})


class NotReady(CheckFailed):
    """A container did not become ready (exited, or never answered) in time."""


class CannotGrade(GraderError):
    """Grading could not take place; exit status 2."""

    environment_problem = False  # True: the machine, not the learner's work, is at fault

    @property
    def line(self) -> str:
        text = str(self)
        if self.environment_problem and NOT_YOUR_FAULT not in text:
            text = f"{text} ({NOT_YOUR_FAULT})"
        return f"cannot grade: {text}"


class EnvironmentProblem(CannotGrade):
    environment_problem = True


class EngineUnavailable(EnvironmentProblem):
    """No Docker engine answers."""


class ModelMissing(EnvironmentProblem):
    """The exported model directory is not there."""


class ServiceImageUnavailable(EnvironmentProblem):
    """The course's service image could not be found or built."""


class GradingBusy(EnvironmentProblem):
    """Another grading holds the lock for longer than we wait."""


class GraderBug(EnvironmentProblem):
    """An unexpected error inside the grader itself."""


class UnknownExercise(CannotGrade):
    """No exercise with that id."""


class WorkspaceUnreadable(CannotGrade):
    """The workspace folder is missing or cannot be read."""


class ResourceInTheWay(CannotGrade):
    """A fixed name the exercise needs is already taken by something that existed before."""
