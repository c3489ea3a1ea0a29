"""Does Dockerfile.gpu serve on the CPU where there is no GPU, and on CUDA where there is one?"""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest

from tests.helpers import docker_build
from tests.service.dockerkit import min_cosine_to_reference, remove, run_service, wait_ready

pytestmark = [pytest.mark.docker, pytest.mark.slow]
GPU_CPU_IMAGE = "genai-course/service-gpu:test-cpu"
GPU_IMAGE = "genai-course/service-gpu:test"
MANAGED_LABEL = ("--label", "org.genai-course.managed=true")


def test_gpu_image_falls_back_to_cpu(docker_client, repo_root, models_dir):
    """Built on python:3.11-slim (no CUDA), does it serve correctly and say CPUExecutionProvider?"""
    docker_build(repo_root / "service", GPU_CPU_IMAGE, "Dockerfile.gpu",
                 "--build-arg", "BASE_IMAGE=python:3.11-slim", *MANAGED_LABEL)
    container = run_service(docker_client, GPU_CPU_IMAGE, models_dir, name_prefix="genai-test-gpu-cpu")
    try:
        wait_ready(container, timeout=90)
        info = httpx.get(f"{container.base_url}/info", timeout=10).json()
        assert info["execution_provider"] == "CPUExecutionProvider"
        assert info["cuda_available"] is False
        _, cosine = min_cosine_to_reference(container.base_url, models_dir)
        assert cosine >= 0.999
        code, out = container.exec_run(["python", "-c", "import onnxruntime, importlib.metadata as m; "
                                        "print(m.version('onnxruntime-gpu'))"])
        assert code == 0, out
    finally:
        remove(container)


def gpu_unavailable_reason(docker_client) -> str | None:
    runtimes = docker_client.info().get("Runtimes", {})
    if "nvidia" not in runtimes:
        return f"no NVIDIA container runtime in this Docker engine (runtimes: {sorted(runtimes)})"
    if shutil.which("nvidia-smi") is None or subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode:
        return "no NVIDIA GPU visible on this host (nvidia-smi)"
    return None


def test_cuda_provider_on_a_gpu_host(docker_client, repo_root, models_dir):
    """On a host with an NVIDIA GPU, does the CUDA image report CUDAExecutionProvider in /info?"""
    import docker

    reason = gpu_unavailable_reason(docker_client)
    if reason:
        pytest.skip(reason)
    docker_build(repo_root / "service", GPU_IMAGE, "Dockerfile.gpu", *MANAGED_LABEL)
    gpus = [docker.types.DeviceRequest(count=1, capabilities=[["gpu"]])]
    container = run_service(docker_client, GPU_IMAGE, models_dir, name_prefix="genai-test-gpu",
                            device_requests=gpus, environment={"MODEL_VARIANT": "fp32"})
    try:
        wait_ready(container, timeout=120)
        info = httpx.get(f"{container.base_url}/info", timeout=10).json()
        assert info["execution_provider"] == "CUDAExecutionProvider" and info["cuda_available"] is True
        _, cosine = min_cosine_to_reference(container.base_url, models_dir)
        assert cosine >= 0.999
    finally:
        remove(container)
