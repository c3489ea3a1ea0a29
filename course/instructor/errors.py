"""The instructor workflow's exceptions, rooted in one base class."""

from __future__ import annotations


class InstructorError(Exception):
    """Base class of everything the instructor tooling raises on purpose."""


class BoxImageError(InstructorError):
    """The grading box image cannot be staged or built."""


class BoxError(InstructorError):
    """A grading box did not start, or its inner engine never answered."""


class BoxTimeout(BoxError):
    """Work inside a grading box ran past its time limit (the box was removed)."""


class UntrustedOutput(InstructorError):
    """What came back from a box is not what was asked for (malformed, oversized, tampered)."""
