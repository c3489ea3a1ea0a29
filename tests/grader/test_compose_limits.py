"""The grader's default limits never change whether compose accepts a learner's project.

Compose refuses a service that sets one limit in both forms (`pids_limit` and
`deploy.resources.limits.pids`), so the override must write its defaults in the form the
service already uses. Proven on the configuration alone (every form the Compose spec allows,
valid and invalid), then by grading the capstone's reference written in two other forms.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from grader.exercises._compose import GRADER_LIMITS, ComposeConfig, default_limits, grader_override
from tests.grader.grading_kit import grader_for

IMAGE = "python:3.11-slim"
DEPLOY = {"deploy": {"resources": {"limits": {"cpus": "0.5", "memory": "256m"}}}}

# name -> services (learner's file), and whether compose accepts it as written
FORMS: dict[str, tuple[dict, bool]] = {
    "no limits": ({"a": {}}, True),
    "service-level, all three": ({"a": {"mem_limit": "512m", "cpus": 0.5, "pids_limit": 100}}, True),
    "service-level, strings": ({"a": {"mem_limit": "512m", "cpus": "0.5", "pids_limit": "100"}}, True),
    "service-level, memory only": ({"a": {"mem_limit": 536870912}}, True),
    "service-level, pids only": ({"a": {"pids_limit": 64}}, True),
    "deploy, without pids": ({"a": DEPLOY}, True),
    "deploy, pids only": ({"a": {"deploy": {"resources": {"limits": {"pids": 64}}}}}, True),
    "deploy, cpus as a number": ({"a": {"deploy": {"resources": {"limits": {"cpus": 1, "memory": "256m"}}}}}, True),
    "deploy, memory as a number": ({"a": {"deploy": {"resources": {"limits": {"memory": 268435456}}}}}, False),
    "deploy, reservations only": ({"a": {"deploy": {"resources": {"reservations": {"memory": "64m"}}}}}, True),
    "mix across services": ({"a": DEPLOY, "b": {"mem_limit": "1g"}, "c": {}}, True),
    "both forms, equal pids": ({"a": {"pids_limit": 64, "deploy": {"resources": {"limits": {"pids": 64}}}}},
                               True),
    "both forms, distinct pids": ({"a": {"pids_limit": 64, "deploy": {"resources": {"limits": {"pids": 32}}}}},
                                  False),
    "both forms in one service": ({"a": {"mem_limit": "512m", **DEPLOY}}, False),
}


def test_defaults_follow_the_deploy_form():
    """Where a service writes deploy.resources.limits, do the defaults go there, and only what is unset?"""
    extra = default_limits({"deploy": {"resources": {"limits": {"cpus": "0.5", "memory": "256m"}}}})
    assert extra == {"deploy": {"resources": {"limits": {"pids": 512}}}}


def test_defaults_follow_the_service_level_form():
    assert default_limits({"pids_limit": 64}) == {"mem_limit": "1g", "cpus": 1.0}
    assert default_limits({}) == {short: value for _, short, value in GRADER_LIMITS}


def test_a_fully_limited_service_gets_nothing():
    assert default_limits({"mem_limit": "1g", "cpus": "2", "pids_limit": 10}) == {}
    assert default_limits({"deploy": {"resources": {"limits": {"memory": "1g", "cpus": 2, "pids": 10}}}}) == {}


def _config(directory: Path, *files: Path) -> subprocess.CompletedProcess:
    args = [a for f in files for a in ("--file", str(f))]
    return subprocess.run(["docker", "compose", "--project-directory", str(directory), *args,
                           "config", "--format", "json"], capture_output=True, text=True, timeout=60)


@pytest.mark.docker
@pytest.mark.parametrize("form", FORMS, ids=list(FORMS))
def test_override_keeps_composes_verdict(tmp_path, form):
    """Does compose accept the learner's file with the grader's override exactly when it accepts it alone,
    and does every service of an accepted project end up with memory, CPU and process limits?"""
    services, valid = FORMS[form]
    learner = tmp_path / "compose.yaml"
    learner.write_text(yaml.safe_dump({"services": {n: {"image": IMAGE, **s} for n, s in services.items()}}))
    alone = _config(tmp_path, learner)
    assert (alone.returncode == 0) is valid, alone.stderr
    if not valid:
        # compose refuses the learner's own file: the override must not hide that
        override = tmp_path / "grader.json"
        override.write_text(json.dumps({"services": {n: {"pids_limit": 512} for n in services}}))
        assert _config(tmp_path, learner, override).returncode != 0
        return
    config = ComposeConfig(json.loads(alone.stdout), ("compose.yaml",))
    override = tmp_path / "grader.json"
    override.write_text(json.dumps(grader_override(config, {"org.genai-course.test": "1"}, "img")))
    merged = _config(tmp_path, learner, override)
    assert merged.returncode == 0, f"the grader's override broke a valid project:\n{merged.stderr}"
    resolved = ComposeConfig(json.loads(merged.stdout), ("compose.yaml", "grader.json"))
    for name in services:
        limits = resolved.limits(name)
        assert all(limits[k] for k in ("memory", "cpus", "pids")), f"{name}: {limits}"


@pytest.mark.docker
@pytest.mark.parametrize("fixture", ["valid-deploy-limits-without-pids", "valid-service-level-limits"])
def test_capstone_in_another_limits_form_scores(tmp_path, engine, docker_client, base_options, fixture):
    """Is the capstone's reference, with its limits written another valid way, still healthy and limited?"""
    grade = grader_for("08-capstone", tmp_path, engine, docker_client, base_options)
    report = grade(fixture, checks=("stack_healthy", "resource_limits"))
    failed = [f"{c.id}: {c.message}" for c in report.checks if c.status.value != "passed"]
    assert not failed, failed
