"""07-gpu: Dockerfile.gpu (onnxruntime-gpu on a CUDA base taken as a build argument) and
compose.gpu.yaml (a GPU reservation for the server).

Static checks read both files; cpu_fallback builds Dockerfile.gpu with a CPU base
(`--build-arg <its base ARG>=python:3.11-slim`) and the service must still serve,
on CPUExecutionProvider. cuda_provider needs a GPU: on a host whose engine has no
nvidia runtime it is skipped and not counted (its notebook cell is not graded).
"""

from __future__ import annotations

import re
from typing import Any

import docker.types
import yaml

from grader.exercises._common import DockerfileContext, memoized
from grader.exercises._compose import BASE_FILE, SERVER, ComposeProject
from grader.exercises._compose_config import grading_variables
from grader.exercises._service import Endpoint, check_reference_embeddings, wait_until_ready
from grader.registry import Exercise, fail, passed, register, skip

exercise = register(Exercise("07-gpu"))

GPU_FILE = "compose.gpu.yaml"
CPU_BASE = "python:3.11-slim"
APP_PORT = 8000
CPU_PROVIDER, CUDA_PROVIDER = "CPUExecutionProvider", "CUDAExecutionProvider"
ORT_GPU = re.compile(r"\bonnxruntime[-_]gpu\b", re.IGNORECASE)
VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
# checks whose points depend on the host: not graded in the notebook (nbgrader's points are fixed)
HOST_DEPENDENT = frozenset({"cuda_provider"})


class GpuContext(DockerfileContext):
    dockerfile_name = "Dockerfile.gpu"

    @memoized
    def gpu_services(self) -> dict[str, Any]:
        """The services of compose.yaml + compose.gpu.yaml as compose merges them (the GPU file alone
        where there is no compose.yaml)."""
        if not (self.workspace / GPU_FILE).is_file():
            fail(f"there is no {GPU_FILE} in the workspace")
        if (self.workspace / BASE_FILE).is_file():
            project = ComposeProject(self.session, self.workspace, grading_variables(self.environment.models_dir))
            return project.config((BASE_FILE, GPU_FILE)).services
        try:
            data = yaml.safe_load((self.workspace / GPU_FILE).read_text()) or {}
        except yaml.YAMLError as exc:
            fail(f"{GPU_FILE} is not valid YAML: {exc}")
        return (data.get("services") or {}) if isinstance(data, dict) else {}

    @memoized
    def base_argument(self) -> tuple[str, str]:
        """(name, default) of the build argument the final stage's base image comes from."""
        df = self.parsed
        stage = df.external_base()
        names = VARIABLE.findall(stage.base_raw)
        if not names:
            fail(f"the final stage is built FROM {stage.base_raw} (line {stage.from_instruction.line}), written out; "
                 f"expected the CUDA base as a build argument: `ARG BASE_IMAGE=nvidia/cuda:...` before the first "
                 f"FROM, and `FROM ${{BASE_IMAGE}}`", base=stage.base_raw)
        name = names[0]
        if name not in df.global_args:
            fail(f"FROM {stage.base_raw} uses ${name}, which no ARG before the first FROM declares; a FROM only "
                 f"sees the ARGs declared above every stage")
        default = df.global_args[name]
        if not default:
            fail(f"ARG {name} has no default, so a plain build has no base image; expected the CUDA image as "
                 f"its default (e.g. nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04: the pinned onnxruntime-gpu "
                 f"needs CUDA 13)")
        if "cuda" not in default.lower():
            fail(f"ARG {name} defaults to {default}; expected a CUDA image (nvidia/cuda:...-cudnn-runtime-...), "
                 f"with the CPU base given only when asked (--build-arg {name}={CPU_BASE})", default=default)
        return name, default

    def run_service(self, image: str, **kwargs: Any) -> tuple[Any, Endpoint, float]:
        volume = self.session.volume()
        container = self.session.run(image, publish=APP_PORT, volumes={
            str(self.environment.models_dir): {"bind": "/models", "mode": "ro"},
            volume.name: {"bind": "/data", "mode": "rw"}}, **kwargs)
        endpoint = Endpoint(f"http://127.0.0.1:{self.session.host_port(container, APP_PORT)}",
                            self.options.http_timeout)
        took = wait_until_ready(endpoint, timeout=self.options.start_timeout, container=container)
        return container, endpoint, took


exercise.context(GpuContext)


@exercise.check("compose_gpu", points=2, summary="compose.gpu.yaml reserves an nvidia device with capabilities [gpu]",
                concept="Compose gives a service a GPU through a device reservation naming the driver and the gpu"
                        " capability; without it the container sees no GPU at all.",
                problem=("Your compose.gpu.yaml reserves {devices}.",
                         "In your compose.gpu.yaml, {found}."),
                fix="Under the server in compose.gpu.yaml: `deploy: {resources: {reservations: {devices: "
                    "[{driver: nvidia, count: 1, capabilities: [gpu]}]}}}`; run it with `docker compose -f "
                    "compose.yaml -f compose.gpu.yaml up`.",
                section="GPUs in Compose")
def check_compose_gpu(ctx: GpuContext):
    services = ctx.gpu_services
    seen = []
    for name, svc in services.items():
        devices = ((((svc or {}).get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices")
        for device in devices or []:
            capabilities = [str(c) for c in device.get("capabilities") or []]
            seen.append(f"{name}: driver {device.get('driver') or '(none)'}, capabilities {capabilities}")
            if device.get("driver") == "nvidia" and "gpu" in capabilities:
                if name != SERVER:
                    fail(f"the GPU is reserved for {name}; expected it for {SERVER}, which runs the model")
                count = device.get("count", device.get("device_ids") or "all")
                dockerfile = ((svc.get("build") or {}) if isinstance(svc.get("build"), dict) else {}).get("dockerfile")
                note = "" if dockerfile and str(dockerfile).endswith(ctx.dockerfile_name) else \
                    f" (note: the server is not built from {ctx.dockerfile_name} here, so it would run the CPU image)"
                return passed(f"{GPU_FILE} reserves an nvidia GPU ({count}) with capabilities {capabilities} for "
                              f"{name}{note}", device=device)
    if seen:
        fail(f"no reservation names driver nvidia with the gpu capability ({'; '.join(seen)})", devices=seen)
    fail(f"{GPU_FILE} reserves no device for any service; expected deploy.resources.reservations.devices with "
         f"driver nvidia and capabilities [gpu] under {SERVER}")


@exercise.check("gpu_dockerfile", points=2,
                summary="Dockerfile.gpu installs onnxruntime-gpu and takes its CUDA base as a build argument",
                concept="The GPU image differs from the CPU one in its base (CUDA and cuDNN) and in the runtime "
                        "package; making the base a build argument lets the same file build both.",
                problem=("In your Dockerfile.gpu the base is {base_argument}: {found}.",
                         "In your Dockerfile.gpu, {found}."),
                fix="Declare `ARG BASE_IMAGE=nvidia/cuda:<version>-cudnn-runtime-<os>` before the first FROM, "
                    "build FROM ${BASE_IMAGE}, and install onnxruntime-gpu in place of onnxruntime (both provide "
                    "the module onnxruntime: keep only one).",
                section="The GPU image")
def check_gpu_dockerfile(ctx: GpuContext):
    df = ctx.parsed
    name, default = ctx.base_argument
    texts = ["\n".join([ins.rest, *ins.heredocs]) for ins in df.instructions if ins.keyword == "RUN"]
    # a requirements file the Dockerfile names counts as what it installs
    for path in ctx.workspace.glob("requirements*.txt"):
        if path.name in ctx.text:
            texts.append(path.read_text(errors="replace"))
    if not any(ORT_GPU.search(text) for text in texts):
        fail(f"no RUN of {ctx.dockerfile_name} (nor a requirements file it names) installs onnxruntime-gpu; the "
             f"CPU package onnxruntime has no CUDA provider", base_argument=name)
    return passed(f"{ctx.dockerfile_name} installs onnxruntime-gpu and builds FROM ${{{name}}} "
                  f"(default {default})", base_argument=name, default=default)


@exercise.check("cpu_fallback", points=4,
                summary="built with a CPU base, the image serves correctly on a host without a GPU and /info names "
                        "the CPU provider",
                concept="A GPU image must still serve on a machine without a GPU: ONNX Runtime then falls back to"
                        " the CPU provider, if the service lets it.",
                problem=("Your image, built on a CPU base, answered /info with {info}.",
                         "With your image on a CPU base, {found}."),
                fix=f"Build it as the grader does, `docker build -f Dockerfile.gpu --build-arg "
                    f"BASE_IMAGE={CPU_BASE} .`, run it with the model at /models and read its logs: the service "
                    f"must fall back to the CPU (EXECUTION_PROVIDER=auto) where CUDA cannot start.",
                section="ONNX Runtime's execution providers", requires=("gpu_dockerfile",))
def check_cpu_fallback(ctx: GpuContext):
    name, _ = ctx.base_argument
    build = ctx.session.build(ctx.workspace, dockerfile=ctx.workspace / ctx.dockerfile_name,
                              build_args={name: CPU_BASE})
    if not build.ok:
        how = f"did not finish within {ctx.options.build_timeout:.0f} s" if build.timed_out else "failed"
        fail(f"the build with --build-arg {name}={CPU_BASE} {how}; relevant output:\n{build.failure_summary()}")
    container, endpoint, took = ctx.run_service(build.built_id)
    try:
        info = endpoint.json("GET", "/info")
        provider = info.get("execution_provider")
        if provider != CPU_PROVIDER:
            fail(f"/info names the execution provider {provider!r} on a host without a GPU; expected {CPU_PROVIDER}",
                 info=info)
        evidence = check_reference_embeddings(endpoint, ctx.environment.models_dir)
    finally:
        container.remove(force=True)
    return passed(f"built with {name}={CPU_BASE}, the service was ready after {took:.1f} s on {CPU_PROVIDER} and "
                  f"its {evidence['sentences']} reference embeddings match ({evidence['variant']}, lowest cosine "
                  f"{evidence['min_cosine']:.5f})", ready_after_s=round(took, 2), **evidence)


def gpu_runtime(client: Any) -> str | None:
    """The engine's nvidia runtime, if it has one (what `docker run --gpus` needs)."""
    runtimes = (client.info().get("Runtimes") or {})
    return next((name for name in runtimes if "nvidia" in name), None)


@exercise.check("cuda_provider", points=2,
                summary="on a host with a GPU, /info names CUDAExecutionProvider; skipped where there is none",
                concept="A container reaches the GPU through the NVIDIA runtime; ONNX Runtime uses it only when "
                        "the CUDA and cuDNN of the image match what onnxruntime-gpu was built for.",
                problem=("On this GPU host your image's /info says {info}.",
                         "On this GPU host, {found}."),
                fix="Check `docker run --rm --gpus all <image> nvidia-smi` first; then the CUDA and cuDNN versions "
                    "of the base image must be the ones onnxruntime-gpu was built for.",
                section="How a container reaches a GPU")
def check_cuda_provider(ctx: GpuContext):
    # No prerequisite: on a host without a GPU this check is never counted, whatever else failed.
    runtime = gpu_runtime(ctx.client)
    if runtime is None:
        runtimes = ", ".join(ctx.client.info().get("Runtimes") or {}) or "none"
        skip(f"skipped, not counted: this host has no GPU for containers (the engine's runtimes: {runtimes}; no "
             f"nvidia runtime), so CUDAExecutionProvider cannot be tried here; grade on a GPU host to check it",
             runtimes=runtimes)
    check_gpu_dockerfile(ctx)  # what gpu_dockerfile requires, failing here with its message
    build = ctx.build
    if not build.ok:
        fail(f"Dockerfile.gpu does not build with its default base:\n{build.failure_summary()}")
    container, endpoint, took = ctx.run_service(build.image_id, device_requests=[
        docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])])
    try:
        info = endpoint.json("GET", "/info")
    finally:
        container.remove(force=True)
    if info.get("execution_provider") != CUDA_PROVIDER:
        fail(f"with a GPU ({runtime} runtime), /info names {info.get('execution_provider')!r} (providers "
             f"{info.get('providers')}); expected {CUDA_PROVIDER}", info=info)
    return passed(f"with the GPU, /info names {CUDA_PROVIDER} (ready after {took:.1f} s)", info=info)
