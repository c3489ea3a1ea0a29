"""Bounded child processes: a time limit, bounded output, and the whole group stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import IO, Any, Callable, Mapping, Sequence

MAX_OUTPUT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Finished:
    """How a bounded process ended. `returncode` is None when it was stopped at the time limit."""

    returncode: int | None
    output: bytes  # stdout, with stderr merged into it unless the streams were split
    errors: bytes  # stderr when split, else empty
    timed_out: bool
    overflowed: bool = False  # more output than was kept
    duration_s: float = 0.0  # until it exited or reached its limit (stopping it comes after)

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", errors="replace")

    @property
    def error_text(self) -> str:
        return self.errors.decode("utf-8", errors="replace")


def kill_group(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """Stop a child started in its own session and everything in its process group (TERM, then
    KILL after `grace` seconds), also after the child itself exited: what it started in the
    background stays in the group and must not outlive it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break  # the group is empty
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader so that it does not hold the group as a zombie
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)  # the members are exiting; check again shortly
        else:
            continue
        break
    try:
        proc.wait(timeout=5.0)
    except subprocess.TimeoutExpired:
        pass


def _drain(
    stream: IO[bytes],
    sink: bytearray,
    limit: int,
    overflow: list[bool],
    on_output: Callable[[bytes], None] | None = None,
) -> None:
    # read1: what the pipe holds now, so that `on_output` sees the output as it comes
    read = getattr(stream, "read1", stream.read)
    for chunk in iter(lambda: read(1 << 16), b""):
        if on_output is not None:
            try:
                on_output(chunk)
            except Exception:  # a watcher's failure never stops the process or loses its output
                on_output = None
        room = limit - len(sink)
        if room > 0:
            sink += chunk[:room]
        if len(chunk) > room:
            overflow[0] = True  # keep reading so that the writer never blocks, but keep nothing


def run_bounded(
    cmd: Sequence[str],
    *,
    timeout: float,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    split: bool = False,
    max_bytes: int = MAX_OUTPUT_BYTES,
    on_output: Callable[[bytes], None] | None = None,
) -> Finished:
    """Run `cmd` for at most `timeout` seconds; stderr is merged into the output unless `split`.
    `on_output` sees stdout's bytes as they arrive (live progress), from a reader thread.

    The child gets its own session so that a timeout, an exception or Ctrl-C stops
    it together with whatever it started."""
    proc = subprocess.Popen(
        list(cmd),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if split else subprocess.STDOUT,
        start_new_session=True,
    )
    out, err, overflow = bytearray(), bytearray(), [False]
    readers = [threading.Thread(target=_drain, args=(proc.stdout, out, max_bytes, overflow, on_output), daemon=True)]
    if split:
        readers.append(threading.Thread(target=_drain, args=(proc.stderr, err, max_bytes, overflow), daemon=True))
    for reader in readers:
        reader.start()
    timed_out = False
    started = time.monotonic()
    try:
        if stdin is not None and proc.stdin is not None:
            try:
                proc.stdin.write(stdin)
            except BrokenPipeError:
                pass
            finally:
                proc.stdin.close()
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        duration = time.monotonic() - started
        kill_group(proc)  # also reached on KeyboardInterrupt: never leave the child running
        for reader in readers:
            reader.join(timeout=10)
    return Finished(None if timed_out else proc.returncode, bytes(out), bytes(err), timed_out, overflow[0], duration)
