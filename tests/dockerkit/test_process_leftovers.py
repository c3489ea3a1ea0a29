"""Does a bounded process leave nothing running, also what its script started in the background?"""

from __future__ import annotations

import os
from pathlib import Path

from dockerkit.process import run_bounded


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields after the command: state, ppid, pgrp, ...; a zombie holds nothing
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def test_background_children_of_a_finished_script_are_stopped(tmp_path):
    """Is `cmd &` in a script that exited at once stopped with it (a fork bomb starts this way)?"""
    marker = tmp_path / "pid"
    script = f"(while :; do sleep 1; done) & echo $$ > {marker}; exit 0"
    done = run_bounded(["bash", "-c", script], timeout=30)
    assert done.returncode == 0 and not done.timed_out
    pgid = int(marker.read_text())
    assert _group_members(pgid) == []


def test_a_spreading_script_is_stopped_at_its_time_limit(tmp_path):
    """Does a script whose children keep starting children end with nothing left (a bounded fork bomb)?"""
    marker = tmp_path / "pid"
    # each generation starts two more and exits, like `f() { f | f & }; f`, but bounded in depth
    script = (f"echo $$ > {marker}; f() {{ [ $1 -lt 6 ] && {{ f $(($1+1)) & f $(($1+1)) & }}; sleep 60; }}; "
              "f 0")
    done = run_bounded(["bash", "-c", script], timeout=2)
    assert done.timed_out
    assert _group_members(int(marker.read_text())) == []
    assert os.getpgrp() != int(marker.read_text())
