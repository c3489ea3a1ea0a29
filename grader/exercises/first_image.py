"""01-first-image: a Dockerfile for a small FastAPI app (app/ and requirements.txt are given)."""

from __future__ import annotations

from typing import Any


from grader import static
from grader.exercises._common import BUILDS_TIERS, DockerfileContext, check_builds, memoized, rebuild_after_code_change
from grader.probes import describe_listener_problem, listening_sockets
from grader.registry import Exercise, fail, passed, register
from grader.wait import wait_for_http

exercise = register(Exercise("01-first-image"))

APP_PORT = 8000
CODE_FILE = "app/main.py"


class FirstImageContext(DockerfileContext):
    @memoized
    def pip_cache_paths(self) -> list[str]:
        """Where pip would have left its cache in the image, for root and for the image's user."""
        image = self.image
        paths = ["/root/.cache/pip"]
        if image.env.get("PIP_CACHE_DIR"):
            paths.append(image.env["PIP_CACHE_DIR"])
        with self.session.files(image.id) as files:
            passwd = files.read_text("/etc/passwd") or ""
            user = image.user.split(":", 1)[0]
            for line in passwd.splitlines():
                fields = line.split(":")
                if len(fields) >= 6 and user and user in (fields[0], fields[2]):
                    paths.append(f"{fields[5].rstrip('/')}/.cache/pip")
            return [p for p in dict.fromkeys(paths) if files.file_count(p) > 0]


exercise.context(FirstImageContext)

exercise.check("builds", points=2, summary="the Dockerfile builds",
               **BUILDS_TIERS,
               section="A first Dockerfile")(check_builds)


@exercise.check("pinned_base", points=1,
                summary="every FROM names an explicit tag or digest, never latest or none",
                concept="A base image named without a tag means its latest version, which changes under you: the "
                        "same Dockerfile then builds a different image from one day to the next.",
                problem=("Your Dockerfile starts from {unpinned}, a name with no fixed version: rebuilt tomorrow,"
                         " it may start from another image.",
                         "In your Dockerfile, {found}."),
                fix="Name an exact tag, such as `FROM python:3.11-slim` (or a digest): without one, or with "
                    "`latest`, the base image changes under you from one build to the next.",
                section="Why overwriting `latest` hurts")
def check_pinned_base(ctx: FirstImageContext):
    df = ctx.parsed
    problems = static.unpinned_bases(df)
    if problems:
        found = "; ".join(f"line {p.line}: FROM {p.written} {p.problem}" for p in problems)
        fail(f"{found}; expected an explicit tag or digest", notes=ctx.lint_notes("DL3006", "DL3007"),
             unpinned=[p.written for p in problems])
    images = [s.base for s in df.stages if s.base_stage is None]
    return passed(f"every base image is pinned: {', '.join(images)}", bases=images)


@exercise.check("slim_base", points=1,
                summary="the final stage is based on a slim, alpine or distroless variant",
                concept="The final image carries everything its base holds; a small variant of the base leaves "
                        "out compilers and tools a service never uses, and with them size and attack surface.",
                problem=("Your final stage starts from {base}, a full image: everything in it ships with your "
                         "service.",
                         "In your Dockerfile, {found}."),
                fix="Start the final stage from a small variant such as `python:3.11-slim`: the full image "
                    "carries compilers and tools your service never uses.",
                section="A first Dockerfile")
def check_slim_base(ctx: FirstImageContext):
    df = ctx.parsed
    base, stage = static.final_base(df)
    through = ""
    if stage is not df.final_stage:
        through = f" (through FROM {df.final_stage.base_raw})"
    if static.is_slim_variant(base):
        return passed(f"the final stage is based on {base}{through}", base=base)
    fail(f"the final stage is based on {base}{through} (line {stage.from_instruction.line}); expected a slim, "
         f"alpine or distroless variant such as python:3.11-slim", base=base)


@exercise.check("exposes_port", points=1, summary="the image config exposes 8000/tcp",
                concept="An image documents the port its service listens on in its configuration, so that people "
                        "and tools know which port to publish.",
                problem=("Your image's configuration exposes {exposed}, not the port the service listens on "
                         "(8000).",
                         "In your image, {found}."),
                fix="Add `EXPOSE 8000`: it documents the port in the image, so that `docker run -P` and "
                    "readers know where the service listens.",
                section="A first Dockerfile", requires=("builds",))
def check_exposes_port(ctx: FirstImageContext):
    ports = ctx.image.exposed_ports
    if f"{APP_PORT}/tcp" in ports:
        return passed(f"the image exposes {', '.join(ports)}", exposed=ports)
    fail(f"the image exposes {', '.join(ports) if ports else 'no port'}; expected {APP_PORT}/tcp", exposed=ports)


@exercise.check("exec_form", points=1, summary="CMD/ENTRYPOINT are in exec (JSON array) form",
                concept="How CMD is written decides which process is PID 1 and receives the stop signal: written "
                        "as a JSON array, the server itself; written as a plain string, a shell that does not "
                        "pass the signal on.",
                problem=("Your Dockerfile writes {shell_form} as a plain string, so a shell wraps the server and "
                         "the server never hears the stop signal.",
                         "In your Dockerfile, {found}."),
                fix='Write `CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"]`: in exec '
                    "form the server is PID 1 and receives `docker stop`'s SIGTERM; in shell form /bin/sh "
                    "gets it and the server is killed after a 10 s wait.",
                section="A first Dockerfile")
def check_exec_form(ctx: FirstImageContext):
    df = ctx.parsed
    commands = static.effective_commands(df)
    if not commands:
        fail("the final stage sets no CMD or ENTRYPOINT, so the image would run its base image's default "
             "command; expected a CMD in exec form that starts the server")
    wrong = []
    for ins in commands:
        if ins.is_exec_form:
            continue
        why = ("is not valid JSON (strings need double quotes), so Docker runs it in shell form"
               if ins.looks_like_json else "is in shell form (Docker wraps it in /bin/sh -c)")
        wrong.append(f"line {ins.line}: {ins.keyword} {ins.rest} {why}")
    if wrong:
        fail("; ".join(wrong) + "; expected a JSON array", notes=ctx.lint_notes("DL3025"),
             shell_form=[f"{i.keyword} {i.rest}" for i in commands if not i.is_exec_form])
    return passed("; ".join(f"{i.keyword} {list(i.exec_form or ())}" for i in commands) + " (exec form)")


@exercise.check("serves_http", points=2,
                summary="a container from the image answers GET /health with 200 on a port published on 127.0.0.1",
                concept="A published port reaches the container's network interface, not its loopback: a server "
                        "in a container must listen on all its interfaces, on the port you publish.",
                problem="The container started from your image did not answer on port 8000: {found}. The "
                        "container's logs and the address uvicorn listens on usually say why.",
                fix="Run uvicorn on all interfaces and port 8000 (`--host 0.0.0.0 --port 8000`): inside a "
                    "container 127.0.0.1 is the container's own loopback, which a published port never "
                    "reaches. Try it: `docker run --rm -p 127.0.0.1:8000:8000 <image>`.",
                section="A first Dockerfile", requires=("builds",))
def check_serves_http(ctx: FirstImageContext):
    container = ctx.session.run(ctx.image.id, publish=APP_PORT)
    try:
        port = ctx.session.host_port(container, APP_PORT)
        took = wait_for_http(f"http://127.0.0.1:{port}/health", timeout=ctx.options.start_timeout,
                             http_timeout=ctx.options.http_timeout, container=container,
                             diagnose=lambda: describe_listener_problem(listening_sockets(container), APP_PORT))
    finally:
        container.remove(force=True)
    return passed(f"GET /health answered 200 after {took:.1f} s (published on 127.0.0.1:{port})",
                  ready_after_s=round(took, 2))


@exercise.check("no_pip_cache", points=1,
                summary="every pip install uses --no-cache-dir or a cache mount (or PIP_NO_CACHE_DIR is set), "
                        "and no pip cache is found in the image",
                concept="pip keeps a download cache by default; in an image that cache is dead weight, kept "
                        "forever in a layer.",
                problem=("In your image pip's cache stays behind: {leaky} keeps its download cache (pip caches "
                         "found: {cache_dirs}).",
                         "In your image, {found}."),
                fix="Use `pip install --no-cache-dir -r requirements.txt` (or a BuildKit cache mount, "
                    "`RUN --mount=type=cache,target=/root/.cache/pip pip install ...`): pip's download cache "
                    "is useless in an image and only makes it bigger.",
                section="Layers and the union filesystem", requires=("builds",))
def check_no_pip_cache(ctx: FirstImageContext):
    installs = static.pip_installs(ctx.parsed)
    leaky = [p for p in installs if p.leaves_cache]
    cached_in_image = ctx.pip_cache_paths
    problems = [f"line {p.line}: `{p.command}` keeps its download cache" for p in leaky]
    if cached_in_image:
        problems.append(f"the image holds a pip cache in {', '.join(cached_in_image)}")
    if problems:
        fail("; ".join(problems) + "; expected --no-cache-dir, a cache mount or PIP_NO_CACHE_DIR",
             notes=ctx.lint_notes("DL3042"), leaky=[p.command for p in leaky], cache_dirs=cached_in_image)
    if not installs:
        return passed("the Dockerfile runs no pip install, and the image holds no pip cache")
    return passed(f"{len(installs)} pip install(s) leave no cache, and the image holds no pip cache",
                  installs=[p.command for p in installs])


@exercise.check("deps_before_code", points=1,
                summary="a change to app code only reuses the dependency-install layer",
                concept="The build cache reuses a step only while nothing it depends on has changed; the order of"
                        " the steps decides how much a small code change rebuilds.",
                problem=("When the grader changed only app/main.py, your dependency install ({install_steps}) ran"
                         " again: only {layers_reused} of {layers} layers were reused, so a step before the "
                         "install copies the code.",
                         "In your Dockerfile, {found}."),
                fix="Copy requirements.txt and install the dependencies before copying the code (`COPY "
                    "requirements.txt .`, `RUN pip install ...`, then `COPY app/ app/`): a COPY that brings "
                    "in the code before the install makes every code change reinstall everything.",
                section="Layers and the union filesystem", requires=("builds",))
def check_deps_before_code(ctx: FirstImageContext):
    rebuild = rebuild_after_code_change(ctx, CODE_FILE)
    installs = [s for s in rebuild.steps if static.DEPENDENCY_INSTALL.search(s.instruction)]
    if not installs:
        fail("no build step installs the dependencies; expected a `RUN pip install -r requirements.txt`")
    rerun = [s for s in installs if not s.cached]
    before = ctx.image.layers
    after = ctx.session.client.images.get(rebuild.image_id).attrs["RootFS"]["Layers"]
    shared = next((i for i, (a, b) in enumerate(zip(before, after)) if a != b), min(len(before), len(after)))
    evidence: dict[str, Any] = {"install_steps": [s.instruction for s in installs], "layers_reused": shared,
                "layers": len(after)}
    if rerun:
        fail(f"after changing only {CODE_FILE}, `{rerun[0].instruction}` ran again instead of coming from "
             f"the cache ({shared} of {len(after)} layers reused): something copied before it brings in "
             f"the application code", **evidence)
    return passed(f"after changing only {CODE_FILE}, the dependency install came from the cache "
                  f"({shared} of {len(after)} layers reused)", **evidence)
