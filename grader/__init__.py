"""The course's grader: builds, runs and inspects a learner's work with docker-py and
explains every lost point. `python -m grader --help` for the command line."""

from grader.grading import grade
from grader.options import GradingOptions
from grader.registry import all_exercises
from grader.results import CheckResult, ExerciseReport, Status

__all__ = ["CheckResult", "ExerciseReport", "GradingOptions", "Status", "all_exercises", "grade"]
