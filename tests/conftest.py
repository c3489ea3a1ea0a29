"""Shared fixtures. Docker tests fail loudly (never skip) when no engine answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import docker_build  # noqa: F401  (re-exported for older imports)

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT / "models" / "all-MiniLM-L6-v2"
SERVICE_TEST_IMAGE = "genai-course/service:test"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def models_dir() -> Path:
    if not (MODELS_DIR / "manifest.json").exists():
        pytest.fail(f"{MODELS_DIR} is missing: run `make model` first", pytrace=False)
    return MODELS_DIR


@pytest.fixture(scope="session")
def docker_client():
    import docker

    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:  # any failure here is infrastructure, not a test result
        pytest.fail(f"no Docker engine reachable ({exc}); run `make engine`", pytrace=False)
    yield client
    client.close()


@pytest.fixture(scope="session")
def service_image(docker_client) -> str:
    """The production service image, built once per test run (layers are reused)."""
    docker_build(ROOT / "service", SERVICE_TEST_IMAGE)
    return SERVICE_TEST_IMAGE
