"""Does `make` use the active conda environment created from environment.yml, and .venv otherwise?

`make -n -B` prints what the targets would run without running it, so no conda is needed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV_NAME = re.search(r"^name:\s*(\S+)", (ROOT / "environment.yml").read_text(), re.M).group(1)

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def make_dry_run(target: str, **conda: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDA_")}
    env.update(conda)
    run = subprocess.run(["make", "-n", "-B", "--no-print-directory", target], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_conda_env_from_environment_yml_is_used(tmp_path):
    """With `conda activate genai-course`, do venv and lab run its python, and build no .venv?"""
    prefix = tmp_path / "envs" / ENV_NAME
    out = make_dry_run("lab", CONDA_PREFIX=str(prefix), CONDA_DEFAULT_ENV=ENV_NAME)
    assert f"{prefix}/bin/python requirements/locks.py install course export" in out
    assert f"{prefix}/bin/python -m course.lab" in out
    assert "-m venv" not in out and ".venv/bin/python" not in out


def test_other_conda_envs_get_the_venv(tmp_path):
    """With conda's base (or any other) environment active, is .venv built and used instead?"""
    prefix = tmp_path / "miniconda3"
    out = make_dry_run("lab", CONDA_PREFIX=str(prefix), CONDA_DEFAULT_ENV="base")
    assert "-m venv .venv" in out and ".venv/bin/python -m course.lab" in out
    assert str(prefix) not in out


def test_without_conda_the_venv_gets_course_and_export_and_tests_add_dev():
    """Does the learner's environment get the course and export locks only, and do the test
    targets add the dev lock?"""
    lab = make_dry_run("lab")
    assert ".venv/bin/python requirements/locks.py install course export" in lab
    assert "install dev" not in lab
    assert ".venv/bin/python requirements/locks.py install dev" in make_dry_run("test-unit")


def test_instructor_lab_keeps_the_instructor_tools():
    """Does `make lab-instructor` start the lab with --instructor, and `make lab` without?"""
    assert "-m course.lab --instructor" in make_dry_run("lab-instructor")
    assert "--instructor" not in make_dry_run("lab")


def test_environment_yml_installs_the_learners_locks():
    """Does environment.yml's pip section install the locks `make venv` installs (course and
    export, hash-checked, torch from PyTorch's CPU index) and not the dev lock?"""
    import yaml

    spec = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_lines = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    locks = [line.split()[1] for line in pip_lines if line.startswith("-r ")]
    assert locks == ["requirements/course.txt", "requirements/export.txt"]
    assert all((ROOT / lock).read_text().count("--hash=sha256:") > 100 for lock in locks)
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip_lines
    assert not [line for line in pip_lines if "dev.txt" in line or line.startswith("-e")]
