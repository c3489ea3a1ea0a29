"""07-gpu on the engine: the service's Dockerfile.gpu and compose.gpu.yaml score full marks (the GPU
check skipped and not counted: this machine has none), the starter loses points, and every check that
can be tried here has a known-bad fixture that fails exactly it."""

from __future__ import annotations

import pytest

from grader import registry
from grader.exercises.gpu import gpu_runtime
from grader.results import Status
from tests.grader.conftest import table
from tests.grader.grading_kit import assert_fails_exactly, grader_for

pytestmark = pytest.mark.docker
EXERCISE = "07-gpu"

FIXTURES = [
    ("compose_gpu-no-gpu-capability", "compose_gpu", "no reservation names driver nvidia with the gpu capability"),
    ("gpu_dockerfile-cpu-onnxruntime", "gpu_dockerfile", "installs onnxruntime-gpu; the CPU package"),
    ("gpu_dockerfile-base-written-out", "gpu_dockerfile", "written out; expected the CUDA base as a build argument"),
    ("cpu_fallback-forces-cuda", "cpu_fallback", "could not load the model: EXECUTION_PROVIDER=cuda"),
]


@pytest.fixture
def grade07(tmp_path, engine, docker_client, base_options):
    return grader_for(EXERCISE, tmp_path, engine, docker_client, base_options)


@pytest.fixture(scope="module")
def has_gpu(docker_client) -> bool:
    return gpu_runtime(docker_client) is not None


def test_solution_scores_full_marks(grade07, has_gpu):
    """Full marks; without a GPU, cuda_provider is skipped, says why, and counts for nothing."""
    report = grade07()
    assert report.full_marks, table(report)
    cuda = report.check("cuda_provider")
    if has_gpu:
        assert cuda.status is Status.PASSED and report.score == report.max_score == 10
    else:
        assert cuda.status is Status.SKIPPED and cuda.max_points == 0
        assert "no GPU" in cuda.message and "not counted" in cuda.message
        assert report.score == report.max_score == 8


def test_starter_loses_points_with_sensible_messages(grade07, has_gpu):
    report = grade07(solution=False)
    assert "holds no instructions yet" in report.check("gpu_dockerfile").message
    assert "reserves no device" in report.check("compose_gpu").message
    assert report.check("cpu_fallback").message == "skipped: needs gpu_dockerfile, which failed"
    assert report.score == 0
    if not has_gpu:  # not counted, whatever else failed
        assert report.check("cuda_provider").max_points == 0


@pytest.mark.parametrize("fixture, check, fragment", FIXTURES, ids=[f[0] for f in FIXTURES])
def test_fixture_fails_exactly_its_check(grade07, fixture, check, fragment):
    report = grade07(fixture)
    assert_fails_exactly(report, check, fragment)


def test_every_check_has_a_fixture_but_the_gpu_one():
    """cuda_provider needs a GPU to fail or pass; here its skip is proven instead (above)."""
    assert {f[1] for f in FIXTURES} | {"cuda_provider"} == {c.id for c in registry.get(EXERCISE).checks}
