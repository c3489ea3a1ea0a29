"""A compose configuration as `docker compose config` resolves it, and the grader's own override file
(labels, session-named images, default limits) written over it."""

from __future__ import annotations

from typing import Any, Mapping

from dockerkit.limits import ContainerLimits
from grader.registry import FixedNames, fail

PROJECT_PREFIX = "genai-grade-"
BASE_FILE, OVERRIDE_FILE = "compose.yaml", "compose.override.yaml"
TOKEN_FILE = "secrets/api_token.txt"
TOKEN_TARGET = "/run/secrets/api_token"
SERVER, DB = "server", "db"
SERVER_PORT = 8000
QUICK = 60.0                       # config, down: they never take long unless something is wrong
# The grader's limits where the learner's files set none: (deploy.resources.limits key, service-level key, value)
_LIMITS = ContainerLimits()   # the same defaults as every container the grader starts
GRADER_LIMITS = (("memory", "mem_limit", _LIMITS.memory), ("cpus", "cpus", _LIMITS.cpus),
                 ("pids", "pids_limit", _LIMITS.pids))
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


def grading_variables(models_dir: object, port: object = SERVER_PORT, token: str = "unused") -> dict[str, str]:
    """The variables every grading sets for compose: the exported model, the host port, the API token."""
    return {"PORT": str(port), "MODELS_DIR": str(models_dir), "API_TOKEN": token}


# -- the configuration, as `docker compose config` resolves it --------------------------------

class ComposeConfig:
    """`docker compose config --format json`: interpolated, merged, paths made absolute."""

    def __init__(self, data: dict, files: tuple[str, ...]) -> None:
        self.data = data
        self.files = files

    @property
    def services(self) -> dict[str, dict]:
        return self.data.get("services") or {}

    @property
    def networks(self) -> dict[str, dict]:
        return {k: (v or {}) for k, v in (self.data.get("networks") or {}).items()}

    @property
    def volumes(self) -> dict[str, dict]:
        return {k: (v or {}) for k, v in (self.data.get("volumes") or {}).items()}

    @property
    def secrets(self) -> dict[str, dict]:
        return {k: (v or {}) for k, v in (self.data.get("secrets") or {}).items()}

    def service(self, name: str) -> dict:
        try:
            return self.services[name]
        except KeyError:
            fail(f"there is no service {name!r} in {self.describe_files()} (services: "
                 f"{', '.join(self.services) or 'none'})")

    def describe_files(self) -> str:
        return " + ".join(self.files)

    def limits(self, name: str) -> dict[str, Any]:
        """Memory, CPU and process limits of a service, from deploy.resources.limits or the short keys."""
        svc = self.services.get(name) or {}
        deploy = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        return {"memory": deploy.get("memory") or svc.get("mem_limit"),
                "cpus": deploy.get("cpus") or svc.get("cpus"),
                "pids": deploy.get("pids") or svc.get("pids_limit")}

    def fixed_names(self, project: str) -> FixedNames:
        """Names the files fix instead of letting compose prefix them with the project name."""
        def fixed(section: Mapping[str, dict]) -> tuple[str, ...]:
            return tuple(sorted(v["name"] for v in section.values()
                                if v.get("name") and not v.get("external") and not v["name"].startswith(f"{project}_")))
        containers = tuple(sorted(s["container_name"] for s in self.services.values() if s.get("container_name")))
        return FixedNames(containers=containers, volumes=fixed(self.volumes), networks=fixed(self.networks))


def default_limits(svc: Mapping[str, Any]) -> dict[str, Any]:
    """The grader's limits for what a service leaves unlimited, written in the form the service uses.

    Compose refuses a service that sets one limit in both forms (`pids_limit` and
    `deploy.resources.limits.pids`), even to equal values, so a default never adds the
    other form: where the learner writes `deploy.resources.limits`, the defaults go there too.
    """
    deploy = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    unset = [(key, short, value) for key, short, value in GRADER_LIMITS
             if deploy.get(key) is None and svc.get(short) is None]
    if not unset:
        return {}
    if deploy:
        return {"deploy": {"resources": {"limits": {key: value for key, _, value in unset}}}}
    return {short: value for _, short, value in unset}


def grader_override(config: ComposeConfig, labels: Mapping[str, str], image_prefix: str) -> dict:
    """The grader's own compose file: labels everywhere, session-named images, default limits."""
    def missing(element: Mapping[str, Any] | None) -> dict[str, str]:
        # compose merges labels as a list that must not repeat an item the learner's files already hold
        have = (element or {}).get("labels") or {}
        return {k: v for k, v in labels.items() if have.get(k) != v}

    services = {}
    for name, svc in config.services.items():
        entry: dict[str, Any] = {"labels": missing(svc), "privileged": False}
        if svc.get("build") is not None:
            entry["image"] = f"{image_prefix}-{name}"
            entry["build"] = {"labels": missing(svc.get("build"))}
        entry.update(default_limits(svc))
        services[name] = entry
    override: dict[str, Any] = {"services": services}
    networks = {k: {"labels": missing(v)} for k, v in config.networks.items() if not v.get("external")}
    volumes = {k: {"labels": missing(v)} for k, v in config.volumes.items() if not v.get("external")}
    if networks:
        override["networks"] = networks
    if volumes:
        override["volumes"] = volumes
    return override
