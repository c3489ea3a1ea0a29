"""Ports and loopback addresses."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def is_loopback(address: str) -> bool:
    """Whether `address` (an IP, IPv4-mapped IPv6, or "localhost") names this machine's loopback."""
    host = address.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def is_loopback_url(url: str) -> bool:
    return is_loopback(urlsplit(url).hostname or "")
