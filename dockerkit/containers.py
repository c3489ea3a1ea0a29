"""What a container says about itself, for diagnostics: its state and its last logs."""

from __future__ import annotations

from typing import Any

GONE = ("exited", "dead", "removed")


def container_logs(container: Any, lines: int = 15) -> str:
    try:
        raw = container.logs(tail=lines).decode("utf-8", errors="replace")
    except Exception:  # the container may be gone already
        return "(no logs)"
    kept = [ln[:300] for ln in raw.strip().splitlines()]
    return "\n".join(kept) if kept else "(no logs)"


def container_state(container: Any) -> dict[str, Any]:
    try:
        container.reload()
        return dict(container.attrs.get("State", {}))
    except Exception:  # removed meanwhile
        return {"Status": "removed"}


def describe(container: Any, lines: int = 15) -> str:
    """One paragraph: the container's status, exit code, health and last logs."""
    state = container_state(container)
    health = (state.get("Health") or {}).get("Status")
    return (
        f"container {getattr(container, 'name', '?')} is {state.get('Status')} (exit code "
        f"{state.get('ExitCode')}{', health ' + health if health else ''}); last logs:\n"
        f"{container_logs(container, lines)}"
    )


def processes(container: Any, columns: str = "pid,uid,gid,args") -> list[dict[str, str]] | None:
    """The container's processes (`docker top`), one dict per process keyed by upper-case column
    title; None when the engine cannot list them: a rootless engine without cgroups (as in a
    grading box) has no list of a container's pids to give."""
    import docker.errors

    try:
        top = container.top(ps_args=f"-o {columns}")
    except docker.errors.APIError:
        return None
    titles = [str(t).upper() for t in top.get("Titles") or []]
    return [dict(zip(titles, map(str, row))) for row in top.get("Processes") or []]
