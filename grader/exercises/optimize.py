"""06-optimize: a small, cache-friendly image for the ONNX service (Dockerfile and .dockerignore).

One `docker save` of the image (grader.exercises._images) shows where its megabytes
are: the layer table and the wasted bytes go into size_budget's message, and the
same file list answers multi_stage (compilers, pip caches) and model_external.
Behaviour where it matters: a rebuild after an app-only change, a build with
canaries planted in the context, imports tried inside the image, and /embed
compared with the export's reference vectors.
"""

from __future__ import annotations

from typing import Any

import json
import re
import shutil
from pathlib import Path

import docker.errors

from grader import static
from grader.exercises._common import BUILDS_TIERS, check_builds, memoized, probe_output, rebuild_after_code_change
from grader.exercises._service_user import ServiceUserContext, check_non_root
from grader.exercises._images import ImageAnalysis, analyse, megabytes, size_budget
from grader.exercises._service import Endpoint, check_reference_embeddings
from grader.registry import Exercise, fail, passed, register
from grader.wait import container_logs, container_state
from dockerkit.wait import WaitFailed, poll

exercise = register(Exercise("06-optimize"))

APP_PORT = 8000
CODE_FILE = "app/main.py"
DEFAULT_MODEL_DIR = "/models"
FORBIDDEN = ("torch", "transformers")
DEV_TARGET = "development"
DEV_REQUIREMENTS = "requirements-dev.txt"
RELOADER_STARTED = "Started reloader process"

# Runs in an image: which of these distributions are installed (name -> version or None)?
DISTRIBUTIONS_PROBE = r"""
import json, sys
from importlib import metadata
found = {}
for name in json.loads(sys.argv[1]):
    try:
        found[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        found[name] = None
print(json.dumps(found))
"""

# Runs in the image: can the heavy training-side libraries be imported?
IMPORT_PROBE = r"""
import importlib, json
found = {}
for name in %r:
    try:
        module = importlib.import_module(name)
        found[name] = getattr(module, "__file__", None) or "(a namespace package)"
    except ImportError:
        found[name] = None
    except Exception as exc:  # installed, but broken: still shipped in the image
        found[name] = "installed (import fails: %%s)" %% type(exc).__name__
print(json.dumps(found))
""" % (FORBIDDEN,)


def canaries(token: str) -> dict[str, str]:
    """What a learner's folder collects and an image must not: path in the build context -> content."""
    return {
        ".env": f"OPENAI_API_KEY=sk-{token}\n",
        ".git/HEAD": f"ref: refs/heads/{token}\n",
        ".git/config": f"[remote \"origin\"]\n\turl = https://{token}@git.example/service.git\n",
        ".venv/pyvenv.cfg": f"home = /usr/bin\n# {token}\n",
        ".venv/lib/python3.11/site-packages/torch/__init__.py": f"# {token}\n",
        "__pycache__/main.cpython-311.pyc": token,
        "app/__pycache__/main.cpython-311.pyc": token,
        "model.onnx": f"stray model weights {token}",
    }


def _planted_name(path: str) -> str:
    """Which canary a found file is (the top folder or file name a learner would recognise)."""
    for marker in (".git/", ".venv/", "__pycache__/"):
        if marker in path:
            return marker
    return Path(path).name


class OptimizeContext(ServiceUserContext):
    """A Dockerfile workspace with the service; `service` (from 03) runs it with the model at /models."""

    @memoized
    def analysis(self) -> ImageAnalysis:
        return analyse(self.client, self.image.id, self.parsed)

    @memoized
    def imports(self) -> dict:
        """Which of torch and transformers import in the image (its own python, its own PATH)."""
        return self.python_probe(self.image.id, IMPORT_PROBE, "the imports")

    def python_probe(self, image_id: str, script: str, what: str, *args: str) -> dict:
        """Run `script` with the image's own python (and PATH); its last line of output, as JSON."""
        last = ""
        for python in ("python3", "python"):
            try:
                container = self.session.run(image_id, entrypoint=[python, "-c", script, *args], command=[],
                                             network_disabled=True)
            except docker.errors.APIError as exc:  # no such executable in the image
                last = str(exc.explanation or exc)
                continue
            try:
                code, output = probe_output(container, self.options.start_timeout, f"the probe of {what}")
                if code == 0 and output:
                    return json.loads(output.splitlines()[-1])
                last = container_logs(container)
            finally:
                container.remove(force=True)
        fail(f"python could not run in the image to try {what}: {last[-300:]}")

    @memoized
    def dev_requirements(self) -> list[str]:
        """The distribution names that requirements-dev.txt pins (the service's dev tools)."""
        path = self.workspace / DEV_REQUIREMENTS
        if not path.is_file():
            fail(f"there is no {DEV_REQUIREMENTS} in the workspace: it lists the dev tools the development "
                 f"target adds")
        names = [re.split(r"[\s\[<>=!~;@]", line.strip(), maxsplit=1)[0]
                 for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith(("#", "-"))]
        if not names:
            fail(f"{DEV_REQUIREMENTS} names no package")
        return names


exercise.context(OptimizeContext)

exercise.check("builds", points=1, summary="the Dockerfile builds",
               **BUILDS_TIERS,
               section="6. Multi-stage builds")(check_builds)


@exercise.check("multi_stage", points=1,
                summary="at least two stages, and no compiler or pip cache in the final image",
                concept="A multi-stage build installs in one stage and copies only the result into a clean final "
                        "stage: compilers and caches of the install stay behind.",
                problem=("Your Dockerfile has {stages} stage(s); the final image holds compilers {compilers} and "
                         "pip caches {pip_caches}.",
                         "In your image, {found}."),
                fix="Install the dependencies in a first stage (a virtual environment, e.g. /opt/venv), then start "
                    "the final stage from a clean base and `COPY --from=<build stage> /opt/venv /opt/venv`: the "
                    "tools and caches of the install stay behind.",
                section="6. Multi-stage builds", requires=("builds",))
def check_multi_stage(ctx: OptimizeContext):
    df = ctx.parsed
    if len(df.stages) < 2:
        fail("the Dockerfile has a single stage, so everything the install needed ships in the image; expected "
             "at least two stages (a build stage, and a final stage that copies only the result)",
             stages=1)
    final = df.final_stage
    copied = [ins for ins in final.instructions if ins.keyword == "COPY" and ins.flag_values("from")]
    if not copied and final.base_stage is None:
        fail(f"the final stage ({final.label}) copies nothing from an earlier stage (no COPY --from=...), so the "
             f"build stage is unused", stages=len(df.stages))
    analysis = ctx.analysis
    found = [f"a compiler ({', '.join('/' + p for p in analysis.compilers()[:3])})"] if analysis.compilers() else []
    if analysis.pip_caches():
        found.append(f"a pip cache ({', '.join(analysis.pip_caches())})")
    if found:
        fail(f"the final image holds {' and '.join(found)}; expected neither: keep build tools and caches in "
             f"the build stage", compilers=analysis.compilers(), pip_caches=analysis.pip_caches())
    names = ", ".join(s.label for s in df.stages)
    return passed(f"{len(df.stages)} stages ({names}); the final image holds no compiler and no pip cache",
                  stages=[s.label for s in df.stages])


@exercise.check("no_torch", points=1, summary="neither torch nor transformers is importable in the final image",
                concept="Serving an exported ONNX model needs only onnxruntime and a tokenizer; the training "
                        "frameworks weigh gigabytes and are never used at run time.",
                problem="Your final image can import {found}: a dependency pulls in the training frameworks.",
                fix="Serve with onnxruntime and tokenizers only (requirements.txt): torch and transformers are for "
                    "exporting the model, and cost gigabytes in an image that never uses them.",
                section="2. Avoid shipping a GPU runtime you do not use", requires=("builds",))
def check_no_torch(ctx: OptimizeContext):
    found = {name: where for name, where in ctx.imports.items() if where}
    if found:
        fail(f"{' and '.join(f'{name} imports in the image ({where})' for name, where in found.items())}; expected "
             f"neither", found=found)
    return passed("neither torch nor transformers imports in the image", tried=list(FORBIDDEN))


@exercise.check("size_budget", points=2, summary="the image adds at most 280 MB to its final base image",
                concept="An image's size is the sum of its layers over the base; each layer is what one step "
                        "added, and removing a file in a later step does not shrink an earlier layer.",
                problem="Your image: {found}. The largest layers in the table above are where to look.",
                fix="Ship only the runtime: a multi-stage venv build of requirements.txt (with --no-deps), no "
                    "model, no build tools, no torch; the layer table above shows where the megabytes are.",
                section="6. Multi-stage builds", requires=("builds",))
def check_size_budget(ctx: OptimizeContext):
    return size_budget(ctx.analysis)


@exercise.check("cache_friendly", points=1, summary="a change to app code only reuses every dependency layer",
                concept="The build cache reuses a step only while nothing it depends on has changed; the order of"
                        " the steps decides how much a small code change rebuilds.",
                problem="When the grader changed only the application code: {found}.",
                fix="Copy requirements.txt (or bind-mount it) and install before copying app/: then a code change "
                    "rebuilds only the last layers and every dependency layer comes from the cache.",
                section="3. Layer order and the build cache", requires=("builds",))
def check_cache_friendly(ctx: OptimizeContext):
    rebuild = rebuild_after_code_change(ctx, CODE_FILE)
    rerun = [s.instruction for s in rebuild.steps if static.DEPENDENCY_INSTALL.search(s.instruction) and not s.cached]
    before = list(ctx.analysis.diff_ids)
    after = ctx.client.images.get(rebuild.image_id).attrs["RootFS"]["Layers"]
    same = next((i for i, (a, b) in enumerate(zip(before, after)) if a != b), min(len(before), len(after)))
    # BuildKit's own cache verdict per step is the evidence: on a shared engine a cache hit may
    # come from another build's record of the same step, whose layer digest differs (file times).
    redone = [s.instruction for s in rebuild.steps
              if not s.cached and s.instruction.upper().startswith("COPY --FROM")]
    evidence: dict[str, Any] = {"layers_reused": same, "layers": len(after), "reinstalled": rerun, "rebuilt_dependency_layers": redone}
    if rerun:
        fail(f"after changing only {CODE_FILE}, `{rerun[0]}` ran again ({same} of {len(after)} layers reused): "
             f"something copied before it brings in the application code", **evidence)
    if redone:
        fail(f"after changing only {CODE_FILE}, the layer with the Python packages (`{redone[0]}`) was made "
             f"again ({same} of {len(after)} layers reused)", **evidence)
    return passed(f"after changing only {CODE_FILE}, {same} of {len(after)} layers were reused, every dependency "
                  f"layer among them", **evidence)


@exercise.check("dockerignore", points=1,
                summary=".env, .git/, .venv/ and __pycache__/ planted in the build context do not reach the image",
                concept="Everything in the build context is sent to the builder and can end up in the image; "
                        ".dockerignore decides what is never sent (secrets, history, local environments).",
                problem=("Planted in the build context, {reached} reached your image: your .dockerignore lets it "
                         "through, and a COPY brings it in.",
                         "In your build, {found}."),
                fix="List what must never be sent to the builder in .dockerignore: `**/.env`, `**/.git`, "
                    "`**/.venv`, `**/__pycache__` (or allow only what the Dockerfile copies: `*` then `!app/`, "
                    "`!requirements.txt`).",
                section="5. `.dockerignore`: keep the build context small and clean", requires=("builds",))
def check_dockerignore(ctx: OptimizeContext):
    token = f"genai-grader-canary-{ctx.session.id[:12]}"
    copy = ctx.session.tmpdir() / "workspace"
    shutil.copytree(ctx.workspace, copy, symlinks=True)
    planted = canaries(token)
    for rel, content in planted.items():
        path = copy / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    build = ctx.session.build(copy, dockerfile=copy / ctx.dockerfile_name, no_cache=False)
    if not build.ok:
        fail(f"with canaries planted in the build context the build failed:\n{build.failure_summary()}")
    names = sorted({_planted_name(p) for p in planted})
    layers = ctx.client.images.get(build.image_id).attrs["RootFS"]["Layers"]
    if list(layers) == list(ctx.analysis.diff_ids):
        return passed(f"with {', '.join(names)} planted in the build context, the image is layer for layer the "
                      f"same: none of them reached it", planted=sorted(planted))
    found = analyse(ctx.client, build.built_id, ctx.parsed, token=token.encode()).token_hits
    if found:
        reached = sorted({_planted_name(path) for path, _ in found})
        shown = "; ".join(f"{path} (from `{instruction}`)" for path, instruction in found[:4])
        fail(f"{', '.join(reached)} planted in the build context reached the image: {shown}; expected "
             f".dockerignore to keep them out of the context", reached=reached, files=[p for p, _ in found])
    return passed(f"with {', '.join(names)} planted in the build context, none of them reached the image",
                  planted=sorted(planted))


def _command(attrs: dict) -> list[str]:
    config = attrs.get("Config") or {}
    return list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])


@exercise.check("dev_target", points=1,
                summary="`--target development` builds an image with the dev tools of requirements-dev.txt whose "
                        "uvicorn reloads; the default target has neither",
                concept="One Dockerfile can hold a development stage next to production: the last stage is what a"
                        " plain build makes, a named stage is built on request.",
                problem=("Your default target ships {shipped}.",
                         "Your default target's command is {default_command}.",
                         "In your Dockerfile, {found}."),
                fix="Add a stage `FROM ... AS development` that installs requirements-dev.txt (watchfiles: what "
                    "`uvicorn --reload` watches with) and runs uvicorn with --reload, and keep the production stage "
                    "last: the last stage is what a plain `docker build` makes.",
                section="6. Multi-stage builds", requires=("builds",))
def check_dev_target(ctx: OptimizeContext):
    tools = ctx.dev_requirements
    stage = ctx.parsed.stage_named(DEV_TARGET)
    if stage is None:
        fail(f"no stage is named {DEV_TARGET} (FROM ... AS {DEV_TARGET}), so `docker build --target {DEV_TARGET}` "
             f"has nothing to build; stages: {', '.join(s.label for s in ctx.parsed.stages)}")
    if ctx.parsed.final_stage.index == stage.index:
        fail(f"the {DEV_TARGET} stage is the last one, so a plain `docker build` ships the dev tools; expected "
             f"production last (the default target)")
    build = ctx.session.build(ctx.workspace, dockerfile=ctx.workspace / ctx.dockerfile_name, target=DEV_TARGET,
                              no_cache=False)
    if not build.ok:
        fail(f"`docker build --target {DEV_TARGET}` failed:\n{build.failure_summary()}")
    dev_command = _command(ctx.client.images.get(build.image_id).attrs)
    evidence: dict[str, Any] = {"dev_command": dev_command, "dev_tools": tools}
    if "uvicorn" not in " ".join(dev_command) or "--reload" not in dev_command:
        fail(f"the {DEV_TARGET} image runs {dev_command or 'nothing'}; expected uvicorn with --reload", **evidence)
    in_dev = ctx.python_probe(build.built_id, DISTRIBUTIONS_PROBE, "the dev tools", json.dumps(tools))
    missing = [name for name in tools if not in_dev.get(name)]
    if missing:
        fail(f"{', '.join(missing)} (from {DEV_REQUIREMENTS}) is not installed in the {DEV_TARGET} image; expected "
             f"every dev tool there", **evidence)
    in_default = ctx.python_probe(ctx.image.id, DISTRIBUTIONS_PROBE, "the dev tools", json.dumps(tools))
    shipped = [f"{name} {version}" for name, version in in_default.items() if version]
    default_command = _command(ctx.image.attrs)
    if shipped or "--reload" in default_command:
        found = [f"{', '.join(shipped)} installed"] if shipped else []
        found += ["a reloading command"] if "--reload" in default_command else []
        fail(f"the default target ({ctx.parsed.final_stage.label}) has {' and '.join(found)}; expected the "
             f"production image without dev tools or reload", shipped=shipped, default_command=default_command,
             **evidence)
    reloader = _reloader_line(ctx, build.built_id)
    return passed(f"`--target {DEV_TARGET}` builds; it has {', '.join(f'{n} {in_dev[n]}' for n in tools)} and "
                  f"its uvicorn reloads (\"{reloader}\"); the default target has neither", reloader=reloader,
                  **evidence)


def _reloader_line(ctx: OptimizeContext, image_id: str) -> str:
    """Start the development image as it is (no model: the reloader starts before the app loads)
    and wait for uvicorn's line that names what it watches with."""
    container = ctx.session.run(image_id, network_disabled=True)
    try:
        def started() -> str | None:
            logs = container.logs(stdout=True, stderr=True).decode(errors="replace")
            return next((line.strip() for line in logs.splitlines() if RELOADER_STARTED in line), None)

        def exited() -> str | None:
            if container_state(container).get("Running") or started():  # its last words may be the line
                return None
            return f"it exited:\n{container_logs(container)}"

        try:
            return poll(started, timeout=ctx.options.start_timeout, what=f"the {DEV_TARGET} container's reloader",
                        stopped=exited)
        except WaitFailed as failed:
            fail(f"{failed.message}; expected uvicorn to log \"{RELOADER_STARTED} ...\"",
                 logs=container_logs(container))
    finally:
        container.remove(force=True)


exercise.check("non_root", points=1,
               summary="the image's user is not root and the service process runs with a non-zero uid",
               concept="A process in a container runs as root unless the image says otherwise; the final stage of"
                       " a multi-stage build needs its own user.",
               problem=("Your image sets the user {image_user}, yet a process of the service runs as root: "
                        "{found}.",
                        "In your image, {found}: the server runs with root's powers."),
               fix="Create a user in the final stage and switch to it with USER after the installs (as in "
                   "exercise 03), so the service runs without root's powers.",
               section="6. Multi-stage builds", requires=("builds",))(check_non_root)


@exercise.check("model_external", points=1,
                summary="no model weights are baked into the image; the service reads them from /models",
                concept="Weights baked into an image make every image as big as the model and every model change "
                        "a rebuild; the model belongs on a volume mounted at run time.",
                problem=("Your image holds model files: {models}.",
                         "In your image, {found}."),
                fix="Leave the model out of the image (and of the build context): the service reads it from "
                    "MODEL_DIR=/models, where a read-only volume or bind mount brings it at run time.",
                section="7. Keep the model out of the image", requires=("builds",))
def check_model_external(ctx: OptimizeContext):
    models = ctx.analysis.model_files
    if models:
        shown = "; ".join(f"{path} ({megabytes(size)}, from `{instruction}`)" for path, size, instruction in models[:3])
        fail(f"model weights are baked into the image: {shown}; expected none, the model mounted at "
             f"{DEFAULT_MODEL_DIR} instead", models=[m[0] for m in models])
    model_dir = ctx.image.env.get("MODEL_DIR", DEFAULT_MODEL_DIR)
    if model_dir.rstrip("/") != DEFAULT_MODEL_DIR:
        fail(f"the image sets MODEL_DIR={model_dir}; expected {DEFAULT_MODEL_DIR}, where the model is mounted",
             model_dir=model_dir)
    return passed(f"no model weights in the image's own layers; the service reads its model from {model_dir}")


@exercise.check("embeds_correctly", points=1,
                summary="/embed matches the reference embeddings of the model variant that /info reports, "
                        "cosine >= 0.999 for every reference sentence",
                concept="An optimised image must still compute the same embeddings as the reference: the model "
                        "variant, the tokenizer and the runtime all play a part.",
                problem=("With your image, {found} (model variant {variant}).",
                         "With your image, {found}."),
                fix="Run the service from the given app/ with the model mounted at /models: `docker run -v "
                    "\"$MODELS_DIR:/models:ro\" -p 127.0.0.1:8000:8000 <image>`, then compare POST /embed with "
                    "models/all-MiniLM-L6-v2/reference.json.",
                section="7. Keep the model out of the image", requires=("builds",))
def check_embeds_correctly(ctx: OptimizeContext):
    container, took = ctx.service
    port = ctx.session.host_port(container, APP_PORT)
    endpoint = Endpoint(f"http://127.0.0.1:{port}", ctx.options.http_timeout)
    evidence = check_reference_embeddings(endpoint, ctx.environment.models_dir)
    return passed(f"all {evidence['sentences']} reference sentences, one request each, match the "
                  f"{evidence['variant']} reference (lowest cosine {evidence['min_cosine']:.5f}); the service was "
                  f"ready after {took:.1f} s", ready_after_s=round(took, 2), **evidence)
