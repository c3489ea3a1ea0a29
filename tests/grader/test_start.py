"""The learner's path without an engine: `grader start` seeds the files an exercise continues from the
learner's own earlier files (in preference order) else the given checkpoint, never over a file, and
says where each came from; grading fills a missing input from its checkpoint in a copy, never in the
learner's folder; run.sh's image is the reference one where the learner has no earlier Dockerfile."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from course.instructor import source
from grader import registry, workspace
from grader.grading import Environment, own_service_image, with_checkpoints
from grader.options import REPO_ROOT, GradingOptions

MINE = "# my own Dockerfile of exercise {}\nFROM python:3.11-slim\n"


def learner(root: Path, exercise_id: str, files: dict[str, str] | None = None) -> Path:
    folder = root / exercise_id
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        (folder / name).write_text(text)
    return folder


def test_start_prefers_the_learners_latest_earlier_file(tmp_path):
    """Does 05's Dockerfile start from the learner's 03, and from 01 where there is no 03?"""
    learner(tmp_path, "01-first-image", {"Dockerfile": MINE.format("01")})
    learner(tmp_path, "03-permissions", {"Dockerfile": MINE.format("03")})
    ws = learner(tmp_path, "05-compose")
    seeds = workspace.start("05-compose", ws)
    assert (ws / "Dockerfile").read_text() == MINE.format("03")
    assert "Dockerfile: started from your 03-permissions/Dockerfile" in [s.notice for s in seeds]
    other = learner(tmp_path / "b", "05-compose")
    learner(tmp_path / "b", "01-first-image", {"Dockerfile": MINE.format("01")})
    workspace.start("05-compose", other)
    assert (other / "Dockerfile").read_text() == MINE.format("01")


def test_start_falls_back_to_the_checkpoint_and_says_why(tmp_path):
    """Without an earlier file of the learner's (none, or one still as the course shipped it), is the
    checkpoint copied, and does the notice name it and the reason?"""
    learner(tmp_path, "03-permissions", {"Dockerfile": workspace.checkpoint("03-permissions", "Dockerfile")
                                         .read_text()})
    ws = learner(tmp_path, "06-optimize")
    seeds = {s.name: s for s in workspace.start("06-optimize", ws)}
    checkpoint = REPO_ROOT / "checkpoints/06-optimize/Dockerfile"
    assert (ws / "Dockerfile").read_bytes() == checkpoint.read_bytes()
    assert not seeds["Dockerfile"].yours
    assert seeds["Dockerfile"].notice == (
        "Dockerfile: started from the given checkpoint checkpoints/06-optimize/Dockerfile (your "
        "03-permissions/Dockerfile is still the starter; you have no 01-first-image/Dockerfile)")
    assert seeds["app"].notice == "app: the service's code, copied from service/app"


def test_start_never_overwrites_and_changes_nothing_the_second_time(tmp_path):
    learner(tmp_path, "05-compose", {"compose.yaml": "services: {}\n"})
    learner(tmp_path, "06-optimize", {"Dockerfile": MINE.format("06")})
    ws = learner(tmp_path, "08-capstone", {"Dockerfile": "# mine, already here\n"})
    first = {s.name: s.notice for s in workspace.start("08-capstone", ws)}
    assert (ws / "Dockerfile").read_text() == "# mine, already here\n"
    assert first["Dockerfile"] == "Dockerfile: already there, left as it is"
    assert (ws / "compose.yaml").read_text() == "services: {}\n"
    assert (ws / ".dockerignore").read_bytes() == workspace.checkpoint("08-capstone", ".dockerignore").read_bytes()
    files = {p: p.read_bytes() for p in ws.rglob("*") if p.is_file()}
    again = workspace.start("08-capstone", ws)
    assert {s.notice for s in again} == {f"{name}: already there, left as it is"
                                         for name in workspace.STARTS_FROM["08-capstone"]}
    assert {p: p.read_bytes() for p in ws.rglob("*") if p.is_file()} == files


def test_start_finds_nbgraders_fetched_assignments(tmp_path):
    """nbgrader fetches each assignment into <course>/<assignment id>/: siblings, like exercises/."""
    course = tmp_path / "docker-for-ai"
    learner(course, "05-compose", {"compose.yaml": "# my compose of 05\nservices: {}\n"})
    ws = learner(course, "07-gpu")
    seeds = {s.name: s for s in workspace.start("07-gpu", ws)}
    assert seeds["compose.yaml"].yours and (ws / "compose.yaml").read_text().startswith("# my compose of 05")
    assert not seeds["Dockerfile.gpu"].yours


def test_start_command_prints_one_notice_per_file(tmp_path):
    ws = learner(tmp_path, "05-compose")
    run = subprocess.run([sys.executable, "-m", "grader", "start", "05-compose", "--workspace", str(ws)],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert [line.split(":")[1].strip() for line in run.stdout.splitlines()] == [
        "app", "requirements.txt", "requirements-dev.txt", "Dockerfile"]
    missing = subprocess.run([sys.executable, "-m", "grader", "start", "05-compose", "--workspace",
                              str(tmp_path / "nowhere")], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=120)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_materialize_starts_afresh_from_the_checkpoints(tmp_path):
    ws = workspace.materialize("08-capstone", tmp_path / "ws")
    for name in workspace.STARTS_FROM["08-capstone"]:
        assert (ws / name).read_bytes() == workspace.checkpoint("08-capstone", name).read_bytes()


class FakeSession:
    """What the learner's path asks of a grading session without an engine: folders, options."""

    def __init__(self, tmp_path: Path, **options) -> None:
        self.root, self.options = tmp_path, replace(GradingOptions(), **options)

    def tmpdir(self) -> Path:
        path = self.root / f"tmp{len(list(self.root.glob('tmp*')))}"
        path.mkdir(parents=True)
        return path


def test_grading_takes_a_missing_input_from_its_checkpoint_in_a_copy(tmp_path):
    """05 without a Dockerfile: graded on a copy holding the checkpoint (on the image in use), the
    learner's folder untouched, and a notice saying so."""
    ws = workspace.materialize("05-compose", tmp_path / "learner" / "05-compose", with_solution=True)
    (ws / "Dockerfile").unlink()
    before = sorted(p.relative_to(ws) for p in ws.rglob("*"))
    graded, notices = with_checkpoints(registry.get("05-compose"), ws, FakeSession(tmp_path / "s"),
                                       Environment(service_image="genai-course/service:test"))
    assert graded != ws and sorted(p.relative_to(ws) for p in ws.rglob("*")) == before
    assert "FROM genai-course/service:test" in (graded / "Dockerfile").read_text()
    assert (graded / "compose.yaml").read_bytes() == (ws / "compose.yaml").read_bytes()
    assert notices == ["Dockerfile is not in your workspace: graded with the given checkpoint "
                       "checkpoints/05-compose/Dockerfile (`python -m grader start 05-compose` puts your own "
                       "or that one in place)"]
    (ws / "Dockerfile").write_text("FROM python:3.11-slim\n")
    assert with_checkpoints(registry.get("05-compose"), ws, FakeSession(tmp_path / "t"), Environment()) == (ws, [])


@pytest.mark.parametrize("exercise_id", ["02-storage", "04-networking"])
def test_without_an_earlier_dockerfile_run_sh_gets_the_reference_image(tmp_path, exercise_id):
    """In a grading box (no sibling workspace) or when forced, the reference image, and the notice says so."""
    ws = learner(tmp_path, exercise_id)
    env = Environment(service_image="genai-course/service:grader")
    got, notice = own_service_image(registry.get(exercise_id), ws, FakeSession(tmp_path / "s"), env)
    assert got == env
    assert notice.startswith("run.sh ran the reference service image genai-course/service:grader: you have no ")
    learner(tmp_path, "01-first-image", {"Dockerfile": MINE.format("01")})
    forced = FakeSession(tmp_path / "f", reference_image=True)
    assert own_service_image(registry.get(exercise_id), ws, forced, env) == (
        env, "run.sh ran the reference service image genai-course/service:grader (GENAI_GRADER_REFERENCE_IMAGE "
             "is set)")


def test_the_release_ships_no_seeded_file(tmp_path):
    """A seeded file in the instructor's exercises/ (perhaps from their own solutions) never reaches the release."""
    folder = tmp_path / "exercises" / "05-compose"
    folder.mkdir(parents=True)
    for item in workspace.starter_dir("05-compose").iterdir():
        if item.is_file() and item.name not in workspace.STARTS_FROM["05-compose"]:
            (folder / item.name).write_bytes(item.read_bytes())
    (folder / "Dockerfile").write_text("# the instructor's own 03\n")
    released = source.generate("05-compose", tmp_path)
    assert not (released / "Dockerfile").exists() and (released / "compose.yaml").is_file()


def test_an_untouched_checkpoint_builds_on_the_reference_image_in_use(tmp_path):
    """05's checkpoint names the course's reference tag; graded with another reference image (tests, a
    box), the copy names that one, and the learner's folder keeps its file."""
    ws = workspace.materialize("05-compose", tmp_path / "learner" / "05-compose", with_solution=True)
    shipped = (ws / "Dockerfile").read_bytes()
    graded, notices = with_checkpoints(registry.get("05-compose"), ws, FakeSession(tmp_path / "s"),
                                       Environment(service_image="genai-course/service:test"))
    assert notices == [] and (ws / "Dockerfile").read_bytes() == shipped
    assert "FROM genai-course/service:test" in (graded / "Dockerfile").read_text()


def test_an_untouched_committed_starter_is_not_the_learners_work(tmp_path):
    """05's compose.yaml exactly as the course commits it (TODOs and all) does not seed 07's: the checkpoint does."""
    starter = subprocess.run(["git", "-C", str(REPO_ROOT), "show", "HEAD:exercises/05-compose/compose.yaml"],
                             capture_output=True, check=True, timeout=30).stdout
    learner(tmp_path, "05-compose", {"compose.yaml": starter.decode()})
    seeds = {s.name: s for s in workspace.start("07-gpu", learner(tmp_path, "07-gpu"))}
    assert seeds["compose.yaml"].notice.endswith("(your 05-compose/compose.yaml is still the starter)")


def test_notices_show_in_the_table_and_in_json_only_when_there_are_some():
    import json

    from grader.reporters import render_json, render_table
    from grader.results import CheckResult, ExerciseReport, Status

    checks = (CheckResult("runs", Status.PASSED, 2, 2, "ok"),)
    plain = ExerciseReport("02-storage", "Volumes", "/ws", checks)
    noted = replace(plain, notices=("run.sh ran the image built from your 01-first-image/Dockerfile",))
    assert "notices" not in json.loads(render_json(plain))
    assert json.loads(render_json(noted))["notices"] == list(noted.notices)
    assert "note: run.sh ran the image built from your 01-first-image/Dockerfile" in render_table(noted).splitlines()
    assert "note:" not in render_table(plain)
