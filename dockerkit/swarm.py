"""A throwaway Swarm cluster made of Docker-in-Docker containers, for lesson 10 and exercise 09.

Three node containers (one manager, two workers) and an image registry share a private bridge
network; everything carries the owner's labels and goes in `close()`, anonymous volumes too.
The engine that runs them never enters swarm mode: only the nodes' inner engines do.

A node is a rootful dockerd in a container with CAP_SYS_ADMIN and CAP_NET_ADMIN, seccomp and
AppArmor unconfined and /proc unmasked (VXLAN, iptables, cgroups and keyrings for its own
containers), never --privileged. That is root-equivalent on the engine's host, as any access
to a Docker engine is: fine on a learner's own engine, and never inside the grading box.

Images reach the nodes through the registry: pushed from the outer engine to its published
loopback port, pulled by the nodes as `course-registry:5000/...` (insecure, on the bridge only);
Docker Hub's images (postgres:15) by their usual names, the registry being the nodes' mirror.
Each node publishes its port 8000 on 127.0.0.1 of the outer host, where a stack's
`mode: host` port answers (the routing mesh needs IPVS, which some kernels lack)."""

from __future__ import annotations

import functools
import io
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import docker.errors

from dockerkit.http import ProbeError, http
from dockerkit.wait import poll

NODE_IMAGE = "genai-course/swarm-node:bookworm"
REGISTRY_ALIAS = "course-registry"
REGISTRY = f"{REGISTRY_ALIAS}:5000"
NODE_MODELS = "/srv/models"  # where each node holds the model, read-only
SERVICE_PORT = 8000
NODE_COUNT = 3
ENGINE_TIMEOUT = 60.0


class ClusterError(Exception):
    """The cluster could not be made or used (not the learner's stack: the machine)."""


@dataclass(frozen=True)
class Exec:
    exit_code: int
    output: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass
class Cluster:
    """`with Cluster(client, labels, "lesson10") as c:` makes the nodes; leaving removes everything."""

    client: Any
    labels: Mapping[str, str]
    prefix: str
    models_dir: Path | None = None
    nodes: list[str] = field(default_factory=list)
    _created: list[str] = field(default_factory=list)
    _network: Any = None
    _registry_port: int = 0
    _pushed: list[str] = field(default_factory=list)

    @property
    def manager(self) -> str:
        return self.nodes[0]

    @property
    def workers(self) -> list[str]:
        return self.nodes[1:]

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def start(self) -> None:
        try:
            self.client.images.get(NODE_IMAGE)
        except docker.errors.ImageNotFound:
            raise ClusterError(f"the node image {NODE_IMAGE} is missing: run `make images`") from None
        self._network = self.client.networks.create(f"{self.prefix}-net", driver="bridge", labels=dict(self.labels))
        registry = self._container(
            f"{self.prefix}-registry", "registry", ports={"5000/tcp": ("127.0.0.1", None)}, aliases=[REGISTRY_ALIAS]
        )
        for number in range(1, NODE_COUNT + 1):
            name = f"{self.prefix}-node{number}"
            self._node(name)
            self.nodes.append(name)
        registry.reload()
        self._registry_port = int(registry.ports["5000/tcp"][0]["HostPort"])
        poll(self._registry_answers, timeout=ENGINE_TIMEOUT, what="the cluster's registry")
        for name in self.nodes:
            poll(functools.partial(self._engine_answers, name), timeout=ENGINE_TIMEOUT, what=f"the engine of {name}")
        self._form_swarm()

    def _container(self, name: str, command: str, **kwargs: Any) -> Any:
        api = self.client.api
        host_config = api.create_host_config(
            network_mode=self._network.name,
            cap_add=["SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE"] if command == "node" else None,
            security_opt=["seccomp=unconfined", "apparmor=unconfined"] if command == "node" else None,
            port_bindings=kwargs.get("ports"),
            binds=kwargs.get("binds"),
        )
        if command == "node":  # the inner engine writes sysctls of its containers' namespaces
            host_config["MaskedPaths"] = []
            host_config["ReadonlyPaths"] = []
        created = api.create_container(
            NODE_IMAGE,
            command=[command],
            name=name,
            hostname=name,
            labels=dict(self.labels),
            host_config=host_config,
            ports=[int(port.split("/")[0]) for port in kwargs.get("ports") or {}],
            networking_config=api.create_networking_config(
                {self._network.name: api.create_endpoint_config(aliases=kwargs.get("aliases"))}
            ),
            detach=True,
        )
        self._created.append(created["Id"])
        api.start(created["Id"])
        return self.client.containers.get(created["Id"])

    def _node(self, name: str) -> Any:
        binds = {str(self.models_dir): {"bind": NODE_MODELS, "mode": "ro"}} if self.models_dir else None
        return self._container(name, "node", ports={f"{SERVICE_PORT}/tcp": ("127.0.0.1", None)}, binds=binds)

    def _engine_answers(self, node: str) -> bool:
        return self.docker(node, "info", "--format", "{{.ServerVersion}}").ok

    def _registry_answers(self) -> bool:
        return http("GET", f"http://127.0.0.1:{self._registry_port}/v2/", timeout=2).status == 200

    def address(self, node: str) -> str:
        container = self.client.containers.get(node)
        return str(container.attrs["NetworkSettings"]["Networks"][self._network.name]["IPAddress"])

    def _form_swarm(self) -> None:
        self.docker(self.manager, "swarm", "init", "--advertise-addr", self.address(self.manager), check=True)
        token = self.docker(self.manager, "swarm", "join-token", "-q", "worker", check=True).output.strip()
        for worker in self.workers:
            self.docker(worker, "swarm", "join", "--token", token, f"{self.address(self.manager)}:2377", check=True)
        poll(lambda: self.ready_nodes() == NODE_COUNT, timeout=ENGINE_TIMEOUT, what="the swarm's nodes")

    def close(self) -> None:
        """Remove the nodes (with their volumes), the registry, the network and the pushed tags."""
        for ref in self._pushed:
            try:
                self.client.images.remove(ref, noprune=True)
            except docker.errors.APIError:
                pass
        self._pushed.clear()
        for container_id in reversed(self._created):
            try:
                self.client.api.remove_container(container_id, v=True, force=True)
            except docker.errors.NotFound:
                pass
        self._created.clear()
        if self._network is not None:
            try:
                self._network.remove()
            except docker.errors.NotFound:
                pass
            self._network = None

    # -- using it ----------------------------------------------------------------------------
    def docker(self, node: str, *args: str, check: bool = False, env: Mapping[str, str] | None = None) -> Exec:
        """`docker <args>` on a node's engine."""
        return self.run(node, ["docker", *args], check=check, env=env)

    def run(self, node: str, argv: list[str], *, check: bool = False, env: Mapping[str, str] | None = None) -> Exec:
        container = self.client.containers.get(node)
        code, out = container.exec_run(argv, environment=dict(env or {}), demux=False)
        result = Exec(int(code), (out or b"").decode(errors="replace"))
        if check and not result.ok:
            raise ClusterError(f"{' '.join(argv)} on {node} exited {code}: {result.output.strip()[-800:]}")
        return result

    def put_files(self, node: str, files: Mapping[str, bytes], target: str) -> None:
        """Write files (relative path: content) under `target` on a node."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for path, content in files.items():
                info = tarfile.TarInfo(path)
                info.size = len(content)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(content))
        self.run(node, ["mkdir", "-p", target], check=True)
        self.client.containers.get(node).put_archive(target, buffer.getvalue())

    def push(self, image: str, name: str) -> str:
        """Push an image of the outer engine to the cluster's registry; its name for the nodes."""
        outer = f"127.0.0.1:{self._registry_port}/{name}"
        self.client.images.get(image).tag(outer)
        self._pushed.append(outer)
        # the CLI, not docker-py: it reports a failed push by its exit status
        done = subprocess.run(["docker", "push", "-q", outer], capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise ClusterError(f"pushing {image} to the cluster's registry failed: {done.stderr.strip()[-500:]}")
        return f"{REGISTRY}/{name}"

    def mirror(self, image: str) -> None:
        """Push a Docker Hub image (`postgres:15`) to the registry, which the nodes use as Docker Hub's mirror:
        a stack names it as usual."""
        repository, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "latest")
        name = repository if "/" in repository else f"library/{repository}"
        self.push(image, f"{name}:{tag}")

    def ready_nodes(self) -> int:
        listed = self.docker(self.manager, "node", "ls", "--format", "{{.Status}}")
        return sum(line.strip() == "Ready" for line in listed.output.splitlines()) if listed.ok else 0

    def url(self, node: str, path: str = "/") -> str:
        """The URL of a node's port 8000 from the outer host."""
        container = self.client.containers.get(node)
        port = container.ports[f"{SERVICE_PORT}/tcp"][0]["HostPort"]
        return f"http://127.0.0.1:{port}{path}"

    def stop_node(self, node: str) -> None:
        self.client.containers.get(node).stop(timeout=5)

    def answers(self, node: str, path: str = "/health") -> bool:
        try:
            return http("GET", self.url(node, path), timeout=3).status == 200
        except (ProbeError, KeyError, IndexError, docker.errors.APIError):
            return False
