"""A run.sh that leaves spreading processes behind (how a fork bomb starts) earns nothing in the notebook,
and nothing of it is left running.

`f() { f | f & }; f` returns at once and its children keep forking: before the grader stopped the
script's whole process group, those children outlived run.sh, ate the kernel's processes, and the
autograded cells ended with no result, which nbgrader counts as full credit. The spreading here is
bounded in depth, so that the test is safe on any host; the unbounded bomb runs only inside a
grading box (tests/instructor). The autograde side of the guarantee is proven in
tests/instructor/test_preprocessors.py (a check cell without a stated result earns 0)."""

from __future__ import annotations

import pytest

from grader import notebook, registry
from grader.workspace import materialize
from tests.dockerkit.test_process_leftovers import _group_members

pytestmark = pytest.mark.docker

SPREADING = """#!/usr/bin/env bash
echo $$ > "$SPREAD_PIDFILE"   # outside the workspace: a new file there would regrade
f() { [ "$1" -lt 6 ] && { f $(($1 + 1)) & f $(($1 + 1)) & }; sleep 120; }
f 0 &
exit 0
"""


def test_check_cells_earn_nothing_and_nothing_keeps_running(tmp_path, monkeypatch, service_image, capsys):
    """Does every autograded cell of 02 return 0 for a spreading run.sh, and is its process group empty?"""
    monkeypatch.setenv("GENAI_SERVICE_IMAGE", service_image)
    pidfile = tmp_path / "leader.pid"
    monkeypatch.setenv("SPREAD_PIDFILE", str(pidfile))
    workspace = materialize("02-storage", tmp_path / "ws", with_solution=False)
    (workspace / "run.sh").write_text(SPREADING)
    notebook.forget()
    points = {c.id: notebook.check_points("02-storage", c.id, workspace)
              for c in registry.get("02-storage").checks}
    assert points and all(p == 0.0 for p in points.values()), points
    shown = capsys.readouterr().out
    assert "there is no container named genai-storage" in shown  # the verdict says why, not only a number
    assert shown.count("grading 02-storage") == 1  # one grading serves every cell
    assert _group_members(int(pidfile.read_text())) == []
