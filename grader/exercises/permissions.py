"""03-permissions: a Dockerfile that runs the service as a non-root user.

The user checks read the image config, a probe container that runs as the
image's user (on a fresh named volume at /data), and the running service's
process table: hadolint cannot see a missing USER, the engine can.
"""

from __future__ import annotations

from grader.exercises._common import BUILDS_TIERS, check_builds
from grader.exercises._service_user import (DATA_DIR, USER_GID, USER_NAME, USER_UID, ServiceUserContext,
                                            _who, check_non_root)
from grader.registry import Exercise, fail, passed, register

exercise = register(Exercise("03-permissions"))

PermissionsContext = ServiceUserContext  # the probe and the running service (shared with 06)

exercise.context(PermissionsContext)

exercise.check("builds", points=2, summary="the Dockerfile builds",
               **BUILDS_TIERS,
               section="A non-root user in the image")(check_builds)


exercise.check("non_root", points=2,
               summary="the image's user is not root and the service process runs with a non-zero uid",
               concept="A process in a container runs as root unless the image says otherwise; a service that "
                       "does not need root's powers should not have them when someone breaks into it.",
               problem=("Your image sets the user {image_user}, yet a process of the service runs as root: "
                        "{found}.",
                        "In your image, {found}: the server runs with root's powers."),
               fix="Create a user and switch to it with `USER` after the steps that need root (installs), "
                   "so the server and anything that breaks into it run without root's powers.",
               section="A non-root user in the image", requires=("builds",))(check_non_root)


@exercise.check("user_ids", points=1, summary="the runtime user is fastapi, uid 1001, gid 1002",
                concept="A service user with fixed ids keeps the ownership of files on volumes stable from one "
                        "build to the next and matches what the host and other containers expect.",
                problem=("Your runtime user is {user} with uid {uid} and gid {gid}: not the user and the ids the "
                         "exercise fixes.",
                         "In your image, {found}."),
                fix=f"Create the group and the user with fixed ids, e.g. `groupadd --gid {USER_GID} "
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
                concept="A service account never logs in; giving it no login shell leaves an intruder one tool "
                        "fewer.",
                problem=("Your runtime user's shell is '{shell}', a real shell.",
                         "In your image, {found}."),
                fix="Give the user no login shell (`--shell /usr/sbin/nologin`): a service account never "
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
                concept="The runtime user should be able to read the code but not change it: whoever takes over "
                        "the service then cannot rewrite it either.",
                problem=("Your runtime user can write {writable}: those files belong to it (or are writable by "
                         "everyone).",
                         "In your image, {found}."),
                fix="Leave the code owned by root (a plain `COPY app/ app/`, no `--chown`, no `chown -R`): "
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
                concept="A fresh named volume starts as a copy of the image's folder, owner and mode included: "
                        "the folder the service writes must exist in the image and belong to its user.",
                problem=("In your image, /data belongs to uid {data_owner_uid} (mode {data_mode}), and a fresh volume "
                         "copies that: the runtime user cannot write there.",
                         "In your image, {found}."),
                fix=f"Create {DATA_DIR} in the image and give it to the runtime user (`mkdir -p {DATA_DIR} && "
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
                concept="The service must still start and answer once it runs as its own user, with the model "
                        "mounted read-only and a fresh volume for its data.",
                problem="The service from your image did not answer: {found}. Its logs usually say why (a file it"
                        " cannot read or write as its user?).",
                fix="Start the service with `uvicorn app.main:app --host 0.0.0.0 --port 8000` (exec form), "
                    "and check its logs: `docker logs <container>`.",
                section="A non-root user in the image", requires=("builds",))
def check_serves_http(ctx: PermissionsContext):
    container, took = ctx.service
    return passed(f"GET /health answered 200 after {took:.1f} s (model at /models read-only, fresh volume at "
                  f"{DATA_DIR})", ready_after_s=round(took, 2))
