"""Command line: `python -m grader list | check | grade-all | sync | start`.

Exit status: 0 full marks, 1 at least one check lost points, 2 could not grade
(with one line on stderr that says why).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from pathlib import Path

from grader import hints, progress, registry, reporters, workspace
from grader.errors import CannotGrade, EngineUnavailable, GraderBug
from grader.grading import grade
from grader.options import REPO_ROOT, GradingOptions
from grader.progress_view import TerminalProgress
from grader.results import ExerciseReport

EXIT_FULL_MARKS, EXIT_LOST_POINTS, EXIT_CANNOT_GRADE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the exercises and what each one checks")
    check = sub.add_parser("check", help="grade one exercise")
    check.add_argument("exercise")
    check.add_argument("--workspace", type=Path, help="the folder with your files (default: exercises/EXERCISE)")
    check.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    check.add_argument("--no-cache", action="store_true", help="build without the build cache (cold timing)")
    check.add_argument("--hints", choices=hints.MODES, default="auto",
                       help="auto: more help with each failed attempt at a check; all: every hint now, the fix "
                            "included")
    every = sub.add_parser("grade-all", help="grade every exercise (make grade)")
    every.add_argument("--only", metavar="EXERCISE", help="grade only this exercise")
    every.add_argument("--no-cache", action="store_true", help="build without the build cache")
    every.add_argument("--hints", choices=hints.MODES, default="auto", help="as for check (make grade HINTS=all)")
    sync = sub.add_parser("sync", help="copy the service's code into the exercise folders that build it")
    sync.add_argument("--force", action="store_true", help="replace copies that are already there")
    begin = sub.add_parser("start", help="put an exercise's missing files in place: your own earlier files, "
                                         "else the given checkpoints (never over a file)")
    begin.add_argument("exercise")
    begin.add_argument("--workspace", type=Path, help="the folder with your files (default: exercises/EXERCISE)")
    return parser


def _sigterm_as_interrupt() -> None:
    """SIGTERM unwinds like Ctrl-C, so that every `finally` cleans up."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _cannot_grade(exc: CannotGrade) -> int:
    _stderr(exc.line)
    if isinstance(exc, GraderBug) and os.environ.get("GENAI_GRADER_DEBUG"):
        traceback.print_exception(exc.__cause__ or exc)
    return EXIT_CANNOT_GRADE


def _sync_default(exercise_id: str) -> None:
    """Put the shared service files into exercises/<id>/ if they are missing (the default workspace)."""
    if workspace.missing_shared(exercise_id, workspace.starter_dir(exercise_id)):
        try:
            workspace.sync([exercise_id])
        except FileNotFoundError as exc:
            raise CannotGrade(str(exc)) from None


def _more_help(exercise_id: str, make: bool) -> str:
    ask = f"make grade EX={exercise_id} HINTS=all" if make else f"python -m grader check {exercise_id} --hints all"
    return (f"more help comes with each attempt at a check; stuck? `{ask}` shows every hint, "
            f"the exact fix included")


def _reveal(report: ExerciseReport, mode: str) -> tuple[ExerciseReport, tuple[str, ...]]:
    revealed = hints.reveal(report, mode)
    return revealed.report, revealed.notes


def cmd_list() -> int:
    for exercise in registry.all_exercises():
        print(reporters.render_checks_list(exercise))
        print()
    return EXIT_FULL_MARKS


def cmd_check(args: argparse.Namespace) -> int:
    options = GradingOptions.from_env(no_cache=args.no_cache)
    registry.get(args.exercise)
    hints.fix_after_setting()  # a bad setting is one clear line, before any grading
    if args.workspace is None:
        _sync_default(args.exercise)
    with TerminalProgress() as view, progress.listening(view):
        report = grade(args.exercise, args.workspace, options=options, announce=view.note)
    report, notes = _reveal(report, args.hints)
    if args.json:
        print(reporters.render_json(report))
    else:
        print(reporters.render_table(report, colour=sys.stdout.isatty(), more=_more_help(args.exercise, False)))
    for note in notes:
        _stderr(note)
    return EXIT_FULL_MARKS if report.full_marks else EXIT_LOST_POINTS


def cmd_grade_all(args: argparse.Namespace) -> int:
    options = GradingOptions.from_env(no_cache=args.no_cache)
    exercises = [registry.get(args.only)] if args.only else registry.all_exercises()
    hints.fix_after_setting()
    reports: list[ExerciseReport] = []
    errors: dict[str, str] = {}
    for exercise in exercises:
        try:
            _sync_default(exercise.id)
            with TerminalProgress() as view, progress.listening(view):
                report = grade(exercise.id, options=options, announce=view.note)
        except EngineUnavailable:
            raise  # nothing else can be graded either
        except CannotGrade as exc:
            errors[exercise.id] = exc.line
            print(f"{exercise.id} \u2014 {exc.line}\n", flush=True)
            continue
        report, notes = _reveal(report, args.hints)
        reports.append(report)
        print(reporters.render_table(report, colour=sys.stdout.isatty(), more=_more_help(exercise.id, True))
              + "\n", flush=True)
        for note in notes:
            _stderr(note)
    print(reporters.render_summary(reports, errors))
    if errors:
        return EXIT_CANNOT_GRADE
    return EXIT_FULL_MARKS if all(r.full_marks for r in reports) else EXIT_LOST_POINTS


def cmd_sync(args: argparse.Namespace) -> int:
    try:
        created = workspace.sync(force=args.force)
    except FileNotFoundError as exc:
        _stderr(f"sync: {exc}")
        return EXIT_CANNOT_GRADE
    for path in created:
        print(f"sync: copied {path.relative_to(REPO_ROOT)}")
    if not created:
        print("sync: every exercise workspace already has its shared files")
    return EXIT_FULL_MARKS


def cmd_start(args: argparse.Namespace) -> int:
    registry.get(args.exercise)
    try:
        seeds = workspace.start(args.exercise, args.workspace)
    except FileNotFoundError as exc:
        _stderr(f"start: {exc}")
        return EXIT_CANNOT_GRADE
    for seed in seeds:
        print(f"start: {seed.notice}")
    image = workspace.image_notice(args.exercise)
    if image:
        print(f"start: {image}")
    if not seeds and not image:
        print(f"start: {args.exercise} continues no earlier exercise: its starter files are all it needs")
    return EXIT_FULL_MARKS


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _sigterm_as_interrupt()
    try:
        if args.command == "list":
            return cmd_list()
        if args.command == "check":
            return cmd_check(args)
        if args.command == "grade-all":
            return cmd_grade_all(args)
        if args.command == "start":
            return cmd_start(args)
        return cmd_sync(args)
    except CannotGrade as exc:
        return _cannot_grade(exc)
    except KeyboardInterrupt:
        _stderr("cannot grade: interrupted; everything the grading created has been removed")
        return EXIT_CANNOT_GRADE
    except BrokenPipeError:
        return EXIT_CANNOT_GRADE
    except Exception as exc:  # a bug in the grader: one line, the traceback only on request
        return _cannot_grade(_as_bug(exc))


def _as_bug(exc: Exception) -> GraderBug:
    bug = GraderBug(f"internal error {type(exc).__name__}: {exc}; set GENAI_GRADER_DEBUG=1 for details")
    bug.__cause__ = exc
    return bug
