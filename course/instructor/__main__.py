"""`python -m course.instructor STEP [--only EXERCISE]`: the make targets' steps.

    release    generate_assignment + release_assignment
    collect    collect submissions from the exchange (links removed first)
    autograde  execute in grading boxes, cross-check, then print the cross-check table
    feedback   generate_feedback + release_feedback
    export     grades.csv (per student and exercise) and grades-by-check.csv
    box-image  build the grading box image (done by autograde when needed)
    regrade    grade again with the current grader; print what would change (--confirm writes it)
    worker     a grading worker: runs the grading queue's jobs on this host's engine

Exit status 0 on success, 1 when a step failed, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys

from course.instructor import boximage, workflow
from course.instructor.errors import InstructorError


def _print_summary(rows: list[workflow.CrossCheckRow]) -> None:
    if not rows:
        return
    print("\ncross-check (notebook claim vs trusted grading; the lower counts)")
    print(f"  {'student':<16} {'exercise':<18} {'notebook':>8} {'trusted':>8} {'counted':>8}")
    for row in rows:
        trusted = "-" if row.trusted is None else f"{row.trusted:g}"
        print(f"  {row.student:<16} {row.exercise:<18} {row.notebook:>8g} {trusted:>8} {row.counted:>8g}")
        for flag in row.flags:
            print(f"      ! {flag}")


def _print_changes(found: list[workflow.Change], confirmed: bool) -> None:
    if not found:
        print("\nregrade: the current grader gives every collected submission the grades it has")
        return
    print(f"\nregrade: {len(found)} check(s) change with the current grader (points counted, trusted status)")
    print(f"  {'student':<16} {'exercise':<18} {'check':<28} {'old':>5} -> new / max")
    for change in found:
        print(f"  {change.line()}")
    if confirmed:
        print("regrade: written to the gradebook and autograded/ (`make feedback` and `make export` next)")
    else:
        print("regrade: nothing written; `make regrade CONFIRM=1` writes these grades")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.instructor", description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=["release", "collect", "autograde", "feedback", "export", "box-image",
                                           "regrade", "worker"])
    parser.add_argument("--only", metavar="EXERCISE", help="one exercise (default: every exercise with a notebook)")
    parser.add_argument("--force", action="store_true", help="autograde: grade again what was already graded")
    parser.add_argument("--quiet", action="store_true", help="do not echo nbgrader's log")
    parser.add_argument("--boxes", type=int, default=None,
                        help="autograde: grading boxes in flight (default: GENAI_GRADING_BOXES, else from "
                             "the host's cores and memory and the box limits)")
    parser.add_argument("--confirm", action="store_true", help="regrade: write the changes")
    parser.add_argument("--jobs", type=int, default=None,
                        help="worker: jobs at once (default: half the boxes in flight, as autograde)")
    args = parser.parse_args(argv)
    only = args.only or None
    echo = None if args.quiet else print
    try:
        if args.step == "release":
            workflow.release(only, echo=echo)
        elif args.step == "collect":
            workflow.collect(only, echo=echo)
        elif args.step == "autograde":
            workflow.autograde(only, force=args.force, echo=echo, boxes=args.boxes)
            _print_summary(workflow.cross_check_summary(only))
        elif args.step == "feedback":
            workflow.feedback(only, echo=echo)
        elif args.step == "export":
            grades, by_check = workflow.export(only, echo=echo)
            print(f"export: {grades} (per student and exercise), {by_check} (per check)")
        elif args.step == "regrade":
            found = workflow.regrade(only, confirm=args.confirm, echo=echo)
            _print_changes(found, args.confirm)
        elif args.step == "worker":
            from course.instructor import taskqueue

            return taskqueue.worker_main(concurrency=args.jobs)
        else:
            print(boximage.ensure_image())
    except InstructorError as exc:
        print(f"{args.step}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
