"""The service's settings: one object, read from the environment, validated once at startup."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# all-MiniLM-L6-v2 truncates at 256 tokens, so a batch budget below that could never fit one text.
MODEL_MAX_TOKENS = 256


class Settings(BaseSettings):
    """Every setting is an environment variable of the same name in upper case (MODEL_DIR, ...)."""

    model_config = SettingsConfigDict(extra="ignore", protected_namespaces=())

    model_dir: Path = Path("/models")
    # int8 is the default: 4x smaller and ~2x faster than fp32 on CPU, and within the
    # export's written-down floor of fp32 (cosine >= 0.95); fp32 matches torch to 0.9999.
    model_variant: Literal["fp32", "int8"] = "int8"
    # auto: CUDA when onnxruntime-gpu sees a GPU, else CPU. /info reports what the session uses.
    execution_provider: Literal["auto", "cpu", "cuda"] = "auto"

    data_dir: Path = Path("/data")
    database_url: str | None = None
    # Keeps the PostgreSQL password out of DATABASE_URL (and out of the environment).
    database_password_file: Path | None = None

    api_token_file: Path = Path("/run/secrets/api_token")
    api_token: SecretStr | None = None

    max_inputs: int = Field(64, ge=1, le=4096, description="texts per request")
    max_input_chars: int = Field(10_000, ge=1, le=1_000_000, description="characters per text")

    inference_threads: int | None = Field(None, ge=1, le=256, description="default: the CPU quota")
    inference_workers: int | None = Field(None, ge=1, le=256, description="batches run at once")
    max_batch_size: int = Field(32, ge=1, le=4096, description="texts per batch")
    max_batch_tokens: int = Field(8192, ge=MODEL_MAX_TOKENS, le=1_000_000, description="tokens per batch")
    max_queue_size: int = Field(512, ge=1, le=1_000_000, description="texts waiting; beyond: 429")

    @model_validator(mode="after")
    def _resolve(self) -> Settings:
        if self.max_queue_size < self.max_inputs:
            raise ValueError(f"MAX_QUEUE_SIZE ({self.max_queue_size}) must be at least MAX_INPUTS "
                             f"({self.max_inputs}), or a full request could never be queued")
        if self.database_url is not None and not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ValueError("DATABASE_URL must be a postgresql:// URL (leave it unset for SQLite under DATA_DIR)")
        if self.inference_threads is None:
            self.inference_threads = available_cpus()
        if self.inference_workers is None:
            # Single-threaded runs side by side beat one multi-threaded run for short texts.
            self.inference_workers = self.inference_threads
        if self.inference_workers > self.inference_threads:
            raise ValueError(f"INFERENCE_WORKERS ({self.inference_workers}) cannot exceed "
                             f"INFERENCE_THREADS ({self.inference_threads})")
        self.api_token = self._resolve_token()
        return self

    def _resolve_token(self) -> SecretStr | None:
        from_env = self.api_token.get_secret_value() if self.api_token is not None else None
        from_file = None
        if self.api_token_file.exists():
            try:
                from_file = self.api_token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"API token file {self.api_token_file} cannot be read: {exc.strerror}") from None
            if not from_file:
                raise ValueError(f"API token file {self.api_token_file} is empty")
        if from_env is not None and from_file is not None and from_env != from_file:
            raise ValueError(f"API_TOKEN and the token in {self.api_token_file} differ: set one of them")
        token = from_file if from_file is not None else from_env
        if token is None:
            return None
        if not token or any(c.isspace() or not c.isprintable() for c in token):
            raise ValueError("the API token must be non-empty, without spaces or control characters")
        return SecretStr(token)

    @property
    def auth_enabled(self) -> bool:
        return self.api_token is not None

    @property
    def threads_per_worker(self) -> int:
        return max(1, self.inference_threads // self.inference_workers)

    @property
    def max_body_bytes(self) -> int:
        # JSON may escape a character as \uXXXX\uXXXX (12 bytes); 64 KiB for the rest of the body.
        return self.max_inputs * self.max_input_chars * 12 + 65_536

    def database_password(self) -> str | None:
        if self.database_password_file is None:
            return None
        try:
            return self.database_password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"database password file {self.database_password_file} "
                             f"cannot be read: {exc.strerror}") from None


def available_cpus() -> int:
    """CPUs this process may use: the affinity mask, capped by the cgroup CPU quota (docker --cpus)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        # Round down: more threads than the quota get throttled in bursts, which hurts tail latency.
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)


def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The cgroup CPU limit in CPUs (v2 cpu.max, else v1 cfs quota), or None when unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    for v1 in (root / "cpu", root / "cpu,cpuacct"):
        try:
            quota_us = int((v1 / "cpu.cfs_quota_us").read_text())
            period_us = int((v1 / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    return None
