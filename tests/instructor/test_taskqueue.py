"""The grading queue without an engine: its settings, a job as a message, who is alive, the reaper
on a fake engine, and Celery's delivery settings (late acks, one prefetched, visibility timeout)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from course.instructor import settings, taskqueue
from dockerkit.net import free_port


@pytest.fixture
def queue_env(monkeypatch, tmp_path):
    monkeypatch.setenv(taskqueue.QUEUE_DIR_ENV, str(tmp_path / "redis"))
    monkeypatch.delenv(taskqueue.PASSWORD_ENV, raising=False)
    monkeypatch.delenv(taskqueue.VISIBILITY_ENV, raising=False)
    monkeypatch.setenv("GENAI_COURSE_ROOT", str(tmp_path / "course"))
    return tmp_path


def test_the_password_comes_from_the_queue_folder_and_is_never_shown(queue_env, monkeypatch):
    monkeypatch.setenv(taskqueue.QUEUE_ENV, "redis://10.0.0.5:6390/0")
    with pytest.raises(taskqueue.QueueError, match="no password for the grading queue"):
        taskqueue.broker_url()
    (queue_env / "redis").mkdir()
    (queue_env / "redis" / "password").write_text("s3cr/et\n")
    url = taskqueue.broker_url()
    assert url == "redis://:s3cr%2Fet@10.0.0.5:6390/0"
    assert "s3cr" not in taskqueue.shown(url) and "10.0.0.5:6390" in taskqueue.shown(url)
    monkeypatch.setenv(taskqueue.PASSWORD_ENV, "other")
    assert taskqueue.broker_url() == "redis://:other@10.0.0.5:6390/0"


@pytest.mark.parametrize("url", ["10.0.0.5:6390", "amqp://host/", "redis://"])
def test_a_queue_url_that_is_not_redis_is_refused_clearly(queue_env, monkeypatch, url):
    monkeypatch.setenv(taskqueue.QUEUE_ENV, url)
    with pytest.raises(taskqueue.QueueError, match="use redis://HOST:PORT/DB"):
        taskqueue.broker_url()


def test_a_job_is_not_handed_to_another_worker_while_it_may_still_run(queue_env, monkeypatch):
    assert taskqueue.visibility_timeout() > taskqueue.job_time_limit()
    monkeypatch.setenv(taskqueue.VISIBILITY_ENV, "nope")
    with pytest.raises(taskqueue.QueueError, match="a number of seconds"):
        taskqueue.visibility_timeout()


def test_delivery_is_at_least_once(queue_env, monkeypatch):
    pytest.importorskip("celery")
    monkeypatch.setenv(taskqueue.QUEUE_ENV, "redis://:pw@127.0.0.1:6390/0")
    monkeypatch.setenv(taskqueue.VISIBILITY_ENV, "4000")
    conf = taskqueue.make_app().conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] == 4000
    assert conf.task_time_limit == taskqueue.job_time_limit()  # a stuck job ends before it is handed on
    assert taskqueue.TASK in taskqueue.make_app().tasks


def test_a_job_travels_as_a_message_and_unpacks_without_links_out(tmp_path):
    job = tmp_path / "job"
    (job / "files" / "app").mkdir(parents=True)
    (job / "spec.json").write_text(json.dumps({"key": "k1", "exercise": "02-storage", "grader_version": "v1"}))
    (job / "notebook.json").write_text('{"cells": []}')
    (job / "files" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (job / "files" / "run.sh").chmod(0o755)
    (job / "files" / "app" / "main.py").write_text("print(1)\n")
    payload = taskqueue.pack(job)
    assert (payload["key"], payload["exercise"], payload["grader_version"]) == ("k1", "02-storage", "v1")
    out = taskqueue.unpack(json.loads(json.dumps(payload)), tmp_path / "out")
    assert (out / "files" / "app" / "main.py").read_text() == "print(1)\n"
    assert os.access(out / "files" / "run.sh", os.X_OK)
    assert (out / "notebook.json").read_text() == '{"cells": []}'


def test_only_a_dead_worker_of_this_host_is_dead():
    me = taskqueue.worker_id()
    assert taskqueue.alive(me)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    gone = taskqueue.worker_id(child.pid)
    child.wait()
    assert not taskqueue.alive(gone)
    host, pid, started = me.split(":")
    assert not taskqueue.alive(f"{host}:{pid}:{int(started) + 1}")  # a later process with the same pid
    assert taskqueue.alive(f"another-{socket.gethostname()}:{pid}:1")  # its own host judges it


class FakeItem:
    def __init__(self, name, owner):
        self.name = self.id = name
        self.labels = {settings.WORKER_LABEL: owner}
        self.attrs = {"Labels": self.labels, "Mounts": []}
        self.removed = False

    def remove(self, **_):
        self.removed = True

    def reload(self):
        pass


def _labelled(items, filters):
    """The engine's label filter: `key` or `key=value`."""
    key, _, value = filters["label"].partition("=")
    return [i for i in items if key in i.labels and (not value or i.labels[key] == value)]


class FakeEngine:
    """What dockerkit.labels.reap asks of an engine, over a few boxes and networks."""

    def __init__(self, containers, networks):
        self.containers = type("C", (), {"list": lambda _, all, filters: _labelled(containers, filters)})()
        self.networks = type("N", (), {"list": lambda _, filters=None, names=None: _labelled(networks, filters)})()
        self.volumes = type("V", (), {"list": lambda _, filters: []})()
        self.images = type("I", (), {"list": lambda _, filters: []})()


def test_the_reaper_removes_what_dead_workers_left_and_nothing_else(queue_env):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    dead = taskqueue.worker_id(child.pid)
    child.wait()
    live = taskqueue.worker_id()
    boxes = [FakeItem("dead-box", dead), FakeItem("live-box", live)]
    nets = [FakeItem("dead-net", dead), FakeItem("live-net", live)]
    (taskqueue.worker_root() / dead.replace(":", "+") / "job").mkdir(parents=True)
    (taskqueue.worker_root() / live.replace(":", "+") / "job").mkdir(parents=True)
    removed = taskqueue.reap(FakeEngine(boxes, nets))
    assert [i.name for i in boxes + nets if i.removed] == ["dead-box", "dead-net"]
    assert sorted(os.listdir(taskqueue.worker_root())) == [live.replace(":", "+")]
    assert "dead-box" in removed and "dead-net" in removed


@pytest.fixture
def redis_queue(queue_env, monkeypatch):
    """A project Redis of the test's own (scripts/redis.sh: password, port, folder), as a grading queue."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (make test-deps installs it)")
    port = free_port()
    monkeypatch.setenv("GENAI_QUEUE_PORT", str(port))
    monkeypatch.setenv(taskqueue.QUEUE_ENV, f"redis://127.0.0.1:{port}/0")
    script = str(settings.REPO_ROOT / "scripts" / "redis.sh")
    subprocess.run(["bash", script, "start"], check=True, capture_output=True)
    try:
        yield port
    finally:
        subprocess.run(["bash", script, "stop"], check=False, capture_output=True)


# A worker that takes the job (delivered, unacknowledged), says it runs it, then dies at once.
TAKE_AND_DIE = """
import os, signal, sys
from course.instructor import taskqueue
app = taskqueue.make_app()
with app.connection_for_read() as connection:
    message = connection.default_channel.basic_get(taskqueue.queue_name(), no_ack=False)
    assert message is not None, "no job to take"
    owner = sys.argv[1] if len(sys.argv) > 1 else taskqueue.worker_id()
    app.backend.store_result(message.headers["id"], {"phase": "box ready", "owner": owner}, "PROGRESS")
    print("taken", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _taken_by(owner: str | None) -> None:
    proc = subprocess.run([sys.executable, "-c", TAKE_AND_DIE, *([owner] if owner else [])], cwd=settings.REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert "taken" in proc.stdout, proc.stderr[-2000:]


def test_a_dead_workers_job_goes_back_to_the_queue_at_once(redis_queue):
    import redis

    app = taskqueue.make_app()
    store = redis.Redis.from_url(taskqueue.broker_url())
    try:
        app.send_task(taskqueue.TASK, args=[{"key": "dead-one"}], task_id="dead-one", queue=taskqueue.queue_name())
        _taken_by(None)  # its owner is the process that died
        assert store.hlen("unacked") == 1 and store.llen(taskqueue.queue_name()) == 0
        assert taskqueue.hand_back(app) == ["dead-one"]
        assert store.hlen("unacked") == 0 and store.llen(taskqueue.queue_name()) == 1  # queued again

        # a job whose worker still runs (here: this test's process) stays with it
        _taken_by(taskqueue.worker_id())
        assert taskqueue.hand_back(app) == []
        assert store.hlen("unacked") == 1
    finally:
        store.close()
