"""The whole course, graded for a class through the real exchange, the make targets and the grading
queue, on the real engine: release -> fetch -> submit -> collect -> autograde (two grading workers,
one of them killed mid-job) -> feedback -> fetch_feedback -> export -> regrade.

- alice submits the reference of every released exercise, bob every untouched starter;
- carol submits a known-bad Dockerfile (01) and, for each kind of deliverable (run.sh in 02, the RUN
  steps of a Dockerfile in 03, a compose file in 05), an attempt to reach the instructor's files, the
  host's engine and its LAN; she also edits autograded cells and adds cells that patch the grader;
- dave submits the untouched 01 starter (bob's twin: one job) and a fork bomb of each kind;
- erin a disk filler of each kind, frank an output flood of each kind.

The expected grades of the submissions that are not hostile come from the grader itself, run on this
machine on the files bob and carol submitted (never on a hostile file); alice's are full marks.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
import yaml

from course.instructor import settings, taskqueue
from course.instructor.box import host_addresses
from course.manifest import load
from dockerkit.net import free_port
from dockerkit.wait import poll
from grader.grading import grade
from grader.options import GradingOptions
from grader.workspace import materialize, overlay, solution_dir, solution_sources
from tests.instructor.conftest import box_resources

# the class's grading is the module fixture's, and counts toward the first test's time
pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(3600)]

ROOT = Path(__file__).resolve().parents[2]
EXERCISES = tuple(e.id for e in load().exercises if not e.self_paced)
STUDENTS = ("alice", "bob", "carol", "dave", "erin", "frank")
HIDDEN_CODE = ("BEGIN HIDDEN TESTS", "forget()", "Autograding grades afresh")
BOX_DISK = "3g"          # each box's disk budget here; the fillers try more than that
FILL_MB = 4096
FLOOD_BYTES = 200 << 20  # what a flood prints; a learner's report keeps a few lines of it

BAD_DOCKERFILE = """FROM python:latest
COPY . .
RUN pip install -r requirements.txt
CMD uvicorn app.main:app --host 0.0.0.0
"""
CHEAT_CELL = """import grader.notebook as _notebook
_notebook.check_points = lambda exercise, check, workspace=None: 2.0  # every check, full marks
try:
    print(open({canary_path!r}).read())
except OSError as exc:
    print("no canary:", exc)
"""
# What each attack runs, as shell; {probe} reaches for the instructor's files, engine and LAN.
PROBE = ("cat {canary_path} 2>&1 | head -n 1; ls -l /var/run/docker.sock /run/docker.sock 2>&1 | head -n 2; "
         "for address in {addresses}; do timeout 3 bash -c 'exec 3<>/dev/tcp/'$address/{port} 2>/dev/null "
         "&& echo REACHED $address:{port}; done; true")
FORK_BOMB = "f() { f | f & }; f; sleep 5"
FILLER = f"dd if=/dev/zero of=$HOME/zeros bs=1M count={FILL_MB} 2>&1 | tail -n 1; " \
         f"dd if=/dev/zero of=/tmp/zeros bs=1M count={FILL_MB} 2>&1 | tail -n 1"
FLOOD = f"yes 'FLOOD FLOOD FLOOD FLOOD' | head -c {FLOOD_BYTES}"

RUN_SH = {
    "carol": """#!/usr/bin/env bash
echo HOSTILE-RAN
{probe}
docker run --rm -v /:/host "$IMAGE" sh -c 'cat /host{canary_path}; ls /host{instructor_home}' 2>&1 | tail -n 2
echo "engine sees: $(docker ps -a --format '{{.Names}}' | tr '\\n' ' ')"
exit 1
""",
    "dave": "#!/usr/bin/env bash\nf() { f | f & }; f\n",
    "erin": f"#!/usr/bin/env bash\n{FILLER}\n"
            f"docker run --rm -v genai-data:/data \"$IMAGE\" dd if=/dev/zero of=/data/zeros bs=1M count={FILL_MB}\n",
    "frank": f"#!/usr/bin/env bash\n{FLOOD}\nexit 1\n",
}
DOCKERFILE_RUN = {"carol": "{probe}", "dave": FORK_BOMB, "erin": f"dd if=/dev/zero of=/zeros bs=1M count={FILL_MB}",
                  "frank": FLOOD}
# a service added to the reference stack
COMPOSE_COMMAND = {"carol": "{probe}; sleep 600", "dave": FORK_BOMB + "; sleep 600",
                   "erin": f"dd if=/dev/zero of=/data/zeros bs=1M count={FILL_MB}; sleep 600",
                   "frank": "yes 'FLOOD FLOOD FLOOD FLOOD'"}
HOSTILE = {"02-storage": "run.sh", "03-permissions": "Dockerfile", "05-compose": "compose.yaml"}
ATTACKERS = ("carol", "dave", "erin", "frank")


@dataclass
class Classroom:
    tmp: Path
    course: Path
    exchange: Path
    instructor_home: Path
    canary: str
    sentinel: str
    env: dict[str, str]
    expected: dict[tuple[str, str], float] = field(default_factory=dict)
    max_scores: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)

    def home(self, student: str) -> Path:
        return self.tmp / "students" / student

    def folder(self, student: str, exercise: str) -> Path:
        return self.home(student) / exercise

    def make(self, target: str, **variables: str) -> str:
        start = time.monotonic()
        args = ["make", "-s", target] + [f"{k}={v}" for k, v in variables.items()]
        proc = subprocess.run(args, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=1500)
        key = target + "".join(f" {k}={v}" for k, v in variables.items())
        self.timings[key] = round(time.monotonic() - start, 1)
        self.logs[key] = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"`{' '.join(args)}` failed:\n{(proc.stdout + proc.stderr)[-4000:]}"
        return proc.stdout + proc.stderr

    def student(self, student: str, *args: str) -> str:
        """nbgrader as a student: their HOME and folder, the course's exchange, no instructor config."""
        home = self.home(student)
        env = {**self.env, "HOME": str(home)}
        cmd = [sys.executable, "-m", "nbgrader", *args, "--course", settings.COURSE_ID,
               f"--Exchange.root={self.exchange}"]
        proc = subprocess.run(cmd, cwd=home, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{student}: nbgrader {' '.join(args)} failed:\n{proc.stderr[-3000:]}"
        return proc.stdout + proc.stderr


class Listener:
    """A TCP port open on every address of this machine: a box that reaches the host's LAN or its
    bridges shows up in `peers`."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.peers: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except OSError:
                continue
            self.peers.append(peer[0])
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def edit_notebook(path: Path, canary_path: Path, cheated_cell: str) -> None:
    """carol: edit an autograded (locked) cell and add a cell that patches the grader."""
    nb = nbformat.read(path, as_version=4)
    index = next(i for i, c in enumerate(nb.cells)
                 if c.metadata.get("nbgrader", {}).get("grade_id") == cheated_cell)
    nb.cells[index].source = "2.0  # full marks, please"
    nb.cells.insert(index, nbformat.v4.new_code_cell(CHEAT_CELL.format(canary_path=str(canary_path))))
    nbformat.write(nb, path)


def submitted_exercises(student: str) -> tuple[str, ...]:
    if student in ("alice", "bob"):
        return EXERCISES
    return ("01-first-image", *HOSTILE) if student in ("carol", "dave") else tuple(HOSTILE)


def fill(template: str, **values: object) -> str:
    """`template` with each {name} replaced (str.format would take a shell function's braces)."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", str(value))
    return template


def hostile_file(student: str, exercise: str, probe: str, room: Classroom, canary_path: Path) -> str:
    kind = HOSTILE[exercise]
    if kind == "run.sh":
        return fill(RUN_SH[student], probe=probe, canary_path=canary_path, instructor_home=room.instructor_home)
    if kind == "Dockerfile":
        return f"FROM python:3.11-slim\nRUN {fill(DOCKERFILE_RUN[student], probe=probe)}\n" \
               'CMD ["python3", "-m", "http.server"]\n'
    # the reference stack with one more service, which `docker compose up` starts with the others
    stack = yaml.safe_load(solution_sources(exercise)["compose.yaml"].read_text())
    helper: dict = {"image": "python:3.11-slim", "command": ["bash", "-c", fill(COMPOSE_COMMAND[student], probe=probe)]}
    if student == "carol":
        helper.update(network_mode="host", volumes=["/:/host:ro", "/var/run/docker.sock:/var/run/docker.sock"])
    else:
        helper["volumes"] = ["scratch:/data"]
        stack.setdefault("volumes", {})["scratch"] = None
    stack["services"]["helper"] = helper
    return yaml.safe_dump(stack, sort_keys=False)


def prepare(room: Classroom, student: str, canary_path: Path, probe: str) -> None:
    """One student fetches, does their work and submits."""
    room.home(student).mkdir(parents=True)
    for exercise in submitted_exercises(student):
        room.student(student, "fetch_assignment", exercise)
        folder = room.folder(student, exercise)
        notebook = folder / f"{exercise}.ipynb"
        if student == "alice":
            overlay(solution_dir(exercise), folder)
            for rel, source in solution_sources(exercise).items():
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, folder / rel)
        elif exercise == "01-first-image" and student == "carol":
            (folder / "Dockerfile").write_text(BAD_DOCKERFILE)
            edit_notebook(notebook, canary_path, "check_builds")
        elif exercise in HOSTILE and student in ATTACKERS:
            for rel, source in solution_sources(exercise).items():  # the exercise done, then the attack added
                shutil.copy2(source, folder / rel)
            target = folder / HOSTILE[exercise]
            target.write_text(hostile_file(student, exercise, probe, room, canary_path))
            target.chmod(0o755)
            if student == "carol" and exercise == "02-storage":
                edit_notebook(notebook, canary_path, "check_runs")
        room.student(student, "submit", exercise, f"--student={student}")


def expected_scores(room: Classroom, errors: list[BaseException]) -> None:
    """The grader's verdict on each submission that is not hostile, graded on this machine."""
    try:
        for student in ("bob", "carol", "dave"):
            for exercise in submitted_exercises(student):
                if student != "bob" and exercise != "01-first-image":
                    continue  # a hostile file never runs outside a box
                report = grade(exercise, room.folder(student, exercise), GradingOptions.from_env(reference_image=True))
                room.expected[(student, exercise)] = report.score
                room.max_scores[exercise] = report.max_score
    except BaseException as exc:  # reported by the fixture
        errors.append(exc)


def by_check(room: Classroom) -> list[dict[str, str]]:
    with open(room.course / "grades-by-check.csv") as fh:
        return sorted(csv.DictReader(fh), key=lambda row: (row["student_id"], row["grade_id"]))


def start_worker(room: Classroom, log: Path) -> subprocess.Popen:
    """`make grading-worker` in its own process group, its log in `log`; returns once it takes jobs."""
    with open(log, "w") as fh:
        proc = subprocess.Popen(["make", "-s", "grading-worker", "JOBS=1"], cwd=ROOT, env=room.env, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def exited() -> str | None:
        return None if proc.poll() is None else f"the worker exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
    poll(lambda: " ready." in log.read_text(), timeout=300, interval=0.5, what="the grading worker to be ready",
         stopped=exited)
    return proc


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    proc.wait(timeout=600)


def free_bytes(client) -> int | None:
    root = client.info().get("DockerRootDir", "")
    return shutil.disk_usage(root).free if root and os.path.isdir(root) else None


@pytest.fixture(scope="module")
def classroom(tmp_path_factory, docker_client, box_image):
    import redis

    tmp = tmp_path_factory.mktemp("classroom")
    course, exchange, home = tmp / "course", tmp / "exchange", tmp / "instructor-home"
    home.mkdir()
    canary = f"CANARY-{uuid.uuid4().hex}"
    canary_path = home / "canary.txt"
    canary_path.write_text(canary + "\n")
    for exercise in EXERCISES:
        materialize(exercise, course / "exercises" / exercise)
    sentinel = docker_client.containers.create(
        "python:3.11-slim", ["true"], name=f"nbg-sentinel-{uuid.uuid4().hex[:8]}",
        labels={"org.genai-course.managed": "true", "org.genai-course.session": "tests"})
    port = free_port()
    env = {**os.environ, "GENAI_COURSE_ROOT": str(course), "GENAI_EXCHANGE": str(exchange), "HOME": str(home),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "GENAI_BOX_DISK": BOX_DISK, taskqueue.QUEUE_DIR_ENV: str(tmp / "queue"), "GENAI_QUEUE_PORT": str(port)}
    room = Classroom(tmp, course, exchange, home, canary, sentinel.name, env)
    lan = Listener()
    room.lan_port, room.lan_addresses, room.peers = lan.port, host_addresses(), lan.peers
    probe = fill(PROBE, canary_path=canary_path, addresses=" ".join(room.lan_addresses), port=lan.port)
    boxes_before = box_resources(docker_client)
    room.free_before = free_bytes(docker_client)
    workers: list[subprocess.Popen] = []
    room.make("grading-queue")
    try:
        room.make("release")
        start = time.monotonic()
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda s: prepare(room, s, canary_path, probe), STUDENTS))
        room.timings["students fetch, work, submit"] = round(time.monotonic() - start, 1)
        errors: list[BaseException] = []
        grading = threading.Thread(target=expected_scores, args=(room, errors))
        grading.start()  # on this machine's engine, while the boxes grade the class
        room.make("collect")

        # the default visibility timeout (an hour): the killed worker's job comes back by hand_back
        room.env[taskqueue.QUEUE_ENV] = f"redis://127.0.0.1:{port}/0"
        first = start_worker(room, tmp / "worker-1.log")
        workers.append(first)
        start = time.monotonic()
        autograde = subprocess.Popen(["make", "-s", "autograde"], cwd=ROOT, env=room.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        label = {"label": settings.WORKER_LABEL}
        poll(lambda: docker_client.containers.list(all=True, filters=label), timeout=600, interval=0.5,
             what="the first worker's box")
        stop(first, signal.SIGKILL)  # mid-job: the job was never acknowledged
        room.killed_boxes = {c.name for c in docker_client.containers.list(all=True, filters=label)}
        for n in (2, 3):
            workers.append(start_worker(room, tmp / f"worker-{n}.log"))
        room.autograde_log, _ = autograde.communicate(timeout=3600)
        room.timings["autograde (two workers)"] = round(time.monotonic() - start, 1)
        assert autograde.returncode == 0, room.autograde_log[-4000:]
        room.make("feedback")
        for student in STUDENTS:
            for exercise in submitted_exercises(student):
                room.student(student, "fetch_feedback", exercise, f"--student={student}")
        room.make("export", EX="01-first-image")
        room.export_one = (course / "grades.csv").read_text()
        room.make("export")
        room.graded = by_check(room)
        for proc in workers[1:]:
            stop(proc)
        # the same grader again: a regrade finds nothing to change and starts no box, nor asks a worker
        room.regrade_log = room.make("regrade")
        room.make("export")
        room.after_regrade = by_check(room)
        grading.join()
        if errors:
            raise errors[0]
        room.worker_logs = [(tmp / f"worker-{n}.log").read_text() for n in (1, 2, 3)]
        store = redis.Redis(port=port, password=(tmp / "queue" / "password").read_text().strip())
        room.unacked = store.hlen("unacked")
        store.close()
        room.boxes_left = {k: v - boxes_before[k] for k, v in box_resources(docker_client).items()}
        room.free_after = free_bytes(docker_client)
        print(f"\nclass simulation timings (s): {json.dumps(room.timings)}\n{room.autograde_log[-6000:]}")
        yield room
    finally:
        lan.close()
        for proc in workers:
            stop(proc, signal.SIGKILL)
        room.make("grading-queue-stop")
        taskqueue.reap(docker_client)  # what its killed workers left, should the test fail before
        sentinel.remove(force=True)


def grades_csv(room: Classroom) -> dict[tuple[str, str], dict]:
    with open(room.course / "grades.csv") as fh:
        return {(row["student_id"], row["assignment"]): row for row in csv.DictReader(fh)}


def trusted_verdicts(room: Classroom, student: str, exercise: str) -> dict:
    return json.loads((room.course / "autograded" / student / exercise / "trusted-grade.json").read_text())


def feedback_html(room: Classroom, student: str, exercise: str) -> str:
    pages = list((room.folder(student, exercise) / "feedback").glob("*/*.html"))
    assert len(pages) == 1, f"{student} fetched {len(pages)} feedback pages for {exercise}"
    return pages[0].read_text()


def hostile_cases() -> list[tuple[str, str]]:
    return [(student, exercise) for student in ATTACKERS for exercise in HOSTILE]


def test_exported_grades_are_what_the_grader_gives(classroom):
    """Is each exported grade exactly the grader's score for what the student submitted: full marks for
    every reference, the grader's own verdict for every starter?"""
    rows = grades_csv(classroom)
    assert set(rows) == {(s, e) for s in STUDENTS for e in EXERCISES}
    assert set(classroom.max_scores) == set(EXERCISES)
    for exercise in EXERCISES:
        alice = rows[("alice", exercise)]
        assert float(alice["score"]) == float(alice["max_score"]) == classroom.max_scores[exercise], alice
    for (student, exercise), score in classroom.expected.items():
        row = rows[(student, exercise)]
        assert float(row["score"]) == pytest.approx(score), (student, exercise, row)
        assert float(row["max_score"]) == pytest.approx(classroom.max_scores[exercise])
    for exercise in EXERCISES:
        assert classroom.expected[("bob", exercise)] < classroom.max_scores[exercise]  # the starters
    for (student, exercise), row in rows.items():  # a row for every student and exercise: 0 where none came
        if exercise not in submitted_exercises(student):
            assert row["timestamp"] == "" and float(row["score"]) == 0, row
    only_01 = list(csv.DictReader(classroom.export_one.splitlines()))
    assert {row["assignment"] for row in only_01} == {"01-first-image"}
    assert {row["student_id"] for row in only_01} == set(STUDENTS)


@pytest.mark.parametrize("student, exercise", hostile_cases())
def test_a_hostile_submission_earns_only_what_its_files_earn(classroom, student, exercise):
    """Is each hostile submission graded to the end, in its box, for no more than the trusted grading gave
    its files (a cell whose notebook gave less keeps the lower score, marked for review)?"""
    rows = grades_csv(classroom)
    verdicts = trusted_verdicts(classroom, student, exercise)
    report = verdicts["report"]
    if report is None:  # why there is no report is said, and it is the submission's doing
        assert verdicts.get("trusted_error"), verdicts
    trusted = report["score"] if report else 0.0
    assert trusted < classroom.max_scores[exercise]
    counted = sum(c["score"] or 0 for c in verdicts["cells"])
    assert float(rows[(student, exercise)]["score"]) == pytest.approx(counted)
    assert counted <= trusted + 1e-9
    for cell in verdicts["cells"]:
        if (cell["score"] or 0) < (cell["trusted_points"] or 0):
            assert "review" in cell["action"], cell


@pytest.mark.parametrize("exercise", tuple(HOSTILE))
def test_a_disk_filler_fails_its_own_grading_and_the_host_keeps_its_space(classroom, exercise):
    verdicts = trusted_verdicts(classroom, "erin", exercise)
    said = json.dumps(verdicts).lower()
    assert "disk budget" in said or "no space left on device" in said, said[:3000]
    assert f"GENAI_BOX_DISK={BOX_DISK}".lower() in said or "no space left on device" in said
    if classroom.free_before is not None and classroom.free_after is not None:
        # three fillers, each trying 2-3 x 4 GB in two boxes: none of it stays on the host
        lost = classroom.free_before - classroom.free_after
        assert lost < 2 << 30, f"the host lost {lost >> 20} MB"


@pytest.mark.parametrize("exercise", tuple(HOSTILE))
def test_an_output_flood_is_cut_short(classroom, exercise):
    """frank prints 200 MB: his report, notebook and feedback keep a bounded part of it."""
    verdicts = trusted_verdicts(classroom, "frank", exercise)
    for check in (verdicts["report"] or {}).get("checks", []):
        assert len(check["message"]) < 20_000, (check["id"], len(check["message"]))
    notebook = classroom.course / "autograded" / "frank" / exercise / f"{exercise}.ipynb"
    assert notebook.stat().st_size < 20 << 20
    assert len(feedback_html(classroom, "frank", exercise)) < 20 << 20


@pytest.mark.parametrize("exercise", tuple(HOSTILE))
def test_a_fork_bomb_is_graded_and_its_box_survives(classroom, exercise):
    """Is dave's fork bomb graded to a verdict (a report, or why there is none), with the box standing
    to say so? In run.sh it runs in the box itself: it scores 0 and no notebook cell claims a point
    (nbgrader would give full credit to a cell whose grading died before returning)."""
    verdicts = trusted_verdicts(classroom, "dave", exercise)
    assert verdicts["report"] is not None or verdicts.get("trusted_error"), verdicts
    if exercise == "02-storage":
        assert float(grades_csv(classroom)[("dave", exercise)]["score"]) == 0
        assert verdicts["report"] is not None, verdicts.get("trusted_error")  # graded, not crashed
        claimed = {c["grade_id"]: c["notebook_score"] for c in verdicts["cells"]}
        assert claimed and all(not score for score in claimed.values()), claimed


def test_cheating_gains_nothing(classroom):
    """Do carol's patched grader and edited locked cells earn nothing beyond the grader's verdict?"""
    rows = grades_csv(classroom)
    for exercise in ("01-first-image", "02-storage"):
        verdicts = trusted_verdicts(classroom, "carol", exercise)
        claimed = sum(c["notebook_score"] or 0 for c in verdicts["cells"])
        counted = sum(c["score"] or 0 for c in verdicts["cells"])
        assert claimed > counted, f"the patched grader should have claimed more than it got in {exercise}"
        assert counted == pytest.approx((verdicts["report"] or {}).get("score", 0.0)) == pytest.approx(
            float(rows[("carol", exercise)]["score"]))
        assert any(c["action"] == "lowered" for c in verdicts["cells"])
    autograded = nbformat.read(classroom.course / "autograded" / "carol" / "01-first-image" /
                               "01-first-image.ipynb", as_version=4)
    builds = next(c for c in autograded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "check_builds")
    assert 'check_points("01-first-image", "builds")' in builds.source  # nbgrader restored the locked cell
    assert "lowered" in classroom.autograde_log


def test_a_hostile_submission_reaches_nothing(classroom):
    """Did carol's run.sh, RUN steps, compose service and notebook run, yet read no instructor file, see
    no instructor engine, and reach no address of this machine?"""
    hostile = trusted_verdicts(classroom, "carol", "02-storage")
    runs = next(c for c in hostile["report"]["checks"] if c["id"] == "runs")
    assert "HOSTILE-RAN" in runs["message"] and "engine sees:" in runs["message"]  # it ran, output visible
    assert classroom.sentinel not in runs["message"]
    assert classroom.lan_addresses, "this machine has an address besides the loopback"
    assert classroom.lan_port and not classroom.peers, f"a box reached this machine from {classroom.peers}"
    for where in (classroom.course, classroom.exchange, classroom.tmp / "students"):
        for path in where.rglob("*"):
            if path.is_file():
                text = path.read_text(errors="replace")
                assert classroom.canary not in text, f"the canary leaked into {path}"
                for address in classroom.lan_addresses:
                    assert f"REACHED {address}:" not in text, f"a probe reached this machine: {path}"
    notebook = (classroom.course / "autograded" / "carol" / "02-storage" / "02-storage.ipynb").read_text()
    assert "no canary:" in notebook  # the notebook's attempt ran in the box, and found nothing


def test_feedback_shows_messages_and_no_hidden_code(classroom):
    """Does every student's feedback explain the checks, without a line of hidden test code?"""
    for student in STUDENTS:
        for exercise in submitted_exercises(student):
            html = feedback_html(classroom, student, exercise)
            for hidden in HIDDEN_CODE:
                assert hidden not in html, f"{student}/{exercise} feedback shows hidden code: {hidden}"
            assert "check_points" in html  # the visible part of the autograded cells
    assert "moving `latest` tag" in feedback_html(classroom, "carol", "01-first-image")  # a check's message
    assert "[trusted re-grading]" in feedback_html(classroom, "carol", "01-first-image")
    assert "run.sh" in feedback_html(classroom, "bob", "02-storage")


def test_identical_submissions_are_graded_once(classroom):
    log = classroom.autograde_log
    assert "one job for 2 identical submissions" in log  # bob's and dave's untouched 01 starter
    assert "sent to the grading queue redis://" in log


def test_a_killed_worker_hands_its_job_on_and_leaves_nothing_behind(classroom):
    assert classroom.killed_boxes, "the first worker was killed before its box started"
    later = "".join(classroom.worker_logs[1:])
    assert "back in the queue (its worker died before it finished)" in later
    for box in classroom.killed_boxes:
        assert f"removed {box}" in later, f"the killed worker's box {box} was not reaped"
    assert classroom.unacked == 0, "a job was never acknowledged"
    assert classroom.boxes_left == {"containers": set(), "networks": set(), "volumes": set()}
    leftovers = classroom.course / ".state" / "grading-worker"
    assert not leftovers.is_dir() or not any(leftovers.rglob("*-*"))


def test_a_regrade_with_the_same_grader_changes_nothing(classroom):
    log = classroom.regrade_log
    assert "gives every collected submission the grades it has" in log
    assert ": box ready" not in log
    assert classroom.after_regrade == classroom.graded


def test_the_queue_refuses_anyone_without_its_password(classroom):
    assert "NOAUTH" in subprocess.run(["redis-cli", "-p", classroom.env["GENAI_QUEUE_PORT"], "ping"],
                                      capture_output=True, text=True).stdout


def test_release_comes_from_the_generated_source(classroom):
    """Is the released notebook made from the source generated at release (the learner notebook with the
    reference quoted in solution regions and the hidden tests), and does it keep neither?"""
    from course.instructor.source import RELEASED_STUB

    for exercise in EXERCISES:
        learner = (classroom.course / "exercises" / exercise / f"{exercise}.ipynb").read_text()
        source = (classroom.course / "source" / exercise / f"{exercise}.ipynb").read_text()
        released = (classroom.exchange / settings.COURSE_ID / "outbound" / exercise / f"{exercise}.ipynb").read_text()
        assert "BEGIN SOLUTION" not in learner and "BEGIN HIDDEN TESTS" not in learner
        assert "BEGIN SOLUTION" in source and "BEGIN HIDDEN TESTS" in source
        assert "BEGIN SOLUTION" not in released and "forget()" not in released and RELEASED_STUB in released
        for name in ("Dockerfile", "run.sh"):
            reference = solution_dir(exercise) / name
            if reference.is_file():
                assert reference.read_text().splitlines()[-1] not in released
