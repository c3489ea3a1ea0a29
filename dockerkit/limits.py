"""The limits every container the course starts for a learner runs under (never privileged)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ContainerLimits:
    memory: str = "1g"
    nano_cpus: int = 1_000_000_000
    pids: int = 512

    @property
    def cpus(self) -> float:
        return self.nano_cpus / 1e9

    def run_kwargs(self) -> dict[str, Any]:
        """For docker-py's `containers.run`."""
        return {
            "mem_limit": self.memory,
            "nano_cpus": self.nano_cpus,
            "pids_limit": self.pids,
            "privileged": False,
            "security_opt": ["no-new-privileges"],
        }

    def compose_keys(self) -> dict[str, Any]:
        """A compose service's short keys."""
        return {"mem_limit": self.memory, "cpus": self.cpus, "pids_limit": self.pids}
