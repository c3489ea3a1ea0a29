"""Do the lessons' shared helpers run commands visibly, wait without guessing, and clean up
exactly what a lesson labelled?"""

from __future__ import annotations

import subprocess
import uuid

import pytest

from course.lessonkit import CommandFailed, GpuStatus, Lesson, WaitTimeout, gpu_status, sh, wait_for, wait_http


def test_sh_prints_the_command_then_its_output(capsys):
    """Does sh show `$ command` and the output, as a terminal would?"""
    result = sh("echo out; echo err >&2")
    assert result.ok and result.lines == ["out", "err"]
    assert capsys.readouterr().out == "$ echo out; echo err >&2\nout\nerr\n"


def test_sh_adds_labels_to_what_it_runs_but_not_to_what_it_shows(capsys):
    """Does `sh(..., labels=...)` echo the command as typed, and run it with --label after each docker
    verb that creates something (echo stands in for docker, so the run shows what ran)?"""
    result = sh("echo docker run --rm x; echo docker compose run y; echo docker buildx build .", labels={"a": "b"})
    assert result.lines == ["docker run --label a=b --rm x", "docker compose run y",
                            "docker buildx build --label a=b ."]
    echoed = capsys.readouterr().out.splitlines()[0]
    assert echoed == "$ echo docker run --rm x; echo docker compose run y; echo docker buildx build ."


def test_lesson_sh_adds_the_lessons_labels_behind_the_scenes(capsys):
    """Does L.sh run with the lesson's labels and echo none of them?"""
    lesson = Lesson("02")
    result = lesson.sh("echo docker volume create v")
    assert result.output == f"docker volume create {lesson.flags} v"
    assert "--label" not in capsys.readouterr().out.splitlines()[0]


def test_sh_tail_zero_prints_only_the_command(capsys):
    """Does tail=0 leave the output to the cell (the command is still shown)?"""
    assert sh("echo one; echo two", tail=0).lines == ["one", "two"]
    assert capsys.readouterr().out == "$ echo one; echo two\n"


def test_sh_raises_on_failure_and_on_unexpected_success():
    """Is a failing command an error, and a command expected to fail an error when it succeeds?"""
    with pytest.raises(CommandFailed, match="exit status 3"):
        sh("exit 3", quiet=True)
    assert sh("exit 3", expect_failure=True, quiet=True).returncode == 3
    with pytest.raises(CommandFailed, match="expected to fail"):
        sh("true", expect_failure=True, quiet=True)
    assert not sh("false", check=False, quiet=True).ok


def test_sh_tail_shortens_long_output(capsys):
    """Does tail= keep the last lines and say how many were left out?"""
    sh("seq 1 10", tail=2)
    assert capsys.readouterr().out.splitlines()[1:] == ["[... 8 more lines]", "9", "10"]


def test_sh_times_out_instead_of_hanging():
    """Does a hanging command fail after its timeout?"""
    with pytest.raises(CommandFailed, match="did not finish within 1 s"):
        sh("sleep 30", timeout=1, quiet=True)


def test_wait_for_returns_the_first_truthy_answer():
    """Does wait_for poll until the probe answers, and hand back its value?"""
    answers = iter([None, ConnectionError("not yet"), "ready"])

    def probe():
        value = next(answers)
        if isinstance(value, Exception):
            raise value
        return value

    assert wait_for(probe, timeout=5, what="probe", interval=0.01) == "ready"


def test_wait_for_timeout_names_what_and_the_last_error():
    """Does a timeout say what was awaited and the last error seen?"""
    def probe():
        raise ConnectionRefusedError("refused")

    with pytest.raises(WaitTimeout, match=r"the thing: not ready after 0 s \(last error: refused\)"):
        wait_for(probe, timeout=0.2, what="the thing", interval=0.05)


def test_wait_http_on_a_closed_port_times_out():
    """Does waiting on a port nobody serves fail within its timeout?"""
    with pytest.raises(WaitTimeout, match="GET http://127.0.0.1:9/ answering 200"):
        wait_http("http://127.0.0.1:9/", timeout=0.5)


def test_lesson_labels_names_and_flags():
    """Are a lesson's labels, name prefix and CLI flags what the conventions say?"""
    lesson = Lesson(7)
    assert lesson.id == "07" and lesson.name("db") == "lesson07-db"
    assert lesson.labels == {"org.genai-course.managed": "true", "org.genai-course.lesson": "07"}
    assert lesson.flags == "--label org.genai-course.managed=true --label org.genai-course.lesson=07"


def test_scratch_files_are_written_and_removed(capsys):
    """Does write() show the file it writes, and cleanup's scratch removal delete the folder?"""
    lesson = Lesson(99)
    path = lesson.write("ctx/Dockerfile", "FROM scratch\n")
    assert path.read_text() == "FROM scratch\n" and "--- ctx/Dockerfile ---" in capsys.readouterr().out
    lesson._remove_scratch()
    assert not path.parent.parent.exists()


@pytest.mark.docker
def test_cleanup_removes_only_what_carries_the_lesson_label(docker_client):
    """Does cleanup remove the lesson's labelled container, network, volume and image, and
    leave alone an unlabelled twin and another lesson's resource?"""
    lesson = Lesson(98)
    tag = uuid.uuid4().hex[:8]
    other = Lesson(97)
    own_net = docker_client.networks.create(f"lesson98-net-{tag}", labels=lesson.labels)
    other_net = docker_client.networks.create(f"lesson97-net-{tag}", labels=other.labels)
    unlabelled = docker_client.volumes.create(f"lesson98-mine-{tag}",
                                              labels={"org.genai-course.managed": "true"})
    try:
        docker_client.volumes.create(f"lesson98-vol-{tag}", labels=lesson.labels)
        docker_client.containers.create("python:3.11-slim", "true", name=f"lesson98-c-{tag}",
                                        labels=lesson.labels, network=own_net.name)
        subprocess.run(["docker", "build", "-q", "-t", f"lesson98-img:{tag}", *lesson.flags.split(), "-"],
                       input="FROM python:3.11-slim\nLABEL purpose=cleanup-test\n", text=True, check=True,
                       capture_output=True)
        found = lesson.resources()
        assert found.containers == [f"lesson98-c-{tag}"] and found.networks == [own_net.name]
        assert found.volumes == [f"lesson98-vol-{tag}"] and found.images == [f"lesson98-img:{tag}"]
        lesson.cleanup(quiet=True)
        assert not lesson.resources()
        other_net.reload()  # still there
        unlabelled.reload()
    finally:
        lesson.cleanup(quiet=True)
        other_net.remove()
        unlabelled.remove()


def test_gpu_status_says_why_containers_get_no_gpu():
    """Does the GPU summary give the engine's reason when `--gpus all` fails?"""
    none = GpuStatus(("runc",), (), 'could not select device driver "" with capabilities: [[gpu]]')
    assert not none.available and "fails: could not select device driver" in none.text()
    some = GpuStatus(("nvidia", "runc"), ("GPU 0: NVIDIA H100",), "")
    assert some.available and "GPU 0: NVIDIA H100" in some.text() and "works" in some.text()


@pytest.mark.docker
def test_gpu_probe_answers_and_leaves_no_container(docker_client):
    """Does the lesson's GPU probe answer either way with its evidence, and remove its container?"""
    lesson = Lesson(96)
    status = gpu_status(lesson)
    assert "runc" in status.runtimes
    assert status.available or status.engine_error
    assert not lesson.resources().containers
