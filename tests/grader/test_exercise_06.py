"""06-optimize on the engine: the service's Dockerfile and .dockerignore score full marks, the starter
loses points, every check has a known-bad fixture (an edit of the service's Dockerfile that keeps its
dependency layers, so builds take seconds) that fails exactly it, and a build that fails late is clear."""

from __future__ import annotations

import pytest

from grader import registry
from grader.results import Status
from tests.grader.conftest import assert_fails_exactly, table
from tests.grader.grading_kit import grader_for

pytestmark = pytest.mark.docker
EXERCISE = "06-optimize"

FIXTURES = [
    ("builds-fails-late", "builds", "late failure planted by the fixture"),
    ("multi_stage-build-stage-unused", "multi_stage", "copies nothing from an earlier stage"),
    ("no_torch-stub-package", "no_torch", "torch imports in the image (/opt/venv/lib/python3"),
    ("size_budget-ballast", "size_budget", "expected at most 280 MB over the base"),
    ("cache_friendly-code-before-install", "cache_friendly", "ran again"),
    ("dockerignore-pycache-kept", "dockerignore", "__pycache__/ planted in the build context reached the image"),
    ("dev_target-tools-in-production", "dev_target", "(production) has watchfiles"),
    ("non_root-no-user", "non_root", "the image's user is not set, so root"),
    ("model_external-baked-weights", "model_external", "/opt/model/model.onnx (2.0 MB"),
    ("embeds_correctly-cls-pooling", "embeds_correctly", "has cosine"),
]


@pytest.fixture
def grade06(tmp_path, engine, docker_client, base_options):
    return grader_for(EXERCISE, tmp_path, engine, docker_client, base_options)


def test_solution_scores_full_marks_and_shows_its_layers(grade06):
    """Does the service's own image pass, with the layer table and the wasted bytes in size_budget?"""
    report = grade06()
    assert report.full_marks, table(report)
    size = report.check("size_budget")
    assert "largest layers" in size.message and "COPY /opt/venv /opt/venv" in size.message
    assert "wasted:" in size.message
    layers = size.evidence["layers"]
    assert layers == sorted(layers, key=lambda layer: layer["size_mb"], reverse=True)
    assert size.evidence["added_mb"] <= 280
    assert report.check("embeds_correctly").evidence["sentences"] == 24
    dev = report.check("dev_target")
    assert "--reload" in dev.evidence["dev_command"] and "using WatchFiles" in dev.evidence["reloader"], dev.message


def test_starter_loses_points_with_sensible_messages(grade06):
    """Does the working single-stage starter keep the points it earns and lose the others, each said why?"""
    report = grade06(solution=False)
    failed = {c.id for c in report.checks if c.status is Status.FAILED}
    assert failed == {"multi_stage", "dockerignore", "non_root", "dev_target"}, table(report)
    assert "the Dockerfile has a single stage" in report.check("multi_stage").message
    assert "no stage is named development" in report.check("dev_target").message
    assert ".env" in report.check("dockerignore").message and "COPY . ." in report.check("dockerignore").message
    assert report.score == 7


@pytest.mark.parametrize("fixture, check, fragment", FIXTURES, ids=[f[0] for f in FIXTURES])
def test_fixture_fails_exactly_its_check(grade06, fixture, check, fragment):
    report = grade06(fixture)
    assert_fails_exactly(report, check, fragment)


def test_wasted_bytes_count_copies_beyond_the_first(grade06):
    """A file written in one layer and deleted in the next: are its bytes wasted, counted once?"""
    report = grade06("size_budget-ballast")
    evidence = report.check("size_budget").evidence
    assert evidence["wasted_mb"] < 1          # the ballast is there once: large, not wasted
    assert any("ballast" in layer["instruction"] for layer in evidence["layers"][:2])


def test_every_check_has_a_fixture():
    assert {f[1] for f in FIXTURES} == {c.id for c in registry.get(EXERCISE).checks}
