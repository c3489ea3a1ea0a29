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
import shutil
from pathlib import Path

import docker.errors

from grader import static
from grader.exercises._common import check_builds, memoized, rebuild_after_code_change
from grader.exercises._service_user import ServiceUserContext, check_non_root
from grader.exercises._images import ImageAnalysis, analyse, megabytes, size_budget
from grader.exercises._service import Endpoint, check_reference_embeddings
from grader.registry import Exercise, fail, passed, register
from grader.wait import container_logs

exercise = register(Exercise("06-optimize"))

APP_PORT = 8000
CODE_FILE = "app/main.py"
DEFAULT_MODEL_DIR = "/models"
FORBIDDEN = ("torch", "transformers")

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

    @property
    def client(self):
        return self.session.client

    @memoized
    def imports(self) -> dict:
        """Which of torch and transformers import in the image (its own python, its own PATH)."""
        last = ""
        for python in ("python3", "python"):
            try:
                container = self.session.run(self.image.id, entrypoint=[python, "-c", IMPORT_PROBE], command=[],
                                             network_disabled=True)
            except docker.errors.APIError as exc:  # no such executable in the image
                last = str(exc.explanation or exc)
                continue
            try:
                try:
                    status = container.wait(timeout=self.options.start_timeout)
                except Exception:
                    fail(f"the import probe did not finish within {self.options.start_timeout:.0f} s")
                output = container.logs(stdout=True, stderr=False).decode(errors="replace").strip()
                if status.get("StatusCode") == 0 and output:
                    return json.loads(output.splitlines()[-1])
                last = container_logs(container)
            finally:
                container.remove(force=True)
        fail(f"python could not run in the image to try the imports: {last[-300:]}")


exercise.context(OptimizeContext)

exercise.check("builds", points=1, summary="the Dockerfile builds",
               hint="Read the build output above: it names the step that failed and why.",
               section="6. Multi-stage builds")(check_builds)


@exercise.check("multi_stage", points=1,
                summary="at least two stages, and no compiler or pip cache in the final image",
                hint="Install the dependencies in a first stage (a virtual environment, e.g. /opt/venv), then start "
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
                hint="Serve with onnxruntime and tokenizers only (requirements.txt): torch and transformers are for "
                     "exporting the model, and cost gigabytes in an image that never uses them.",
                section="2. Avoid shipping a GPU runtime you do not use", requires=("builds",))
def check_no_torch(ctx: OptimizeContext):
    found = {name: where for name, where in ctx.imports.items() if where}
    if found:
        fail(f"{' and '.join(f'{name} imports in the image ({where})' for name, where in found.items())}; expected "
             f"neither", found=found)
    return passed("neither torch nor transformers imports in the image", tried=list(FORBIDDEN))


@exercise.check("size_budget", points=2, summary="the image adds at most 280 MB to its final base image",
                hint="Ship only the runtime: a multi-stage venv build of requirements.txt (with --no-deps), no "
                     "model, no build tools, no torch; the layer table above shows where the megabytes are.",
                section="6. Multi-stage builds", requires=("builds",))
def check_size_budget(ctx: OptimizeContext):
    return size_budget(ctx.analysis)


@exercise.check("cache_friendly", points=1, summary="a change to app code only reuses every dependency layer",
                hint="Copy requirements.txt (or bind-mount it) and install before copying app/: then a code change "
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
                hint="List what must never be sent to the builder in .dockerignore: `**/.env`, `**/.git`, "
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


exercise.check("non_root", points=1,
               summary="the image's user is not root and the service process runs with a non-zero uid",
               hint="Create a user in the final stage and switch to it with USER after the installs (as in "
                    "exercise 03), so the service runs without root's powers.",
               section="6. Multi-stage builds", requires=("builds",))(check_non_root)


@exercise.check("model_external", points=1,
                summary="no model weights are baked into the image; the service reads them from /models",
                hint="Leave the model out of the image (and of the build context): the service reads it from "
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
                hint="Run the service from the given app/ with the model mounted at /models: `docker run -v "
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
