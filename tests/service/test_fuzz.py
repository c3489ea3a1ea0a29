"""Does a bounded schemathesis run against the OpenAPI schema find no server error? (fake backend)"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

from app.config import Settings
from app.main import create_app
from tests.service.fakes import FakeBackend, factory

# schemathesis collects its cases at import, so the app exists from then on; its data dir is
# only created by the first document stored (so collecting alone leaves nothing behind).
DATA = Path(tempfile.gettempdir()) / f"genai-fuzz-{uuid.uuid4().hex[:8]}"
CONFIG = Settings(data_dir=DATA / "data", api_token_file=DATA / "no-token", model_dir=DATA / "no-model",
                  inference_threads=2, max_inputs=16, max_input_chars=2000)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(CONFIG, backend=factory(FakeBackend())))


@pytest.fixture(scope="module", autouse=True)
def remove_data_dir():
    yield
    shutil.rmtree(DATA, ignore_errors=True)


def wait_ready() -> None:
    """schemathesis restarts the app's lifespan for every operation; the model "loads" each time."""
    health = schema["/health"]["GET"]
    deadline = time.monotonic() + 10
    while health.Case().call().status_code != 200:
        assert time.monotonic() < deadline, "the fuzzed app never became ready"
        time.sleep(0.01)  # polling interval


@schema.parametrize()
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_responses_match_the_schema(case):
    """For generated requests on every route, is there never a 5xx, and does each answer match its schema?"""
    wait_ready()
    case.call_and_validate(checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance])
