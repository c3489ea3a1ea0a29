"""The service against a naive PyTorch server (issue item 7), and the production image's size and start.

Both servers run in this machine's venv, one at a time, on the same inputs (the model's 24
reference sentences, one per request) and with the same load generator:
- throughput: 16 concurrent clients for BENCH_SECONDS (default 10) seconds;
- batch-1 latency: one client, one sentence at a time, p50 and p95;
then the production image: its size, its size over python:3.11-slim, and its cold start
(`docker run` until /health answers 200, median of 3). The naive image is built only with
BENCH_NAIVE_IMAGE=1 (PyTorch from PyPI in a container is a multi-GB CUDA build).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.loadgen import LoadResult, request_bytes, run_load
from dockerkit.http import http
from dockerkit.net import free_port
from dockerkit.wait import WaitFailed, poll as poll_until

ROOT = Path(__file__).resolve().parents[1]
SERVICE = ROOT / "service"
MODELS_DIR = ROOT / "models" / "all-MiniLM-L6-v2"
SERVICE_VENV = ROOT / ".state" / "bench-service"
BASE_IMAGE = "python:3.11-slim"
IMAGE = "genai-course/service:bench"
NAIVE_IMAGE = "genai-course/service-naive:bench"
LABEL = "org.genai-course.managed=true"
CLIENTS = 16
SECONDS = float(os.environ.get("BENCH_SECONDS", "12"))
LATENCY_SECONDS = SECONDS / 2
ROUNDS = 3
GOALS = {"int8": 3.0, "fp32": 1.8}  # throughput over the naive server's
MAX_IMAGE_ADDED_MB = 170
MAX_COLD_START_S = 2.0


def row(name: str, value, unit: str = "", goal: str = "", met: bool | None = None) -> dict:
    return {"name": name, "value": value, "unit": unit, "goal": goal, "met": met}


def wait_health(port: int, timeout: float, process: subprocess.Popen | None = None, interval: float = 0.05) -> None:
    """The kit's readiness wait (loopback requests bypass any proxy), ended early by a server that exited."""
    def exited() -> str | None:
        if process is not None and process.poll() is not None:
            return f"server exited with {process.returncode}"
        return None
    try:
        poll_until(lambda: http("GET", f"http://127.0.0.1:{port}/health", timeout=2).status == 200,
                   timeout=timeout, what=f"/health on port {port}", interval=interval, stopped=exited)
    except WaitFailed as exc:
        raise RuntimeError(exc.message) from None


def service_python() -> str:
    """The environment the image installs (make bench builds it from service/requirements.txt)."""
    python = SERVICE_VENV / "bin" / "python"
    return str(python) if python.exists() else sys.executable


class HostServer:
    """uvicorn in service/ (the service in its image's environment, the naive server in this venv), stopped on exit."""

    def __init__(self, app: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        python = service_python() if app.startswith("app.") else sys.executable
        cmd = [python, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(self.port),
               "--log-level", "warning"]
        self.process = subprocess.Popen(cmd, cwd=SERVICE, env={**os.environ, **env},
                                        stdout=self.log, stderr=subprocess.STDOUT)

    def __enter__(self) -> HostServer:
        try:
            wait_health(self.port, 180, self.process)
        except RuntimeError as exc:
            self.__exit__()
            self.log.seek(0)
            raise RuntimeError(f"{exc}; log:\n{self.log.read().decode(errors='replace')[-2000:]}") from None
        return self

    def __exit__(self, *exc) -> None:
        stop_server(self.process)


def stop_server(process: subprocess.Popen) -> None:
    """TERM, and KILL after 30 s: a server under test never outlives its benchmark."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def is_embedding(body: bytes) -> bool:
    vectors = json.loads(body)
    return len(vectors) == 1 and len(vectors[0]) == 384


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(servers: dict[str, HostServer], sentences: list[str]) -> dict[str, dict]:
    """Interleaved rounds (A, B, C, A, B, C, ...): a shared machine's background load then falls
    on every server alike instead of on whichever happened to run during a busy minute.

    CPU time per request is recorded too: unlike throughput, it hardly depends on how much of
    the machine other processes take (a server with more threads gets a larger share of a busy
    machine, which flatters the naive server's throughput there)."""
    requests = [request_bytes("/embed", {"inputs": s}) for s in sentences]
    totals = {label: LoadResult() for label in servers}
    singles = {label: LoadResult() for label in servers}
    cpu = dict.fromkeys(servers, 0.0)
    for server in servers.values():
        run_load(server.port, requests, clients=4, seconds=2.0)  # warm-up: allocators, thread pools
    for _ in range(ROUNDS):
        for label, server in servers.items():
            before = cpu_seconds(server.process.pid)
            totals[label].add(run_load(server.port, requests, clients=CLIENTS, seconds=SECONDS / ROUNDS,
                                       check=is_embedding))
            cpu[label] += cpu_seconds(server.process.pid) - before
            singles[label].add(run_load(server.port, requests, clients=1, seconds=LATENCY_SECONDS / ROUNDS))
    return {label: {"throughput": totals[label].throughput, "errors": totals[label].errors + singles[label].errors,
                    "cpu_ms": 1000 * cpu[label] / max(1, totals[label].requests),
                    "p50": singles[label].percentile(50) * 1000, "p95": singles[label].percentile(95) * 1000}
            for label in servers}


def host_servers(sentences: list[str]) -> list[dict]:
    offline = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as data, ExitStack() as stack:
        service_env = {"MODEL_DIR": str(MODELS_DIR), "DATA_DIR": data, "API_TOKEN_FILE": f"{data}/no-token"}
        servers = {"naive (torch)": ("naive.main:app", offline),
                   "service int8": ("app.main:app", {**service_env, "MODEL_VARIANT": "int8"}),
                   "service fp32": ("app.main:app", {**service_env, "MODEL_VARIANT": "fp32"})}
        running = {label: stack.enter_context(HostServer(app, env)) for label, (app, env) in servers.items()}
        print(f"bench: {len(running)} servers: {ROUNDS} rounds of {CLIENTS} clients for {SECONDS / ROUNDS:.0f} s "
              f"each, then batch-1 latency", file=sys.stderr, flush=True)
        results = measure(running, sentences)
    rows = []
    naive = results["naive (torch)"]["throughput"]
    for label, r in results.items():
        rows.append(row(f"{label}: throughput, {CLIENTS} clients", r["throughput"], "req/s"))
        rows.append(row(f"{label}: server CPU per request, {CLIENTS} clients", r["cpu_ms"], "ms"))
        rows.append(row(f"{label}: batch-1 latency p50", r["p50"], "ms"))
        rows.append(row(f"{label}: batch-1 latency p95", r["p95"], "ms"))
        if r["errors"]:
            rows.append(row(f"{label}: failed or wrong answers", r["errors"], "requests", "0", False))
    for variant, goal in GOALS.items():
        ratio = results[f"service {variant}"]["throughput"] / naive
        rows.append(row(f"service {variant} / naive throughput", ratio, "x", f">= {goal}", ratio >= goal))
        saving = results["naive (torch)"]["cpu_ms"] / results[f"service {variant}"]["cpu_ms"]
        rows.append(row(f"naive / service {variant} CPU per request (context)", saving, "x"))
    return rows


def docker(*args: str, timeout: float = 1800) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "DOCKER_BUILDKIT": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"docker {args[0]} failed: {proc.stderr.strip()[-1500:]}")
    return proc.stdout.strip()


def image_size_mb(image: str) -> float:
    return int(docker("image", "inspect", "-f", "{{.Size}}", image)) / 1e6


def cold_start(image: str) -> float:
    """Seconds from `docker run` to the first 200 from /health (the model mounted read-only)."""
    port = free_port()
    started = time.perf_counter()
    container = docker("run", "-d", "--label", LABEL, "-p", f"127.0.0.1:{port}:8000",
                       "-v", f"{MODELS_DIR}:/models:ro", "--tmpfs", "/data:uid=1001,gid=1002", image)
    try:
        wait_health(port, 60, interval=0.01)
        return time.perf_counter() - started
    finally:
        docker("rm", "-f", container)


def image_rows() -> list[dict]:
    docker("build", "-q", "--label", LABEL, "-t", IMAGE, str(SERVICE))
    size, base = image_size_mb(IMAGE), image_size_mb(BASE_IMAGE)
    added = size - base
    starts = [cold_start(IMAGE) for _ in range(3)]
    rows = [row("production image size", size, "MB"),
            row(f"production image over {BASE_IMAGE}", added, "MB", f"<= {MAX_IMAGE_ADDED_MB}",
                added <= MAX_IMAGE_ADDED_MB),
            row("cold start (docker run -> /health 200), median of 3", statistics.median(starts), "s",
                f"<= {MAX_COLD_START_S}", statistics.median(starts) <= MAX_COLD_START_S)]
    if os.environ.get("BENCH_NAIVE_IMAGE") == "1":
        docker("build", "-q", "--label", LABEL, "-f", str(SERVICE / "Dockerfile.naive"), "-t", NAIVE_IMAGE,
               str(SERVICE), timeout=3600)
        rows.append(row("naive image (Dockerfile.naive) size", image_size_mb(NAIVE_IMAGE), "MB"))
    else:
        rows.append(row("naive image (Dockerfile.naive) size", "not built (BENCH_NAIVE_IMAGE=1 builds it)"))
    return rows


def gpu_rows(sentences: list[str]) -> list[dict]:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return [row("service fp32 on CUDA", "no GPU here (needs onnxruntime-gpu and an NVIDIA GPU)")]
    with tempfile.TemporaryDirectory() as data:
        env = {"MODEL_DIR": str(MODELS_DIR), "DATA_DIR": data, "API_TOKEN_FILE": f"{data}/no-token",
               "MODEL_VARIANT": "fp32", "EXECUTION_PROVIDER": "cuda"}
        with HostServer("app.main:app", env) as server:
            result = measure({"cuda": server}, sentences)["cuda"]
    return [row(f"service fp32 on CUDA: throughput, {CLIENTS} clients", result["throughput"], "req/s"),
            row("service fp32 on CUDA: batch-1 latency p50", result["p50"], "ms")]


def load_row(when: str) -> dict:
    # Context for every number above: this benchmark shares the machine's CPUs with whatever runs.
    return row(f"host load average (1 min) {when}, {os.cpu_count()} CPUs", os.getloadavg()[0])


def run() -> list[dict]:
    sentences = json.loads((MODELS_DIR / "reference.json").read_text())["sentences"]
    rows = [load_row("before")] + host_servers(sentences) + gpu_rows(sentences) + image_rows()
    return rows + [load_row("after")]
