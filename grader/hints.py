"""Hints in three tiers, and how many of them a learner sees.

Every check declares three tiers of help for a lost point:

1. the concept, ending with a pointer to the lesson section that teaches it;
2. the problem found in this submission, written from the failure's evidence;
3. the exact fix.

The verdict message (expected vs found) is always shown; the tiers decide how much
help comes with it. `grade()` gives every failed check its three texts and shows
tiers 1-2 (deterministic: tests, the grading box and nbgrader's feedback see exactly
that). The learner's entry points (`make grade`, `grader check`, Check my work) call
`reveal()`, which counts the learner's failed attempts at each check of a workspace
in a state file outside the workspace and shows tier 1 at the first, tiers 1-2 at
the second, and all three from the third (`GENAI_HINT_FIX_AFTER`), or all three at
once on request (`--hints all`, `HINTS=all`, Show all hints). A pass resets nothing:
help a learner has reached stays reached if the check fails again.
"""

from __future__ import annotations

import json
import os
import re
import string
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from dockerkit.flock import flock_within
from grader.errors import CannotGrade
from grader.results import CheckResult, ExerciseReport, Status

TIERS = 3
FEEDBACK_TIERS = 2     # what grade() shows, and the most an nbgrader cell ever shows
TIER_NAMES = {1: "the idea", 2: "in your work", 3: "the fix"}
DEFAULT_FIX_AFTER = 3  # the failed attempt from which the exact fix is shown
STATE_VARIABLE = "GENAI_HINT_STATE"
FIX_AFTER_VARIABLE = "GENAI_HINT_FIX_AFTER"
MODES = ("auto", "all")  # auto: by attempts; all: every tier now
_STATE_VERSION = 1
_LOCK_WAIT_S = 5.0


@dataclass(frozen=True)
class Tiers:
    """What a check declares: tier 1 (with its lesson pointer), tier-2 templates, tier 3.

    A tier-2 template names evidence keys in braces (`{unpinned}`), or `{found}`: what the
    failure message says was found (its text before "; expected"). The first template whose
    keys the failure has is used."""
    concept: str
    problem: tuple[str, ...]
    fix: str

    def __post_init__(self) -> None:
        if not (self.concept.strip() and self.fix.strip() and self.problem and all(p.strip() for p in self.problem)):
            raise ValueError("a check needs three non-empty hint tiers (concept, problem, fix)")


def _keys(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _plain(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(v) for v in value]
        more = f" and {len(items) - 5} more" if len(items) > 5 else ""
        return ", ".join(items[:5]) + more if items else "none"
    text = "none" if value is None else str(value)
    return text if len(text) <= 300 else text[:297] + "..."


_STEP_PREFIX = re.compile(r"^#\d+\s+(\d+\.\d+\s+)?")


def build_error(log: str) -> str | None:
    """The line of a BuildKit log that says what went wrong: the step's last output before its ERROR."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if re.search(r"\bERROR\b|^error:|failed to solve", line):
            said = [_STEP_PREFIX.sub("", b) for b in lines[:i] if _STEP_PREFIX.match(b)]
            said = [b for b in said if b and not b.startswith(("[", "DONE", "CACHED", "ERROR"))]
            return said[-1] if said else re.sub(r"^(#\d+\s+)?ERROR:\s*", "", line)
    return None


def _facts(evidence: Mapping[str, Any], message: str) -> dict[str, str]:
    """What a template may name: each evidence key, each key of a mapping as `key_sub`, `found`
    (from the message) and `build_error` (from a build log)."""
    facts = {k: _plain(v) for k, v in evidence.items()}
    for key, value in evidence.items():
        if isinstance(value, Mapping):
            facts.update({f"{key}_{sub}": _plain(v) for sub, v in value.items() if f"{key}_{sub}" not in facts})
    if message.strip():
        facts.setdefault("found", found_part(message))
    log = evidence.get("log_tail")
    error = build_error(log) if isinstance(log, str) else None
    if error:
        facts.setdefault("build_error", error)
    return facts


def found_part(message: str) -> str:
    """What a verdict says was found: its text before "; expected" (its first line)."""
    first = (message.strip().splitlines() or [""])[0]
    return first.split("; expected")[0].strip().rstrip(":;,.")


def problem_text(tiers: Tiers, evidence: Mapping[str, Any], message: str = "", specific: str | None = None,
                 notes: Sequence[str] = ()) -> str:
    """Tier 2 for one failure: the check's template filled from the evidence, what the failure
    itself found (a failure-specific hint, lint findings), or the engine's refusal."""
    parts: list[str] = []
    facts = _facts(evidence, message)
    if "engine_error" in evidence and len(evidence) == 1:
        parts.append(f"The engine refused what your work asks for: {facts['engine_error']}.")
    else:
        for template in tiers.problem:
            names = _keys(template)
            if names <= set(facts):
                parts.append(template.format(**{k: facts[k] for k in names}))
                break
    if specific:
        parts.append(specific)
    parts += list(notes)
    if not parts:  # no template fits this failure's evidence: say what the grader found
        found = "; ".join(f"{k}: {_plain(v)}" for k, v in evidence.items())
        parts.append(f"What the grader found: {found}." if found else tiers.problem[-1])
    return " ".join(parts)


def failure_tiers(tiers: Tiers, evidence: Mapping[str, Any], message: str = "", specific: str | None = None,
                  notes: Sequence[str] = ()) -> tuple[str, str, str]:
    return (tiers.concept, problem_text(tiers, evidence, message, specific, notes), tiers.fix)


def show(result: CheckResult, level: int) -> CheckResult:
    """The result with tiers 1..level shown; `hint` becomes the highest tier shown."""
    if not result.tiers or result.status is not Status.FAILED:
        return result
    level = max(1, min(level, len(result.tiers)))
    return replace(result, shown=level, hint=result.tiers[level - 1])


def shown_tiers(result: CheckResult, most: int = TIERS) -> list[tuple[int, str]]:
    """(tier, text) of what is shown, at most `most` tiers."""
    return [(n, text) for n, text in enumerate(result.tiers[:min(result.shown, most)], start=1)]


def level_for(failures: int, fix_after: int) -> int:
    """How many tiers the `failures`-th failed attempt at a check shows."""
    if failures >= fix_after:
        return 3
    return 2 if failures >= 2 else 1


def fix_after_setting() -> int:
    raw = os.environ.get(FIX_AFTER_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_FIX_AFTER
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise CannotGrade(f"{FIX_AFTER_VARIABLE}={raw!r} must be a whole number of attempts, 1 or more "
                          f"(default {DEFAULT_FIX_AFTER})")
    return value


def state_path() -> Path:
    """The attempts file: GENAI_HINT_STATE, else under the user's state directory (never a workspace)."""
    explicit = os.environ.get(STATE_VARIABLE, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_STATE_HOME", "").strip() or str(Path.home() / ".local" / "state")
    return Path(base) / "genai-course" / "hint-attempts.json"


class StateProblem(Exception):
    """The attempts file cannot be used; grading goes on with tier 1."""


@dataclass
class AttemptStore:
    """Failed attempts per workspace, exercise and check, in one JSON file.

    Read-modify-write happens under an exclusive lock on a sidecar file and the new
    state replaces the old atomically, so gradings at once neither lose a count nor
    leave a half-written file. A corrupt file is set aside and counting starts again."""
    path: Path = field(default_factory=state_path)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateProblem(f"cannot write {self.path.parent} ({exc.strerror or exc})") from None
        try:
            if not flock_within(fd, _LOCK_WAIT_S):
                raise StateProblem(f"{self.path} stayed locked by another grading")
            yield
        finally:
            os.close(fd)

    def _read(self) -> tuple[dict[str, Any], str | None]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}, None
        except (OSError, UnicodeDecodeError) as exc:
            raise StateProblem(f"cannot read {self.path} ({exc})") from None
        try:
            data = json.loads(raw)
            if data.get("version") != _STATE_VERSION or not isinstance(data.get("workspaces"), dict):
                raise ValueError("not an attempts file of this version")
            return data["workspaces"], None
        except (ValueError, AttributeError) as exc:
            aside = self.path.with_name(self.path.name + ".corrupt")
            try:
                os.replace(self.path, aside)
            except OSError:
                pass
            return {}, f"{self.path} was unreadable ({exc}); set aside as {aside.name}, counting starts again"

    def _write(self, workspaces: dict[str, Any]) -> None:
        text = json.dumps({"version": _STATE_VERSION, "workspaces": workspaces}, indent=1, sort_keys=True)
        try:
            fd, tmp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(text)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StateProblem(f"cannot write {self.path} ({exc.strerror or exc})") from None

    def record(self, exercise: str, workspace: str, failed: Sequence[str]) -> tuple[dict[str, int], str | None]:
        """Count one failed attempt at each of `failed`; the counts now, and a note if the file was reset."""
        with self._locked():
            workspaces, note = self._read()
            entry = workspaces.setdefault(workspace, {}).setdefault(exercise, {})
            for check in failed:
                entry[check] = int(entry.get(check, 0)) + 1
            if failed or note:
                self._write(workspaces)
            return {check: int(entry[check]) for check in failed}, note

    def counts(self, exercise: str, workspace: str) -> dict[str, int]:
        with self._locked():
            workspaces, _ = self._read()
        return {k: int(v) for k, v in workspaces.get(workspace, {}).get(exercise, {}).items()}


@dataclass(frozen=True)
class Revealed:
    """A report with the tiers a learner sees now, why, and whether more help is there to ask for."""
    report: ExerciseReport
    notes: tuple[str, ...] = ()

    @property
    def more_available(self) -> bool:
        return any(c.shown < len(c.tiers) for c in self.report.checks if c.status is Status.FAILED and c.tiers)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except (ValueError, OSError):
        return False


def reveal(report: ExerciseReport, mode: str = "auto", store: AttemptStore | None = None,
           fix_after: int | None = None) -> Revealed:
    """Count this grading as one attempt at each failed check, and show the tiers it has earned
    (all of them with mode "all"). The store never breaks grading: where it cannot be used,
    tier 1 is shown with a note that says why."""
    if mode not in MODES:
        raise CannotGrade(f"--hints {mode!r}: expected one of {', '.join(MODES)}")
    fix_after = fix_after_setting() if fix_after is None else fix_after
    store = store or AttemptStore()
    failed = [c.id for c in report.checks if c.status is Status.FAILED and c.tiers]
    notes: list[str] = []
    counts: dict[str, int] | None = None  # None: attempts unknown, so tier 1
    if _inside(store.path, Path(report.workspace)):
        notes.append(f"hint attempts are not counted: {STATE_VARIABLE} points inside the workspace; "
                     f"showing the first hint")
    else:
        try:
            counts, reset = store.record(report.exercise, report.workspace, failed)
            if reset:
                notes.append(f"hint attempts: {reset}")
        except StateProblem as exc:
            notes.append(f"hint attempts are not counted ({exc}); showing the first hint "
                         f"(set {STATE_VARIABLE} to a writable file, or ask for all hints)")
    checks = []
    for c in report.checks:
        if mode == "all":
            level = TIERS
        else:
            level = 1 if counts is None else level_for(counts.get(c.id, 1), fix_after)
        checks.append(show(c, level))
    return Revealed(replace(report, checks=tuple(checks)), tuple(notes))


def feedback(report: ExerciseReport) -> ExerciseReport:
    """Tiers 1-2 of every failed check, whatever was shown before: what a grading box prints."""
    return replace(report, checks=tuple(show(c, FEEDBACK_TIERS) for c in report.checks))


def reveal_all(report: ExerciseReport) -> ExerciseReport:
    """Every tier of every failed check, without counting an attempt (the notebook's Show all hints)."""
    return replace(report, checks=tuple(show(c, TIERS) for c in report.checks))
