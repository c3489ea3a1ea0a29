"""A `docker build` streamed into the notebook (BuildKit's plain progress, step by step)."""


from __future__ import annotations

import html
import os
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Sequence

from course.lessonkit import LessonError
from course.widgets._render import _display, headless
from dockerkit.buildkit import parse_build_steps, step_header
from dockerkit.process import kill_group


class BuildFailed(LessonError):
    pass


@dataclass(frozen=True)
class BuildResult:
    tag: str
    command: tuple[str, ...]
    returncode: int
    seconds: float
    lines: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def steps(self) -> dict[str, str]:
        """Dockerfile steps (internal ones left out) -> 'CACHED', 'DONE' or 'ERROR' ('?' unfinished)."""
        return {f"[{step.where}] {step.instruction}": step.outcome
                for step in parse_build_steps("\n".join(self.lines))}

    @property
    def cached_steps(self) -> list[str]:
        return [name for name, state in self.steps().items() if state == "CACHED"]

    @property
    def rebuilt_steps(self) -> list[str]:
        return [name for name, state in self.steps().items() if state == "DONE"]

    def summary(self) -> str:
        steps = self.steps()
        return (f"{'built' if self.ok else 'FAILED to build'} {self.tag} in {self.seconds:.1f} s: "
                f"{len(steps)} steps, {len(self.cached_steps)} from cache")


def build_command(context: str | os.PathLike, tag: str, *, dockerfile: str | os.PathLike | None = None,
                  labels: dict[str, str] | None = None, build_args: dict[str, str] | None = None,
                  target: str | None = None, extra: Sequence[str] = ()) -> list[str]:
    cmd = ["docker", "build", "--progress=plain", "-t", tag]
    if dockerfile:
        cmd += ["-f", str(dockerfile)]
    for k, v in (labels or {}).items():
        cmd += ["--label", f"{k}={v}"]
    for k, v in (build_args or {}).items():
        cmd += ["--build-arg", f"{k}={v}"]
    if target:
        cmd += ["--target", target]
    return cmd + list(extra) + [str(context)]


def build_live(context: str | os.PathLike, tag: str, *, dockerfile: str | os.PathLike | None = None,
               labels: dict[str, str] | None = None, build_args: dict[str, str] | None = None,
               target: str | None = None, extra: Sequence[str] = (), timeout: float = 900,
               check: bool = True) -> BuildResult:
    """Run a BuildKit build and stream its progress into the notebook as it happens.

    Headless, only the step lines and the summary are printed. A failed build
    raises BuildFailed with the last lines of the log (unless check=False). The
    command is shown as a learner types it: `labels` (the lesson's, for clean-up)
    are added to the build but not to what is shown.
    """
    cmd = build_command(context, tag, dockerfile=dockerfile, labels=labels, build_args=build_args,
                        target=target, extra=extra)
    typed = build_command(context, tag, dockerfile=dockerfile, build_args=build_args, target=target, extra=extra)
    shown = " ".join(c if " " not in c else repr(c) for c in typed)
    plain = headless()
    status: Any = None
    log: Any = None
    if plain:
        print(f"$ {shown}", flush=True)
    else:
        import ipywidgets as w

        status = w.HTML(f"<code>$ {html.escape(shown)}</code><br>starting…")
        log = w.Textarea(layout=w.Layout(width="100%", height="220px"), disabled=True)
        _display(w.VBox([status, log]))
    lines: list[str] = []
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "DOCKER_BUILDKIT": "1"}, start_new_session=True)
    last_paint = 0.0
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.rstrip("\n")
        lines.append(line)
        elapsed = time.monotonic() - started
        if elapsed > timeout:
            kill_group(proc)
            lines.append(f"(build stopped after {timeout:.0f} s)")
            break
        step = step_header(line)
        if plain:
            if step and not step[1].startswith("internal"):
                print(f"  {line}", flush=True)
        elif time.monotonic() - last_paint > 0.25 or step:
            # Repaint at most four times a second: a pip install prints thousands of lines.
            log.value = "\n".join(lines[-200:])
            if step:
                status.value = (f"<code>$ {html.escape(shown)}</code><br>{elapsed:5.1f} s — "
                                f"<b>{html.escape(step[1])}</b> {html.escape(step[2][:120])}")
            last_paint = time.monotonic()
    returncode = proc.wait()
    result = BuildResult(tag, tuple(cmd), returncode, time.monotonic() - started, tuple(lines))
    if plain:
        print(result.summary())
    else:
        log.value = "\n".join(lines[-200:])
        status.value = f"<code>$ {html.escape(shown)}</code><br><b>{html.escape(result.summary())}</b>"
    if check and not result.ok:
        raise BuildFailed(f"{result.summary()}; last lines:\n" + "\n".join(lines[-40:]))
    return result
