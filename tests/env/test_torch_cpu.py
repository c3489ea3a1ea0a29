"""Does the export lock resolve, against the public package indexes alone, to torch's CPU build
with no nvidia-* package?

pip runs --isolated: no pip.conf, no PIP_* variable, so no local wheel folder, mirror or
constraint of this machine takes part; only the indexes named here answer.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
EXPORT_LOCK = ROOT / "requirements" / "export.txt"
PYPI = "https://pypi.org/simple"

# About 80 s: pip downloads every locked wheel to check its hash.
pytestmark = pytest.mark.slow

_spec = importlib.util.spec_from_file_location("locks", ROOT / "requirements" / "locks.py")
locks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(locks)


def _cert_options() -> list[str]:
    # --isolated drops pip's configured CA bundle; behind a TLS-intercepting proxy it is needed.
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.rsplit(".", 1)[-1] == "cert":
            return ["--cert", value.strip().strip("'\"")]
    return []


def pip_resolve(*args: str) -> subprocess.CompletedProcess:
    """`pip install --dry-run --report -` against PYPI (plus what args add) and nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    cmd = [sys.executable, "-m", "pip", "install", "--isolated", "--dry-run", "--ignore-installed",
           "--quiet", "--disable-pip-version-check", "--report", "-", "--index-url", PYPI,
           *_cert_options(), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=ROOT)


def resolved(run: subprocess.CompletedProcess) -> dict[str, dict]:
    assert run.returncode == 0, run.stderr[-3000:]
    return {canonicalize_name(item["metadata"]["name"]): item["metadata"]
            for item in json.loads(run.stdout)["install"]}


def nvidia(names) -> list[str]:
    return sorted(n for n in names if n.startswith("nvidia"))


@pytest.fixture(scope="module")
def pypi():
    if not locks.index_reachable(PYPI):
        pytest.skip(f"{PYPI} is unreachable: there is no package index to resolve against")


@pytest.fixture(scope="module")
def linux_x86_64():
    if sys.platform != "linux" or platform.machine() != "x86_64":
        pytest.skip("PyPI's torch pulls nvidia packages on Linux x86_64 only")


def test_pypi_torch_for_linux_is_the_cuda_build(pypi, linux_x86_64):
    """Would the resolution below catch the CUDA build: does plain `torch==2.13.0` from PyPI
    bring nvidia packages? (The failure fixture: if PyPI ever ships a CPU build, this says so.)"""
    torch = next(Requirement(line.split(";")[0].strip(" \\")) for line in EXPORT_LOCK.read_text().splitlines()
                 if line.startswith("torch==") and "+cpu" in line)
    public = next(iter(torch.specifier)).version.split("+")[0]
    assert nvidia(resolved(pip_resolve(f"torch=={public}")))


def test_export_lock_resolves_to_cpu_torch(pypi, tmp_path):
    """Resolved from the public indexes alone, is torch the +cpu build with no nvidia package?
    Where PyTorch's index cannot be reached, PyPI alone must refuse the lock's torch rather than
    substitute its CUDA build, and every other package must come from PyPI with no nvidia
    package in its dependencies; the test then skips, saying torch itself was not resolved."""
    if locks.index_reachable(locks.TORCH_CPU_INDEX):
        report = resolved(pip_resolve("--require-hashes", "-r", str(EXPORT_LOCK),
                                      "--extra-index-url", locks.TORCH_CPU_INDEX))
        assert not nvidia(report)
        assert report["torch"]["version"].endswith("+cpu"), report["torch"]["version"]
        return

    refused = pip_resolve("--require-hashes", "-r", str(EXPORT_LOCK))
    assert refused.returncode != 0
    assert "No matching distribution found for torch==" in refused.stderr, refused.stderr[-3000:]

    # The rest of the lock, hashes checked, each package alone (torch is not there to depend on).
    lines = EXPORT_LOCK.read_text().split("\n")
    rest, skip = [], False
    for line in lines:
        if line and not line[0].isspace():
            skip = line.startswith("torch==")
        if not skip:
            rest.append(line)
    (tmp_path / "rest.txt").write_text("\n".join(rest))
    report = resolved(pip_resolve("--require-hashes", "--no-deps", "-r", str(tmp_path / "rest.txt")))
    assert "torch" not in report and len(report) > 20
    # Closed: what those packages depend on (on Linux, Python 3.11) is in the lock, torch included,
    # so no nvidia package can come in through them.
    env = {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
           "python_version": "3.11", "extra": ""}
    locked = set(report) | {"torch"}
    for meta in report.values():
        for dep in map(Requirement, meta.get("requires_dist", [])):
            if dep.marker is None or dep.marker.evaluate(env):
                assert canonicalize_name(dep.name) in locked, f"{meta['name']} needs {dep}, not in the lock"
    pytest.skip(f"{locks.TORCH_CPU_INDEX} is unreachable: PyPI alone refused the lock's torch (no CUDA "
                "substitution) and resolved the rest of the lock with no nvidia package; torch's own "
                "dependencies were not resolved")
