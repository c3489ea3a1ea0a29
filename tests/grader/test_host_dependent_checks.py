"""What exercises 05-08 added to the framework, without an engine: checks the host cannot evaluate
(skipped, not counted), session clean-up callbacks, build arguments, and 07's GPU check on a host
without a GPU."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from grader import engine as engine_module
from grader.engine import Engine
from grader.errors import CheckSkipped
from grader.exercises import gpu
from grader.grading import run_checks
from grader.registry import Exercise, passed, skip
from grader.results import ExerciseReport, Status
from grader.runner import GradingSession
from grader.options import GradingOptions


def exercise_with(*outcomes) -> Exercise:
    exercise = Exercise("07-gpu")
    exercise.checks = []
    for n, outcome in enumerate(outcomes):
        def run(ctx, outcome=outcome):
            return passed("ok") if outcome else skip("no GPU here")
        exercise.check(f"c{n}", points=2, summary="s", hint="h", section="S")(run)
    return exercise


def test_a_check_the_host_cannot_evaluate_is_skipped_and_not_counted():
    """skip(): status skipped, worth 0 of 0, and full marks still possible."""
    results = run_checks(exercise_with(True, False).checks, None)
    assert [r.status for r in results] == [Status.PASSED, Status.SKIPPED]
    assert (results[1].points, results[1].max_points, results[1].message) == (0.0, 0.0, "no GPU here")
    report = ExerciseReport("07-gpu", "t", "w", results)
    assert report.full_marks and report.score == report.max_score == 2


def test_a_check_skipped_for_a_failed_prerequisite_still_counts():
    from grader.results import CheckResult
    report = ExerciseReport("x", "t", "w", (CheckResult("a", Status.SKIPPED, 0.0, 2.0, "skipped: needs b"),))
    assert not report.full_marks and report.max_score == 2


class _Listing:
    def list(self, **kwargs):
        return []


def fake_session() -> GradingSession:
    client = SimpleNamespace(containers=_Listing(), networks=_Listing(), volumes=_Listing(), images=_Listing())
    return GradingSession(SimpleNamespace(client=client), GradingOptions())


def test_cleanup_callbacks_run_last_added_first_and_survive_errors():
    """compose down must run before the lock it holds is released, and a failing one must not stop
    the others: is the order LIFO, and the error recorded?"""
    session = fake_session()
    order = []
    session.add_cleanup("release lock", lambda: order.append("lock"))
    session.add_cleanup("compose down", lambda: (order.append("down"), 1 / 0))
    with session:
        pass
    assert order == ["down", "lock"]
    assert session.cleanup_errors and session.cleanup_errors[0].startswith("compose down: division by zero")


def test_build_arguments_reach_the_command_line(monkeypatch, tmp_path):
    seen = {}

    def fake_run(cmd, **kwargs):
        seen["cmd"] = cmd
        return 1, "", False
    monkeypatch.setattr(engine_module, "run_bounded", fake_run)
    Engine(SimpleNamespace()).build(tmp_path, tag="t", labels={}, timeout=5,
                                    build_args={"BASE_IMAGE": "python:3.11-slim"})
    assert seen["cmd"][seen["cmd"].index("--build-arg") + 1] == "BASE_IMAGE=python:3.11-slim"


def test_cuda_provider_is_skipped_without_an_nvidia_runtime():
    """No nvidia runtime: skipped with a message naming what the engine has, whatever the Dockerfile."""
    client = SimpleNamespace(info=lambda: {"Runtimes": {"runc": {}, "io.containerd.runc.v2": {}}})
    ctx = SimpleNamespace(client=client)
    with pytest.raises(CheckSkipped, match=r"no GPU for containers \(the engine's runtimes: runc"):
        gpu.check_cuda_provider(ctx)
    assert gpu.gpu_runtime(SimpleNamespace(info=lambda: {"Runtimes": {"runc": {}, "nvidia": {}}})) == "nvidia"
