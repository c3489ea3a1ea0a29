"""Fixtures for the service's tests: settings isolated from the host, apps on the fake backend."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.config import Settings
from app.main import create_app
from tests.service.fakes import FakeBackend, factory

# Every setting the service reads from the environment: a developer's shell must not leak in.
SERVICE_ENV = ("MODEL_DIR", "MODEL_VARIANT", "EXECUTION_PROVIDER", "DATA_DIR", "DATABASE_URL",
               "DATABASE_PASSWORD_FILE", "API_TOKEN_FILE", "API_TOKEN", "MAX_INPUTS", "MAX_INPUT_CHARS",
               "INFERENCE_THREADS", "INFERENCE_WORKERS", "MAX_BATCH_SIZE", "MAX_BATCH_TOKENS", "MAX_QUEUE_SIZE")


@pytest.fixture(autouse=True)
def clean_service_env(monkeypatch):
    for name in SERVICE_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_settings(tmp_path) -> Callable[..., Settings]:
    def make(**overrides) -> Settings:
        values = dict(data_dir=tmp_path / "data", api_token_file=tmp_path / "no-token-file",
                      model_dir=tmp_path / "no-model", inference_threads=2)
        return Settings(**{**values, **overrides})
    return make


def scrape(client: TestClient) -> dict[tuple[str, frozenset], float]:
    """GET /metrics, parsed by prometheus_client's own parser: {(sample name, labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def sample(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def wait_ready(client: TestClient, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get("/health")
        if response.status_code == 200:
            return
        time.sleep(0.01)  # polling interval
    raise AssertionError(f"the app did not become ready: {response.status_code} {response.text}")


@pytest.fixture
def make_client(make_settings) -> Iterator[Callable[..., TestClient]]:
    """make_client(backend=None, ready=True, **settings) -> a started TestClient (lifespan run)."""
    clients: list[TestClient] = []

    def make(backend: FakeBackend | None = None, ready: bool = True, **overrides) -> TestClient:
        backend = backend or FakeBackend()
        app = create_app(make_settings(**overrides), backend=factory(backend))
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        client.backend = backend
        if ready:
            wait_ready(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()
