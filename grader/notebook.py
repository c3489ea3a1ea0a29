"""The grader inside exercise notebooks.

- `check_points(exercise, check)`: the body of an autograded cell. It prints the
  check's verdict, message, evidence and hint tiers 1-2 (never the fix) on stdout (nbgrader gives 0 points to a cell
  that writes to stderr) and returns the points earned: nbgrader reads a numeric
  result as partial credit.
- The grading runs once per kernel and workspace, and again only when a file of
  the workspace changes (the notebook itself aside).
- `check_my_work(exercise)`: a "Check my work" button that grades afresh and shows
  the table, with hints that grow with the attempts and a "Show all hints" button;
  where no front end can draw a widget it prints the table instead.
- `start(exercise)`: the first cell. Puts the workspace's missing files in place (the
  service's code; each file that continues an earlier exercise, from the learner's own
  earlier file, else the given checkpoint) and says where each started from; it never
  writes over a file, so running it again changes nothing.
- `show_file(exercise, name)`: shows a deliverable as it is saved now, with a link
  that opens it in JupyterLab's editor. No function here writes over a learner's file:
  learners write in the editor, and the grader grades what they saved.

The workspace is the notebook's folder, the kernel's working directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

from grader import hints, progress, reporters, workspace as workspaces
from grader.display import headless
from grader.errors import CannotGrade
from grader.grading import grade
from grader.options import GradingOptions
from grader.progress_view import plain_line
from grader.registry import FixedNames
from grader.results import ExerciseReport

_IGNORED_DIRS = {".ipynb_checkpoints", "__pycache__", ".git", ".venv"}
_CACHE: dict[tuple[str, str], tuple[str, ExerciseReport]] = {}
_MORE_HELP = ("more help comes with each attempt at a check; stuck? "
              "Show all hints shows every hint, the exact fix included")


def fingerprint(folder: Path) -> str:
    """Changes when a file of the workspace changes (notebooks excluded: running them saves them)."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _IGNORED_DIRS)
        for name in sorted(files):
            if name.endswith(".ipynb"):
                continue
            path = Path(root, name)
            try:
                st = path.stat()
            except OSError:
                continue
            digest.update(f"{path.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def forget() -> None:
    """Drop the results kept in this kernel, so that the next cell grades afresh."""
    _CACHE.clear()


def _workspace(path: str | os.PathLike | None) -> Path:
    return Path(path).resolve() if path is not None else Path.cwd().resolve()


def report_for(exercise_id: str, workspace: str | os.PathLike | None = None, refresh: bool = False) -> ExerciseReport:
    """The report for the workspace, graded now or reused from this kernel if nothing changed."""
    folder = _workspace(workspace)
    missing = workspaces.missing_shared(exercise_id, folder)
    if missing and folder.is_dir():
        workspaces.fill_shared(exercise_id, folder)  # the service's files the workspace builds on
    key = (exercise_id, str(folder))
    stamp = fingerprint(folder) if folder.is_dir() else ""
    cached = _CACHE.get(key)
    if cached and cached[0] == stamp and not refresh:
        return cached[1]
    print(f"grading {exercise_id} in {folder} ...", flush=True)
    report = grade(exercise_id, folder, options=GradingOptions.from_env(),
                   announce=lambda line: print(line, flush=True))
    _CACHE[key] = (stamp, report)
    return report


def check_points(exercise_id: str, check_id: str, workspace: str | os.PathLike | None = None) -> float:
    """Print one check's verdict and return its points (the last expression of an autograded cell)."""
    with contextlib.redirect_stderr(sys.stdout):  # stderr output would zero the cell in nbgrader
        try:
            report = report_for(exercise_id, workspace)
        except CannotGrade as exc:
            print(exc.line)
            raise CannotGrade(str(exc)) from None
    result = report.check(check_id)
    print(reporters.render_for_cell(result))
    return float(result.points)


def start(exercise_id: str, workspace: str | os.PathLike | None = None) -> None:
    """Put the workspace's missing files in place and print where each started from (never over a file)."""
    try:
        seeds = workspaces.start(exercise_id, _workspace(workspace))
    except (FileNotFoundError, OSError) as exc:
        print(f"cannot start {exercise_id}: {exc}")
        return
    lines = [seed.notice for seed in seeds]
    image = workspaces.image_notice(exercise_id)
    if image:
        lines.append(image)
    print("\n".join(lines) if lines else f"{exercise_id}: every file you need is in this folder")


def show_file(exercise_id: str, name: str, workspace: str | os.PathLike | None = None) -> None:
    """Show the deliverable `name` as it is saved now (read-only) and a link that opens it in the editor."""
    import html

    from grader.registry import get

    if name not in get(exercise_id).deliverables:
        raise ValueError(f"{name} is not a file {exercise_id} grades")
    path = _workspace(workspace) / name
    try:
        text = path.read_text()
        lines = len(text.splitlines())
        state = f"{name}, as saved now ({lines} line{'' if lines == 1 else 's'}):"
    except FileNotFoundError:
        text, state = "", f"{name} does not exist yet: create it in the editor, in this folder."
    except (OSError, UnicodeDecodeError) as exc:
        text, state = "", f"{name} cannot be read: {exc}"
    advice = "Edit it in JupyterLab's editor and save it; Check my work grades the saved file."
    body_text = text if not text or text.endswith("\n") else text + "\n"
    plain = f"{state}\n{body_text}{advice}"
    if headless():
        print(plain)
        return
    from IPython.display import display

    link = f'<a href="{html.escape(name, quote=True)}">Open {html.escape(name)} in the editor</a>'
    body = f"<pre style='max-height:24em;overflow:auto'>{html.escape(text)}</pre>" if text else ""
    display({"text/plain": plain,
             "text/html": f"<p><b>{link}</b> &mdash; {html.escape(state)}</p>{body}<p>{html.escape(advice)}</p>"},
            raw=True)


def show_checks(exercise_id: str) -> None:
    """Print what the exercise grades: each check, its points, when it passes."""
    from grader.registry import get
    print(reporters.render_checks_list(get(exercise_id)))


def try_script(exercise_id: str, workspace: str | os.PathLike | None = None) -> None:
    """Run the workspace's run.sh as the grader does, show what it created, then remove it all.

    Nothing is left behind, so a grading that follows finds the fixed names free."""
    from grader.grading import open_grading

    with contextlib.redirect_stderr(sys.stdout):
        try:
            # the grading's own assembly (lock, session, claim, context: run.sh runs once); no checks
            with open_grading(exercise_id, _workspace(workspace), GradingOptions.from_env(),
                              announce=print) as grading:
                ctx = grading.context
                print(f"$ IMAGE={ctx.variables['IMAGE']} PORT={ctx.port} MODELS_DIR=... bash run.sh")
                print(ctx.first_run.output.rstrip() or "(no output)")
                print(ctx.first_run.describe().splitlines()[0])
                print(_describe_created(grading.session.client, grading.exercise.fixed_names))
            print("(removed again, so that the grading finds the names free)")
        except CannotGrade as exc:
            print(exc.line)


def _describe_created(client: Any, names: FixedNames) -> str:
    import docker.errors

    lines = []
    for name in names.networks:
        found = [n for n in client.networks.list(names=[name]) if n.name == name]
        lines.append(f"network {name}: " + (f"driver {found[0].attrs['Driver']}" if found else "not created"))
    for name in names.containers:
        try:
            c = client.containers.get(name)
        except docker.errors.NotFound:
            lines.append(f"container {name}: not created")
            continue
        ports = ", ".join(f"{p} -> {b['HostIp'] or '0.0.0.0'}:{b['HostPort']}"
                          for p, bs in (c.attrs["NetworkSettings"]["Ports"] or {}).items() for b in bs or [])
        mounts = ", ".join(f"{m['Destination']} ({m['Type']} {m.get('Name') or m.get('Source', '')}"
                           f"{'' if m.get('RW', True) else ', read-only'})" for m in c.attrs.get("Mounts") or [])
        tmpfs = ", ".join(f"{path} (tmpfs)" for path in (c.attrs["HostConfig"].get("Tmpfs") or {}))
        networks = ", ".join(c.attrs["NetworkSettings"].get("Networks") or {}) or \
            c.attrs["HostConfig"].get("NetworkMode")
        lines.append(f"container {name}: {c.status}; networks: {networks}; ports: {ports or 'none'}; "
                     f"mounts: {', '.join(x for x in (mounts, tmpfs) if x) or 'none'}")
    return "\n".join(lines)


def check_my_work(exercise_id: str, workspace: str | os.PathLike | None = None):
    """A "Check my work" button; prints the table instead where no widget can be shown.

    Each click is an attempt: the hints of a failed check grow with the attempts at it
    (grader.hints), and "Show all hints" shows every tier of the last grading, the fix
    included, without grading again. Printed (nbclient, nbgrader's box) it shows tiers 1-2
    and counts nothing, so an executed notebook is the same every time."""
    def run(show: progress.Listener) -> ExerciseReport | None:
        # what the grading is doing (phase, check, build step) is shown while it runs
        with contextlib.redirect_stderr(sys.stdout), progress.listening(show):
            try:
                return report_for(exercise_id, workspace, refresh=True)
            except CannotGrade as exc:
                print(exc.line)
                return None

    if headless():  # one rule for every widget of the course
        report = run(lambda event: print(plain_line(event), flush=True))
        if report is not None:
            print(reporters.render_table(hints.feedback(report)))
        return None
    import html

    import ipywidgets as widgets
    from IPython.display import display

    button = widgets.Button(description="Check my work", icon="check", button_style="primary")
    all_hints = widgets.Button(description="Show all hints", icon="life-ring",
                               tooltip="every hint of the last grading, the exact fix included", disabled=True)
    status = widgets.HTML()
    output = widgets.Output(layout={"border": "1px solid #ddd", "padding": "4px"})
    last: list[ExerciseReport] = []

    def show(event: progress.Event) -> None:
        # build steps arrive from a reader thread: only the status line changes there
        status.value = f"<code>{html.escape(plain_line(event))}</code>"

    def on_click(_button) -> None:
        button.disabled = all_hints.disabled = True
        output.clear_output()
        last.clear()
        with output:
            try:
                report = run(show)
                if report is not None:
                    revealed = hints.reveal(report)
                    print(reporters.render_table(revealed.report, more=_MORE_HELP))
                    for note in revealed.notes:
                        print(note)
                    if revealed.more_available:
                        last.append(report)
            except CannotGrade as exc:
                print(exc.line)
            finally:
                status.value = ""
                button.disabled = False
                all_hints.disabled = not last

    def on_all_hints(_button) -> None:
        if not last:
            return
        output.clear_output()
        with output:
            print(reporters.render_table(hints.reveal_all(last[0])))
        all_hints.disabled = True

    button.on_click(on_click)
    all_hints.on_click(on_all_hints)
    display(widgets.VBox([widgets.HBox([button, all_hints]), status, output]))
    return None
