"""Does requirements/locks.py ask PyTorch's CPU index only for the export lock, and only when it
answers, and say what to do when torch's CPU build cannot be found?"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("locks", ROOT / "requirements" / "locks.py")
locks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(locks)


@pytest.fixture
def pip_runs(monkeypatch):
    """The pip commands install() runs, each answered with the status queued in `codes`."""
    runs: list[list[str]] = []
    codes: list[int] = []

    def fake_run(cmd, *args, **kwargs):
        runs.append(cmd)
        return subprocess.CompletedProcess(cmd, codes.pop(0) if codes else 0)

    monkeypatch.setattr(locks.subprocess, "run", fake_run)
    return runs, codes


@pytest.mark.parametrize("reachable", [True, False])
def test_learner_install_is_hash_checked_and_uses_the_cpu_index_when_it_answers(monkeypatch, pip_runs, reachable):
    """Is every lock installed with --require-hashes, with PyTorch's index added only when it
    answers?"""
    runs, _ = pip_runs
    monkeypatch.setattr(locks, "index_reachable", lambda *a, **k: reachable)
    assert locks.install(["course", "export"], python="py") == 0
    (cmd,) = runs
    assert cmd[:4] == ["py", "-m", "pip", "install"] and "--require-hashes" in cmd
    assert [cmd[i + 1] for i, a in enumerate(cmd) if a == "-r"] == [str(locks.lock_file("course")),
                                                                     str(locks.lock_file("export"))]
    assert ("--extra-index-url" in cmd) is reachable


def test_dev_install_never_probes_the_torch_index(monkeypatch, pip_runs):
    """Does installing the dev lock leave PyTorch's index alone?"""
    runs, _ = pip_runs

    def probe(*a, **k):
        raise AssertionError("probed PyTorch's index for the dev lock")

    monkeypatch.setattr(locks, "index_reachable", probe)
    assert locks.install(["dev"], python="py") == 0
    assert "--extra-index-url" not in runs[0]


def test_a_missing_cpu_build_is_explained(monkeypatch, pip_runs, capsys):
    """With PyTorch's index unreachable and pip failing, does the message say why PyPI's torch
    is refused and how to provide the CPU build?"""
    _, codes = pip_runs
    codes.append(1)
    monkeypatch.setattr(locks, "index_reachable", lambda *a, **k: False)
    assert locks.install(["export"], python="py") == 1
    err = capsys.readouterr().err
    assert "unreachable" in err and "CUDA" in err and "TORCH_CPU_INDEX" in err and "PIP_FIND_LINKS" in err


def test_pip_find_links_are_read_from_pips_configuration(monkeypatch):
    """Are the find-links of every pip configuration level (file or environment) collected once?"""
    listing = "global.find-links='/a /b'\n:env:.find-links='/b'\nglobal.cert='/c'\n"
    monkeypatch.setattr(locks.subprocess, "run",
                        lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=listing))
    assert locks.pip_find_links("py") == ["/a", "/b"]
