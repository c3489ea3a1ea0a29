"""Does compose.yaml bring the server and PostgreSQL up healthy, and keep documents across down + up?"""

from __future__ import annotations

import os
import shutil
import subprocess

import httpx
import pytest

from tests.helpers import free_port
from tests.service.dockerkit import min_cosine_to_reference, unique

pytestmark = pytest.mark.docker
TOKEN = "compose-test-token-0123456789"


@pytest.fixture
def stack(tmp_path, repo_root, service_image, models_dir):
    """compose.yaml alone (production shape) in a scratch folder with its two secret files."""
    shutil.copy(repo_root / "service" / "compose.yaml", tmp_path / "compose.yaml")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "api_token.txt").write_text(TOKEN + "\n")
    (tmp_path / "secrets" / "db_password.txt").write_text(unique("pw") + "\n")
    project = unique("genai-test-compose")
    port = free_port()
    env = {**os.environ, "SERVICE_IMAGE": service_image, "MODELS_DIR": str(models_dir), "PORT": str(port)}
    env.pop("API_TOKEN", None)

    def compose(*args: str, timeout: float = 180) -> str:
        cmd = ["docker", "compose", "-p", project, "-f", str(tmp_path / "compose.yaml"), *args]
        proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            state = subprocess.run(["docker", "compose", "-p", project, "-f", str(tmp_path / "compose.yaml"),
                                    "logs", "--tail", "30"], cwd=tmp_path, env=env, capture_output=True,
                                   text=True, timeout=60).stdout
            raise AssertionError(f"`docker compose {' '.join(args)}` failed:\n{proc.stderr[-2000:]}\n{state}")
        return proc.stdout

    compose.base_url = f"http://127.0.0.1:{port}"
    compose.project = project
    try:
        yield compose
    finally:
        compose("down", "-v", "--remove-orphans", timeout=120)


def test_stack_is_healthy_and_keeps_documents(stack, docker_client, models_dir):
    """Up --wait (both healthy), token required, a document survives `down` + `up`, then `down -v`."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    stack("up", "-d", "--wait", "--no-build")
    info = httpx.get(f"{stack.base_url}/info", headers=auth, timeout=10).json()
    assert info["storage"] == "postgresql" and info["storage_status"] == "ok" and info["auth"] is True
    assert httpx.get(f"{stack.base_url}/info", timeout=10).status_code == 401
    _, cosine = min_cosine_to_reference(stack.base_url, models_dir, TOKEN)
    assert cosine >= 0.999
    created = httpx.post(f"{stack.base_url}/documents", json={"id": "survivor", "text": "kept in postgres"},
                         headers=auth, timeout=30)
    assert created.status_code == 201, created.text

    containers = docker_client.containers.list(filters={"label": f"com.docker.compose.project={stack.project}"})
    assert {c.labels["com.docker.compose.service"] for c in containers} == {"server", "db"}
    for container in containers:
        env = container.attrs["Config"]["Env"]
        assert not any(TOKEN in e for e in env), "the token leaked into a container's environment"
        assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True
        for bindings in (container.attrs["HostConfig"]["PortBindings"] or {}).values():
            assert all(b["HostIp"] == "127.0.0.1" for b in bindings)

    stack("down")  # keeps the named volume
    stack("up", "-d", "--wait", "--no-build")
    again = httpx.get(f"{stack.base_url}/documents/survivor", headers=auth, timeout=30)
    assert again.json() == {"id": "survivor", "text": "kept in postgres"}
    hits = httpx.get(f"{stack.base_url}/search", params={"q": "postgres", "k": 1}, headers=auth, timeout=30)
    assert hits.json()[0]["id"] == "survivor"


def compose_config(repo_root, *files: str) -> str:
    cmd = ["docker", "compose", *(a for f in files for a in ("-f", f)), "config"]
    env = {**os.environ, "MODELS_DIR": "/models-on-host"}
    proc = subprocess.run(cmd, cwd=repo_root / "service", env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_compose_files_are_valid_alone_and_merged(repo_root):
    """Does `docker compose config` accept the base file, base + override, and base + GPU?"""
    import yaml

    base = yaml.safe_load(compose_config(repo_root, "compose.yaml"))["services"]["server"]
    dev = yaml.safe_load(compose_config(repo_root, "compose.yaml", "compose.override.yaml"))["services"]["server"]
    gpu = yaml.safe_load(compose_config(repo_root, "compose.yaml", "compose.gpu.yaml"))["services"]["server"]
    assert "--reload" not in (base.get("command") or []) and all(v["type"] != "bind" or v["target"] == "/models"
                                                                  for v in base["volumes"])
    assert "--reload" in dev["command"]
    assert any(v["type"] == "bind" and v["target"] == "/code/app" for v in dev["volumes"])
    assert dev["develop"]["watch"][0] == {"action": "sync", "path": str(repo_root / "service" / "app"),
                                          "target": "/code/app"}
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert gpu["build"]["dockerfile"] == "Dockerfile.gpu"
