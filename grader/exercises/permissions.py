"""03-permissions: a Dockerfile that runs the service as a non-root user.

The user checks read the image config, a probe container that runs as the
image's user (on a fresh named volume at /data), and the running service's
process table: hadolint cannot see a missing USER, the engine can.
"""

from __future__ import annotations

import json
from typing import Any

import docker.errors

from grader.errors import CheckFailed
from grader.exercises._common import DockerfileContext, check_builds, is_root_user, memoized
from grader.probes import describe_listener_problem, listening_sockets
from grader.registry import Exercise, fail, passed, register
from grader.wait import container_logs, wait_for_http

exercise = register(Exercise("03-permissions"))

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


class PermissionsContext(DockerfileContext):
    def _data_volume(self) -> dict:
        volume = self.session.volume()  # fresh and named: Docker copies the image's /data into it
        return {volume.name: {"bind": DATA_DIR, "mode": "rw"}}

    @memoized
    def probe(self) -> dict:
        """Facts gathered by a container that runs the probe as the image's user."""
        container = self.session.run(self.image.id, entrypoint=["python3", "-c", PROBE], command=[],
                                     network_disabled=True, volumes=self._data_volume())
        try:
            try:
                status = container.wait(timeout=self.options.start_timeout)
            except Exception:
                fail(f"the probe container did not finish within {self.options.start_timeout:.0f} s")
            output = container.logs(stdout=True, stderr=False).decode(errors="replace").strip()
            if status.get("StatusCode") != 0 or not output:
                fail(f"a probe running python3 as the image's user failed (exit {status.get('StatusCode')}); "
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
            top = container.top(ps_args="-o pid,uid,gid,args")
        except (CheckFailed, docker.errors.APIError):
            facts = self.probe  # the service did not stay up: the image's user is what it would run as
            return [(facts["uid"], facts["gid"], "(probe)")], "a probe container (the service did not stay up)"
        titles = [t.upper() for t in top.get("Titles", [])]
        rows: list[tuple[int, int, str]] = []
        for proc in top.get("Processes") or []:
            fields = dict(zip(titles, proc))
            rows.append((int(fields["UID"]), int(fields["GID"]), str(fields.get("COMMAND", fields.get("ARGS", "")))))
        return rows, "the running service"


exercise.context(PermissionsContext)

exercise.check("builds", points=2, summary="the Dockerfile builds",
               hint="Read the build output above: it names the step that failed and why.",
               section="A non-root user in the image")(check_builds)


@exercise.check("non_root", points=2,
                summary="the image's user is not root and the service process runs with a non-zero uid",
                hint="Create a user and switch to it with `USER` after the steps that need root (installs), "
                     "so the server and anything that breaks into it run without root's powers.",
                section="A non-root user in the image", requires=("builds",))
def check_non_root(ctx: PermissionsContext):
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


@exercise.check("user_ids", points=1, summary="the runtime user is fastapi, uid 1001, gid 1002",
                hint=f"Create the group and the user with fixed ids, e.g. `groupadd --gid {USER_GID} "
                     f"{USER_NAME}` and `useradd --uid {USER_UID} --gid {USER_GID} ... {USER_NAME}`: fixed "
                     f"ids keep file ownership on volumes stable from one build to the next.",
                section="A non-root user in the image", requires=("non_root",))
def check_user_ids(ctx: PermissionsContext):
    facts = ctx.probe
    user = facts.get("user")
    expected = f"{USER_NAME} (uid {USER_UID}, gid {USER_GID})"
    if user and user["name"] == USER_NAME and facts["uid"] == USER_UID and facts["gid"] == USER_GID:
        return passed(f"the runtime user is {expected}", user=user)
    fail(f"the runtime user is {_who(facts)}; expected {expected}", user=user, uid=facts["uid"], gid=facts["gid"])


@exercise.check("no_login_shell", points=1, summary="that user's shell is nologin",
                hint="Give the user no login shell (`--shell /usr/sbin/nologin`): a service account never "
                     "logs in, and an intruder gets no shell from it.",
                section="A non-root user in the image", requires=("non_root",))
def check_no_login_shell(ctx: PermissionsContext):
    facts = ctx.probe
    user = facts.get("user")
    if user is None:
        fail(f"uid {facts['uid']} has no entry in /etc/passwd, so it has no declared shell; expected a user "
             f"whose shell is nologin")
    if user["shell"].rstrip("/").endswith("nologin"):
        return passed(f"{user['name']}'s shell is {user['shell']}", shell=user["shell"])
    fail(f"{user['name']}'s shell is {user['shell'] or '(empty, which means /bin/sh)'}; expected "
         f"/usr/sbin/nologin", shell=user["shell"])


@exercise.check("code_read_only", points=1, summary="the runtime user cannot write the application code",
                hint="Leave the code owned by root (a plain `COPY app/ app/`, no `--chown`, no `chown -R`): "
                     "if the service's user can change its own code, so can anyone who takes over the service.",
                section="File modes, `chmod` and `chown`", requires=("non_root",))
def check_code_read_only(ctx: PermissionsContext):
    facts = ctx.probe
    app = facts.get("app")
    if app is None:
        fail(f"the package `app` cannot be found from the working directory {facts['cwd']}; expected the code "
             f"in app/ under the WORKDIR")
    writable = app["writable"]
    if writable:
        shown = ", ".join(writable[:5]) + (f" and {len(writable) - 5} more" if len(writable) > 5 else "")
        fail(f"{_who(facts)} can write {shown}; expected the code to be read-only for the runtime user",
             writable=writable[:50])
    return passed(f"{_who(facts)} can write none of the {app['checked']} files and folders of "
                  f"{app['package']} and its import root", package=app["package"])


@exercise.check("data_writable", points=2, summary="the runtime user can write /data, also on a fresh named volume",
                hint=f"Create {DATA_DIR} in the image and give it to the runtime user (`mkdir -p {DATA_DIR} && "
                     f"chown {USER_NAME}:{USER_NAME} {DATA_DIR}`, as root, before `USER`): a fresh named volume "
                     f"starts as a copy of the image's folder, owner included.",
                section="Volumes and bind mounts meet the non-root user", requires=("non_root",))
def check_data_writable(ctx: PermissionsContext):
    facts = ctx.probe
    data = facts["data"]
    if data.get("writable"):
        return passed(f"{_who(facts)} can write {DATA_DIR} on a fresh named volume", data=data)
    if not data.get("exists"):
        fail(f"{DATA_DIR} does not exist in the container; expected a folder the runtime user can write")
    fail(f"{_who(facts)} cannot write {DATA_DIR} on a fresh named volume (owner uid {data.get('owner_uid')}, "
         f"gid {data.get('owner_gid')}, mode {data.get('mode')}); expected it owned by the runtime user",
         data=data)


@exercise.check("serves_http", points=1, summary="the service answers GET /health",
                hint="Start the service with `uvicorn app.main:app --host 0.0.0.0 --port 8000` (exec form), "
                     "and check its logs: `docker logs <container>`.",
                section="A non-root user in the image", requires=("builds",))
def check_serves_http(ctx: PermissionsContext):
    container, took = ctx.service
    return passed(f"GET /health answered 200 after {took:.1f} s (model at /models read-only, fresh volume at "
                  f"{DATA_DIR})", ready_after_s=round(took, 2))
