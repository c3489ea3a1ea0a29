"""Probes inside containers: `exec` a small program and read what it reports."""

from __future__ import annotations

import ipaddress
from typing import Any

from dockerkit.net import is_loopback

_LISTEN = "0A"


def exec_python(container: Any, code: str, *, timeout: int = 20, user: str | None = None,
                environment: dict[str, str] | None = None) -> tuple[int, str]:
    """Run `code` with the image's python inside a running container; the program kills itself
    after `timeout` seconds (SIGALRM), so a probe never hangs the grading."""
    program = f"import signal; signal.alarm({int(timeout)})\n{code}"
    last = (127, "")
    for python in ("python3", "python"):
        kwargs: dict[str, Any] = {"environment": environment or {}}
        if user is not None:
            kwargs["user"] = user
        code_, output = container.exec_run([python, "-c", program], **kwargs)
        text = (output or b"").decode("utf-8", errors="replace")
        if code_ in (126, 127) and ("executable file not found" in text or "not found" in text or not text):
            last = (code_, text)
            continue
        return code_, text
    return last


def _decode_address(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]  # four little-endian 32-bit words
    return str(ipaddress.IPv6Address(b"".join(words)))


def parse_proc_net_tcp(text: str) -> set[tuple[str, int]]:
    """Listening (address, port) pairs from /proc/net/tcp and /proc/net/tcp6 text."""
    found = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[0] == "sl" or fields[3] != _LISTEN or ":" not in fields[1]:
            continue
        address, port = fields[1].split(":")
        try:
            found.add((_decode_address(address), int(port, 16)))
        except ValueError:
            continue
    return found


def listening_sockets(container: Any) -> set[tuple[str, int]] | None:
    """What listens inside the container (its own network namespace), or None if unreadable."""
    try:
        code, output = container.exec_run(["cat", "/proc/net/tcp", "/proc/net/tcp6"])
    except Exception:
        return None
    text = (output or b"").decode(errors="replace")
    if code not in (0, 1) or "local_address" not in text:
        return None
    return parse_proc_net_tcp(text)


def describe_listener_problem(sockets: set[tuple[str, int]] | None, port: int) -> str | None:
    """Why a published `port` can never answer, judging by what listens inside; None if unsure."""
    if not sockets:
        return None
    on_port = [addr for addr, p in sockets if p == port]
    if on_port and all(is_loopback(a) for a in on_port):
        return (f"the server listens on {on_port[0]}:{port} inside the container, which a published "
                f"port cannot reach: it must listen on all interfaces (e.g. `--host 0.0.0.0`)")
    if not on_port:
        others = ", ".join(f"{a}:{p}" for a, p in sorted(sockets))
        return f"nothing listens on port {port} inside the container (listening: {others})"
    return None
