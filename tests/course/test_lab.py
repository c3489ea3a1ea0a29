"""Does `make lab`'s code path start JupyterLab that serves /lab, and stop it?"""

from __future__ import annotations

from course.lab import LabError, LabServer, free_port
from dockerkit.http import http


def test_lab_serves_and_stops(repo_root):
    """Does JupyterLab answer /lab with 200 on a free port and go away when stopped?"""
    server = LabServer(port=free_port(), root=repo_root)
    with server:
        answer = http("GET", f"{server.base_url}/lab?token={server.token}", timeout=10)
        assert answer.status == 200
        assert b"JupyterLab" in answer.body
    assert server.proc.poll() is not None


def test_lab_refuses_a_busy_port(repo_root):
    """Is a busy port refused with a message that says how to pick another?"""
    with LabServer(port=free_port(), root=repo_root) as first:
        try:
            LabServer(port=first.port, root=repo_root).start()
        except LabError as exc:
            assert "PORT=" in str(exc)
        else:
            raise AssertionError("a second server on the same port must be refused")
