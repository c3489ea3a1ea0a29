"""Do the base images (official or stand-in) behave as learners' Dockerfiles expect?"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import labels, run_once

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def run_in(docker_client, image: str, script: str) -> str:
    out = docker_client.containers.run(image, ["bash", "-c", script], remove=True,
                                       labels=labels())
    return out.decode()


def test_python_image_behaves_like_the_official_one(docker_client):
    """Are python, pip, venv, useradd and nologin there, with no pip setting that hides a missing --no-cache-dir?"""
    out = run_in(docker_client, "python:3.11-slim", """
        set -e
        python --version; pip --version >/dev/null
        python -m venv /tmp/v && /tmp/v/bin/python -c 'import sys; print(sys.prefix)'
        groupadd -g 1002 app && useradd -u 1001 -g 1002 -s /usr/sbin/nologin app && id app
        test -x /usr/sbin/nologin
        env | grep -c '^PIP_' || true
    """)
    assert "Python 3.11" in out
    assert "/tmp/v" in out
    assert "uid=1001(app) gid=1002(app)" in out
    assert out.strip().splitlines()[-1] == "0", "no PIP_* variable may be preset"


def test_python_image_pip_installs_system_wide(docker_client):
    """Does `pip install` as root work system-wide (no externally-managed error)?"""
    out = run_in(docker_client, "python:3.11-slim",
                 "pip install -q --no-cache-dir h11==0.16.0 && python -c 'import h11; print(h11.__version__)'")
    assert out.strip().endswith("0.16.0")


def wait_pg_ready(container, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "exited":
            break
        code, _ = container.exec_run(["pg_isready", "-h", "127.0.0.1", "-U", "course"])
        if code == 0:
            return
        time.sleep(0.3)  # polling interval
    raise AssertionError(f"postgres did not become ready; logs:\n{container.logs(tail=30).decode()}")


def test_postgres_file_secret_login_and_persistence(docker_client, tmp_path):
    """Does postgres:15 take its password from a _FILE secret, and keep data across re-creation on a named volume?"""
    tag = uuid.uuid4().hex[:8]
    secret = tmp_path / "pg_password"
    secret.write_text("s3cret-pw")
    secret.chmod(0o644)
    volume = docker_client.volumes.create(f"genai-test-pg-{tag}", labels=labels())
    net = docker_client.networks.create(f"genai-test-pg-{tag}", labels=labels())
    common = dict(
        environment={"POSTGRES_USER": "course", "POSTGRES_DB": "genai",
                     "POSTGRES_PASSWORD_FILE": "/run/secrets/pg_password"},
        volumes={volume.name: {"bind": "/var/lib/postgresql/data", "mode": "rw"},
                 str(secret): {"bind": "/run/secrets/pg_password", "mode": "ro"}},
        network=net.name, labels=labels(), detach=True)
    db = None
    try:
        db = docker_client.containers.run("postgres:15", name=f"genai-test-db-{tag}", **common)
        wait_pg_ready(db)
        psql = ["psql", "-h", f"genai-test-db-{tag}", "-U", "course", "-d", "genai", "-tAc"]
        env = {"PGPASSWORD": "s3cret-pw"}
        client_cmd = psql + ["CREATE TABLE t (v text); INSERT INTO t VALUES ('kept');"]
        out = run_once(docker_client, "postgres:15", client_cmd, environment=env, network=net.name)
        wrong = run_once(
            docker_client, "postgres:15", ["bash", "-c", " ".join(psql[:-1]) + " -tAc 'select 1' || echo REFUSED"],
            environment={"PGPASSWORD": "wrong"}, network=net.name)
        assert b"REFUSED" in wrong, "a wrong password must be refused"
        db.stop(timeout=20)
        db.reload()
        assert db.attrs["State"]["ExitCode"] == 0, "postgres must stop cleanly on docker stop"
        db.remove()
        db = docker_client.containers.run("postgres:15", name=f"genai-test-db-{tag}", **common)
        wait_pg_ready(db)
        out = run_once(docker_client, "postgres:15", psql + ["SELECT v FROM t"], environment=env,
                       network=net.name)
        assert out.decode().strip() == "kept"
        code, owner = db.exec_run(["stat", "-c", "%U", "/proc/1"])
        assert owner.decode().strip() == "postgres", "the server must run as the postgres user"
    finally:
        if db is not None:
            db.remove(force=True)
        volume.remove(force=True)
        net.remove()


def test_images_is_idempotent_and_fast(docker_client):
    """Does `make images` on a machine that has the images do nothing, quickly?"""
    t0 = time.monotonic()
    out = subprocess.run(["bash", str(ROOT / "scripts" / "images.sh")], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "python:3.11-slim present" in out.stdout and "postgres:15 present" in out.stdout
    assert time.monotonic() - t0 < 30, "no work should happen when the images exist"
