"""What 03-permissions and 06-optimize both ask of a service image: who it runs as.

A probe container runs as the image's user (on a fresh named volume at /data) and
reports who it is and what it can write; the running service's process table says
who the server really runs as. hadolint cannot see a missing USER, the engine can.
"""

from __future__ import annotations

import json
from typing import Any

import docker.errors

from dockerkit.containers import processes
from grader.errors import CheckFailed
from grader.exercises._common import DockerfileContext, is_root_user, memoized, probe_output
from grader.probes import describe_listener_problem, listening_sockets
from grader.registry import Passed, fail, passed
from grader.wait import container_logs, wait_for_http

APP_PORT = 8000
USER_NAME, USER_UID, USER_GID = "fastapi", 1001, 1002
DATA_DIR = "/data"

# Runs inside the image as its user: who am I, can I write the code, can I write /data.
PROBE = r"""
import importlib.util, json, os, pwd, grp, tempfile

def entry(p):
    return {"name": p.pw_name, "uid": p.pw_uid, "gid": p.pw_gid, "home": p.pw_dir, "shell": p.pw_shell}

def can_create(folder):
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".grader-probe-")
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True

def can_append(path):
    try:
        open(path, "ab").close()
        return True
    except OSError:
        return False

facts = {"uid": os.getuid(), "gid": os.getgid(), "cwd": os.getcwd()}
try:
    facts["user"] = entry(pwd.getpwuid(os.getuid()))
except KeyError:
    facts["user"] = None
try:
    facts["group"] = grp.getgrgid(os.getgid()).gr_name
except KeyError:
    facts["group"] = None
try:
    facts["named_user"] = entry(pwd.getpwnam(%(user)r))
except KeyError:
    facts["named_user"] = None

spec = importlib.util.find_spec("app")
if spec is None or not spec.submodule_search_locations:
    facts["app"] = None
else:
    package = list(spec.submodule_search_locations)[0]
    writable, checked = [], 0
    for root, dirs, files in os.walk(package):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        checked += 1
        if can_create(root):
            writable.append(root + "/")
        for f in files:
            checked += 1
            if can_append(os.path.join(root, f)):
                writable.append(os.path.join(root, f))
    import_root = os.path.dirname(package)
    checked += 1
    if can_create(import_root):
        writable.append(import_root + "/")
    facts["app"] = {"package": package, "import_root": import_root, "checked": checked,
                    "writable": writable}

data = %(data)r
info = {"exists": os.path.isdir(data), "writable": os.path.isdir(data) and can_create(data)}
if info["exists"]:
    st = os.stat(data)
    info.update(owner_uid=st.st_uid, owner_gid=st.st_gid, mode=oct(st.st_mode & 0o7777))
facts["data"] = info
print(json.dumps(facts))
""" % {"user": USER_NAME, "data": DATA_DIR}


def _who(facts: dict) -> str:
    user = facts.get("user")
    name = user["name"] if user else "(no passwd entry)"
    return f"{name} (uid {facts['uid']}, gid {facts['gid']})"


class ServiceUserContext(DockerfileContext):
    """A Dockerfile workspace whose image runs the service: its user, probed and running."""

    def _data_volume(self) -> dict:
        volume = self.session.volume()  # fresh and named: Docker copies the image's /data into it
        return {volume.name: {"bind": DATA_DIR, "mode": "rw"}}

    @memoized
    def probe(self) -> dict:
        """Facts gathered by a container that runs the probe as the image's user."""
        container = self.session.run(self.image.id, entrypoint=["python3", "-c", PROBE], command=[],
                                     network_disabled=True, volumes=self._data_volume())
        try:
            code, output = probe_output(container, self.options.start_timeout, "the probe container")
            if code != 0 or not output:
                fail(f"a probe running python3 as the image's user failed (exit {code}); "
                     f"output:\n{container_logs(container)}")
            return json.loads(output.splitlines()[-1])
        finally:
            container.remove(force=True)

    @memoized
    def service(self) -> tuple[Any, float]:
        """The service, running with the model mounted read-only and a fresh named volume at /data."""
        volumes = self._data_volume()
        volumes[str(self.environment.models_dir)] = {"bind": "/models", "mode": "ro"}
        container = self.session.run(self.image.id, publish=APP_PORT, volumes=volumes)
        port = self.session.host_port(container, APP_PORT)
        took = wait_for_http(f"http://127.0.0.1:{port}/health", timeout=self.options.start_timeout,
                             http_timeout=self.options.http_timeout, container=container, what="the service",
                             diagnose=lambda: describe_listener_problem(listening_sockets(container), APP_PORT))
        return container, took

    def process_ids(self) -> tuple[list[tuple[int, int, str]], str]:
        """(uid, gid, command) of every process of the running service, and where they come from."""
        try:
            container, _ = self.service
            listed = processes(container)
        except (CheckFailed, docker.errors.APIError):
            listed, why = None, "the service did not stay up"
        else:
            why = "this engine cannot list the service's processes"
        if listed is None:  # the image's user is what the service runs as
            facts = self.probe
            return [(facts["uid"], facts["gid"], "(probe)")], f"a probe container ({why})"
        rows = [(int(f["UID"]), int(f["GID"]), f.get("COMMAND", f.get("ARGS", ""))) for f in listed]
        return rows, "the running service"



def check_non_root(ctx: ServiceUserContext) -> Passed:
    user = ctx.image.user
    if is_root_user(user):
        fail(f"the image's user is {user or 'not set, so root'}; expected a non-root user set with USER",
             notes=ctx.lint_notes("DL3002"), image_user=user)
    processes, source = ctx.process_ids()
    rooted = [p for p in processes if p[0] == 0]
    if rooted:
        fail(f"the image's user is {user}, but {source} runs as root: {rooted[0][2]}",
             image_user=user, processes=processes)
    uids = sorted({p[0] for p in processes})
    return passed(f"the image's user is {user} and {source} runs with uid {', '.join(map(str, uids))}",
                  image_user=user, processes=processes)
