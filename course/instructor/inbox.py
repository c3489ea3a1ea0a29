"""What runs inside a grading box (with the box's Python; stdlib, nbformat, nbclient).

    python3 -m course.instructor.inbox execute --workdir DIR --cell-timeout S < notebook.json
    python3 -m course.instructor.inbox grade EXERCISE --workspace DIR

Each command writes exactly one JSON document to its standard output, and
nothing else can write there: the process first keeps a private, close-on-exec
copy of stdout, points fd 1 at stderr for everything it starts (a kernel, the
grader's builds, a learner's run.sh), and makes itself non-dumpable, so that a
process of the same user can neither attach to it nor open its descriptors.
"""

from __future__ import annotations

import argparse
import ctypes
import io
import json
import os
import sys
import traceback

PR_SET_DUMPABLE = 4


def _seal_stdout() -> int:
    """A private copy of stdout for the result; fd 1 becomes stderr for everyone else."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: nothing to seal against in a box anyway
    private = os.dup(1)  # not inheritable (close-on-exec) since Python 3.4
    os.dup2(2, 1)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0, closefd=False), write_through=True)
    return private


def _emit(private: int, document: dict) -> None:
    data = json.dumps(document).encode()
    view = memoryview(data)
    while view:
        written = os.write(private, view)
        view = view[written:]
    os.close(private)


def execute(args: argparse.Namespace) -> dict:
    """Run the notebook on stdin in `workdir`; return it with its outputs."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    nb = nbformat.reads(sys.stdin.buffer.read().decode(), as_version=4)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # the kernel inherits nothing from the host's pipe

    def record_error_reply(cell, cell_index, execute_reply):
        # As nbgrader's Execute: a failed reply without an error output (a timeout) still
        # leaves an error in the cell, so that it earns no points.
        content = execute_reply.get("content", {})
        if content.get("status") != "error":
            return
        if any(o.get("output_type") == "error" and o.get("ename") == content.get("ename") for o in cell.outputs):
            return
        cell.outputs.append(nbformat.v4.new_output("error", ename=content.get("ename", "Error"),
                                                   evalue=content.get("evalue", ""),
                                                   traceback=content.get("traceback") or
                                                   ["ERROR: the cell failed without a traceback"]))

    client = NotebookClient(
        nb, timeout=args.cell_timeout, kernel_name="python3", allow_errors=True,
        interrupt_on_timeout=True, raise_on_iopub_timeout=True, record_timing=False,
        error_on_timeout={"ename": "CellTimeoutError", "evalue": "",
                          "traceback": [f"CellTimeoutError: no reply from the kernel within "
                                        f"{args.cell_timeout:.0f} s"]},
        extra_arguments=["--HistoryManager.hist_file=:memory:"],
        resources={"metadata": {"path": args.workdir}},
        on_cell_executed=record_error_reply,
    )
    problem = None
    try:
        client.execute()
    except DeadKernelError as exc:
        problem = f"the kernel died: {exc}"
    except Exception as exc:  # the notebook is still returned: what ran is scored
        problem = f"{type(exc).__name__}: {exc}"
    return {"notebook": nbformat.writes(nb), "problem": problem}


def grade(args: argparse.Namespace) -> dict:
    """The trusted grading: the grader's one `grade()` call, in this process; the report comes
    back as data (the contract's JSON report), or the one line saying why it could not grade."""
    from grader.errors import CannotGrade
    from grader.grading import grade as grade_exercise
    from grader.options import GradingOptions
    from grader.reporters import to_contract

    try:
        report = grade_exercise(args.exercise, args.workspace, GradingOptions.from_env(),
                                announce=lambda line: print(line, file=sys.stderr))
    except CannotGrade as exc:
        return {"cannot_grade": exc.line}
    return {"report": to_contract(report)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m course.instructor.inbox")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("execute")
    run.add_argument("--workdir", required=True)
    run.add_argument("--cell-timeout", type=float, required=True)
    check = sub.add_parser("grade")
    check.add_argument("exercise")
    check.add_argument("--workspace", required=True)
    args = parser.parse_args(argv)

    private = _seal_stdout()
    try:
        document = execute(args) if args.command == "execute" else grade(args)
    except Exception as exc:
        traceback.print_exc()
        document = {"error": f"{type(exc).__name__}: {exc}"}
    _emit(private, document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
