"""A grading box's disk is bounded: a submission that writes past its budget fails its own
grading with a clear message, and the instructor's machine keeps its free space."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from course.instructor import sandbox, settings
from course.instructor.box import JANITOR, box_tmpfs

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
BUDGET = "1g"              # small: the images exercise 02 needs take about 350 MB of it
ATTEMPT_MB = 3072          # what the filler tries to write; harmless even if the bound broke
# A run.sh that fills the disk, as one that took 26 GB of the host's disk did, then runs the service.
FILLER = f"""#!/usr/bin/env bash
dd if=/dev/zero of=zeros bs=1M count={ATTEMPT_MB} 2>&1 | tail -1
dd if=/dev/zero of=/tmp/zeros bs=1M count={ATTEMPT_MB} 2>&1 | tail -1
"""


def test_the_disk_budget_covers_every_writable_place():
    limits = settings.BoxLimits.from_env(disk="1g")
    mounts = box_tmpfs(limits)
    assert {"/home/grader", "/tmp", "/var/tmp", "/run", "/course"} <= set(mounts)
    assert f"size={1 << 30}" in mounts["/home/grader/.local/share/docker"]
    assert all("size=" in options for options in mounts.values())
    with pytest.raises(ValueError, match="smaller than GENAI_BOX_MEMORY"):
        settings.BoxLimits.from_env(memory="2g", disk="2g")
    assert settings.size_bytes("1.5g") == 3 << 29 and settings.size_bytes("512m") == 512 << 20


def _free_bytes(docker_client) -> int | None:
    root = docker_client.info().get("DockerRootDir", "")
    return shutil.disk_usage(root).free if root and os.path.isdir(root) else None


def test_a_disk_filler_fails_its_own_grading_and_the_host_keeps_its_space(docker_client, box_image, tmp_path,
                                                                          no_box_left_behind):
    submission = tmp_path / "02-storage"
    submission.mkdir()
    (submission / "run.sh").write_text(FILLER + (ROOT / "solutions/02-storage/run.sh").read_text())
    before = _free_bytes(docker_client)
    limits = settings.BoxLimits.from_env(disk=BUDGET)
    trusted = sandbox.trusted_grade(sandbox.Submission("filler", "02-storage", submission), limits=limits)
    JANITOR.drain()
    assert trusted.report is None and trusted.points("runs") is None, "past its budget, nothing counts"
    assert trusted.error and "disk budget" in trusted.error and "GENAI_BOX_DISK=1g" in trusted.error, trusted.error
    assert "/home/grader" in trusted.error and "/tmp" in trusted.error, trusted.error
    after = _free_bytes(docker_client)
    if before is not None and after is not None:
        # 2 x 3 GB tried; what the filler could keep is its 2 x 256 MB share, and it is gone with the box
        assert before - after < (ATTEMPT_MB << 20) // 2, f"the host lost {(before - after) >> 20} MB"
