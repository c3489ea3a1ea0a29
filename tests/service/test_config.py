"""Are the service's settings read from the environment, with unsafe values refused clearly?"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import Settings, available_cpus, cgroup_cpu_quota


def test_defaults_match_the_container_layout(tmp_path):
    s = Settings(api_token_file=tmp_path / "absent")
    assert str(s.model_dir) == "/models" and str(s.data_dir) == "/data"
    assert s.model_variant == "int8" and s.database_url is None
    assert s.auth_enabled is False
    assert s.inference_threads == available_cpus() and s.inference_workers == s.inference_threads


def test_environment_variables_are_read(monkeypatch, tmp_path):
    monkeypatch.setenv("MODEL_VARIANT", "fp32")
    monkeypatch.setenv("MAX_INPUTS", "7")
    monkeypatch.setenv("INFERENCE_THREADS", "4")
    monkeypatch.setenv("INFERENCE_WORKERS", "2")
    monkeypatch.setenv("API_TOKEN_FILE", str(tmp_path / "absent"))
    s = Settings()
    assert s.model_variant == "fp32" and s.max_inputs == 7 and s.threads_per_worker == 2


@pytest.mark.parametrize("overrides,message", [
    ({"model_variant": "fp16"}, "fp32"),
    ({"max_inputs": 0}, "greater than or equal to 1"),
    ({"max_batch_tokens": 100}, "greater than or equal to 256"),
    ({"max_queue_size": 4, "max_inputs": 8}, "MAX_QUEUE_SIZE (4) must be at least MAX_INPUTS (8)"),
    ({"database_url": "mysql://db/x"}, "postgresql:// URL"),
    ({"inference_threads": 1, "inference_workers": 2}, "cannot exceed INFERENCE_THREADS"),
    ({"api_token": "has space"}, "without spaces"),
])
def test_unsafe_values_are_refused(tmp_path, overrides, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings(api_token_file=tmp_path / "absent", **overrides)


def test_token_from_file_is_stripped_and_turns_auth_on(tmp_path):
    path = tmp_path / "api_token"
    path.write_text("  tok-123\n")
    s = Settings(api_token_file=path)
    assert s.auth_enabled and s.api_token.get_secret_value() == "tok-123"
    assert "tok-123" not in repr(s)


def test_empty_token_file_is_refused(tmp_path):
    path = tmp_path / "api_token"
    path.write_text("\n")
    with pytest.raises(ValidationError, match="is empty"):
        Settings(api_token_file=path)


def test_token_file_and_variable_must_agree(tmp_path):
    path = tmp_path / "api_token"
    path.write_text("one")
    assert Settings(api_token_file=path, api_token="one").auth_enabled
    with pytest.raises(ValidationError, match="differ"):
        Settings(api_token_file=path, api_token="two")


def test_database_password_file(tmp_path):
    path = tmp_path / "db_password"
    path.write_text("pw\n")
    s = Settings(api_token_file=tmp_path / "absent", database_password_file=path)
    assert s.database_password() == "pw"


@pytest.mark.parametrize("files,expected", [
    ({"cpu.max": "150000 100000\n"}, 1.5),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_cgroup_cpu_quota_v1_and_v2(tmp_path, files, expected):
    """Is `docker run --cpus` read from cgroup v2 cpu.max or v1 cfs quota?"""
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    assert cgroup_cpu_quota(tmp_path) == expected


def test_threads_follow_the_cpu_quota(monkeypatch):
    monkeypatch.setattr("app.config.cgroup_cpu_quota", lambda: 1.5)
    assert available_cpus() == 1  # rounded down: more threads than the quota get throttled
    monkeypatch.setattr("app.config.cgroup_cpu_quota", lambda: 0.25)
    assert available_cpus() == 1
