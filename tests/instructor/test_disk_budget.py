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


def test_a_dockerfile_that_fills_the_disk_fails_its_build_and_the_reference_builds(docker_client, box_image,
                                                                                  tmp_path, no_box_left_behind):
    """The engine's data is on the budget too: a RUN step writing zeros fails the build, while the reference
    (whose build bind-mounts from there) builds and earns full marks in the same budget."""
    from grader.workspace import materialize

    limits = settings.BoxLimits.from_env(disk=BUDGET)
    reference = materialize("01-first-image", tmp_path / "reference", with_solution=True)
    filler = materialize("01-first-image", tmp_path / "filler", with_solution=True)
    dockerfile = (filler / "Dockerfile").read_text().replace(
        "\nCMD", f"\nRUN dd if=/dev/zero of=/zeros bs=1M count={ATTEMPT_MB}\nCMD", 1)
    assert "RUN dd" in dockerfile
    (filler / "Dockerfile").write_text(dockerfile)
    good = sandbox.trusted_grade(sandbox.Submission("reference", "01-first-image", reference), limits=limits)
    bad = sandbox.trusted_grade(sandbox.Submission("filler", "01-first-image", filler), limits=limits)
    JANITOR.drain()
    assert good.report and good.report["score"] == good.report["max_score"], good.error or good.report
    if bad.report is not None:  # the build failed and gave its space back: the grader says why
        builds = next(c for c in bad.report["checks"] if c["id"] == "builds")
        assert builds["status"] == "failed" and "no space left on device" in builds["message"].lower(), builds
    else:                       # or the engine's disk was still full at the end
        assert bad.error and "disk budget" in bad.error, bad.error
