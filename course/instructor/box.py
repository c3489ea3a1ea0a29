"""One grading box: a disposable rootless Docker-in-Docker container in which one
submission (one student, one exercise) is executed and graded.

The box owns what it creates on the instructor's engine -- the container and its
own bridge network, both labelled
`org.genai-course.managed=true` and `org.genai-course.session=<uuid>` -- and
removes them when it closes, also after a timeout, an exception or Ctrl-C.
What a submission builds or runs lives in the box's inner engine and goes with
the box. Work inside the box runs as its unprivileged user `grader`; only
read-only bind mounts of the host reach it (the exported model). Its root
filesystem is read-only and every place it can write (the inner engine's data,
its home, /tmp, /var/tmp, /run) is a tmpfs with a size: the disk budget
(BoxLimits.disk) holds, and nothing a submission writes reaches the host's disk.

Usage:
    with GradingBox(client, image, name="alice-01-first-image") as box:
        box.load_images(["python:3.11-slim"])
        box.put_tree(workspace, "/home/grader/work")
        result = box.run(["python3", "-c", "print(1)"], timeout=60)
"""

from __future__ import annotations

import atexit
import io
import os
import re
import subprocess
import tarfile
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import docker
import docker.errors

from course.instructor import settings
from dockerkit.process import run_bounded
from course.instructor.errors import BoxError, BoxTimeout, UntrustedOutput

BOX_USER = "1000:1000"
WORK_DIR = "/home/grader/work"
COURSE_DIR = "/course"
ENGINE_DATA = "/home/grader/.local/share/docker"
MAX_OUTPUT_BYTES = 64 << 20      # what one command may print (a notebook with outputs fits)
MAX_UPLOAD_BYTES = 512 << 20     # a submission's files


def safe_name(text: str, limit: int = 40) -> str:
    """A Docker-safe fragment of a name ([a-z0-9_.-]); student ids come from outside."""
    cleaned = re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-.")
    return (cleaned or "x")[:limit]


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    stdout: bytes
    stderr: bytes
    duration_s: float

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.stderr.decode(errors="replace").splitlines()[-lines:])


def host_addresses() -> list[str]:
    """The IPv4 addresses of this machine (the box must not reach its services)."""
    try:
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
    except OSError:
        return []
    found = set()
    for previous, line in zip(lines, lines[1:]):
        if line.strip() == "/32 host LOCAL":
            address = previous.strip().split()[-1]
            if not address.startswith("127."):
                found.add(address)
    return sorted(found)


def _tar_tree(source: Path, owner: int, mode_mask: int, skipped: list[str],
              exclude: Callable[[str], bool] = lambda rel: False) -> bytes:
    """A tar of `source`'s regular files and folders, owned by `owner`. Links and
    special files are left out (a link could point at the instructor's files)."""
    buffer = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for root, dirs, files in os.walk(source, followlinks=False):
            root_path = Path(root)
            for name in sorted(dirs + files):
                path = root_path / name
                rel = path.relative_to(source).as_posix()
                if exclude(rel):
                    if name in dirs:
                        dirs.remove(name)
                    continue
                st = path.lstat()
                if path.is_symlink() or not (path.is_dir() or path.is_file()):
                    skipped.append(rel)
                    continue
                info = tarfile.TarInfo(rel)
                info.uid = info.gid = owner
                info.uname = info.gname = ""
                info.mtime = int(st.st_mtime)
                if path.is_dir():
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755 & mode_mask
                    tar.addfile(info)
                    continue
                info.size = st.st_size
                info.mode = (0o755 if st.st_mode & 0o111 else 0o644) & mode_mask
                total += st.st_size
                if total > MAX_UPLOAD_BYTES:
                    raise UntrustedOutput(f"{source} holds more than {MAX_UPLOAD_BYTES >> 20} MB")
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
            dirs[:] = [d for d in dirs if not (root_path / d).is_symlink()]
    return buffer.getvalue()


def box_tmpfs(limits: settings.BoxLimits) -> dict[str, str]:
    """Every place a box can write, each a tmpfs with a size: the inner engine's data gets the
    disk budget, the box's own folders a quarter of it each (at least 64 MB)."""
    disk = limits.disk_bytes
    share = max(disk // 4, 64 << 20)
    user = "uid=1000,gid=1000"
    # exec,dev,suid wherever the inner engine may bind-mount from (its data for BuildKit, a compose
    # file's secrets in the workspace or the grader's copy of it in /tmp, a run.sh's bind mounts): it
    # remounts them read-only, which a user namespace refuses when the source carries Docker's default
    # noexec/nosuid/nodev. Nothing in the box is root outside its user namespace: they give it nothing.
    flags = "exec,dev,suid"
    return {"/home/grader": f"size={share},{user},mode=0755,{flags}",
            ENGINE_DATA: f"size={disk},{user},mode=0700,{flags}",
            "/tmp": f"size={share},mode=1777,{flags}", "/var/tmp": f"size={share},mode=1777,{flags}",
            "/run": f"size={64 << 20},mode=0755",
            COURSE_DIR: f"size={max(share, 256 << 20)},mode=0755"}


class GradingBox:
    """A started box; use as a context manager so that it is always removed."""

    def __init__(self, client: docker.DockerClient, image: str, *, name: str,
                 limits: settings.BoxLimits | None = None, models_dir: Path | None = None,
                 session: str | None = None) -> None:
        self.client = client
        self.image = image
        self.limits = limits or settings.BoxLimits.from_env()
        self.models_dir = models_dir
        self.session = session or str(uuid.uuid4())
        suffix = self.session.replace("-", "")[:8]
        self.name = f"genai-box-{safe_name(name)}-{suffix}"
        self.labels = {settings.MANAGED_LABEL: "true", settings.SESSION_LABEL: self.session,
                       settings.COMPONENT_LABEL: "grading-box"}
        worker = settings.grading_worker()
        if worker:
            self.labels[settings.WORKER_LABEL] = worker
        self.container_id: str | None = None
        self.network_name = f"{self.name}-net"
        self._network = None

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> GradingBox:
        try:
            self.start()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()

    def start(self) -> None:
        # Its own bridge: boxes of different students cannot reach each other.
        self._network = self.client.networks.create(self.network_name, driver="bridge", labels=self.labels)
        binds = {}
        if self.models_dir is not None:
            binds[str(self.models_dir)] = {"bind": f"{COURSE_DIR}/models/{self.models_dir.name}", "mode": "ro"}
        api = self.client.api
        host_config = api.create_host_config(
            binds=binds,
            network_mode=self.network_name,
            # SYS_ADMIN: only left in the bounding set, for the set-uid newuidmap (box-init.sh);
            # NET_ADMIN: only while box-init.sh, as root, installs the egress policy.
            cap_add=["SYS_ADMIN", "NET_ADMIN"],
            devices=["/dev/net/tun:/dev/net/tun:rwm"],
            security_opt=["apparmor=unconfined", "seccomp=unconfined"],
            mem_limit=self.limits.memory,
            memswap_limit=self.limits.memory,
            nano_cpus=int(self.limits.cpus * 1e9),
            pids_limit=self.limits.pids,
            # The disk budget: the root filesystem is read-only and every place the box can
            # write is a tmpfs with a size, so nothing a submission writes reaches the host's disk.
            read_only=True,
            tmpfs=box_tmpfs(self.limits),
        )
        # The inner engine mounts a fresh /proc for its containers, which the kernel
        # refuses while paths of the box's /proc are masked (`--security-opt systempaths=unconfined`).
        host_config["MaskedPaths"] = []
        host_config["ReadonlyPaths"] = []
        environment = {"BOX_EGRESS": self.limits.egress,
                       "BOX_DENY_EXTRA": " ".join(f"{address}/32" for address in host_addresses())}
        created = api.create_container(self.image, name=self.name, labels=self.labels, host_config=host_config,
                                       environment=environment, detach=True)
        self.container_id = created["Id"]
        api.start(self.container_id)
        self._wait_for_engine()
        # The mount points of the engine's tmpfs were created by root inside the home tmpfs;
        # give them back to the box user (a trusted step, before any submission code runs).
        self._root(["chown", "1000:1000", "/home/grader/.local", "/home/grader/.local/share"])
        self._root(["install", "-d", "-o", "1000", "-g", "1000", "-m", "0755", WORK_DIR])

    def _wait_for_engine(self) -> None:
        deadline = time.monotonic() + self.limits.start_timeout
        last = ""
        while time.monotonic() < deadline:
            state = self.client.api.inspect_container(self.container_id)["State"]
            if not state.get("Running"):
                break
            done = run_bounded(["docker", "exec", "-u", BOX_USER, self._id(),
                                "docker", "version", "-f", "{{.Server.Version}}"], timeout=15, split=True)
            if done.returncode == 0:
                return
            last = done.error_text.strip()
            time.sleep(0.3)  # polling interval
        logs = self.client.api.logs(self.container_id, tail=25).decode(errors="replace")
        state = self.client.api.inspect_container(self.container_id)["State"]
        raise BoxError(f"the inner engine of {self.name} did not answer within "
                       f"{self.limits.start_timeout:.0f} s (box {state.get('Status')}, last error: {last});"
                       f" last lines of its log:\n{logs}")

    def remove(self) -> None:
        """Remove the container, the inner engine's volume and the network; never raises
        (what still cannot be removed after a few tries is left to `make clean`, by label)."""
        container, self.container_id = self.container_id, None
        steps = [lambda: self.client.networks.get(self.network_name).remove()]
        if container:
            steps.insert(0, lambda: self.client.api.remove_container(container, force=True, v=True))
        for step in steps:
            for attempt in range(4):
                try:
                    step()
                    break
                except docker.errors.NotFound:
                    break
                except (docker.errors.APIError, OSError):
                    time.sleep(0.5 * (attempt + 1))  # the engine may still be releasing the container

    # -- work inside the box -----------------------------------------------------------------
    def run(self, cmd: Sequence[str], *, timeout: float, stdin: bytes | None = None,
            workdir: str | None = None, env: dict[str, str] | None = None,
            max_bytes: int = MAX_OUTPUT_BYTES) -> RunResult:
        """Run `cmd` in the box as its unprivileged user. Past `timeout` the box is removed
        (the only way to be sure nothing inside keeps running) and BoxTimeout raised."""
        if not self.container_id:
            raise BoxError(f"{self.name} is not running")
        exec_cmd = ["docker", "exec", "-u", BOX_USER]
        if stdin is not None:
            exec_cmd.append("-i")
        if workdir:
            exec_cmd += ["-w", workdir]
        for key, value in (env or {}).items():
            exec_cmd += ["-e", f"{key}={value}"]
        start = time.monotonic()
        done = run_bounded([*exec_cmd, self.container_id, *cmd], stdin=stdin, timeout=timeout,
                           split=True, max_bytes=max_bytes)
        duration = time.monotonic() - start
        code, out, err, overflow = done.returncode, done.output, done.errors, done.overflowed
        if code is None:
            self.remove()
            raise BoxTimeout(f"{cmd[0]} in {self.name} ran past its {timeout:.0f} s limit; the box was removed")
        if overflow:
            raise UntrustedOutput(f"{cmd[0]} in {self.name} printed more than {max_bytes >> 20} MB")
        return RunResult(code, out, err, duration)

    def put_tree(self, source: Path, dest: str, *, owner: int = 1000, read_only: bool = False,
                 exclude: Callable[[str], bool] = lambda rel: False) -> list[str]:
        """Copy a host folder into the box; returns what was left out (links, special files).
        `read_only`: owned by the box's root, so nothing in the box can change it.
        `exclude(relative_path)`: files and folders to leave out on purpose."""
        skipped: list[str] = []
        data = _tar_tree(Path(source), 0 if read_only else owner, 0o755, skipped, exclude)
        self._mkdir(dest, 0 if read_only else owner)
        self._untar(data, dest, source)
        return skipped

    def put_file(self, source: Path, dest_dir: str, *, owner: int = 1000, read_only: bool = False) -> None:
        """Copy one host file into a folder of the box (see put_tree for `read_only`)."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(Path(source).name)
            info.size, info.mode = Path(source).stat().st_size, 0o644
            info.uid = info.gid = 0 if read_only else owner
            with open(source, "rb") as fh:
                tar.addfile(info, fh)
        self._mkdir(dest_dir, 0 if read_only else owner)
        self._untar(buffer.getvalue(), dest_dir, source)

    def _id(self) -> str:
        if not self.container_id:
            raise BoxError(f"{self.name} is not running")
        return self.container_id

    def _untar(self, data: bytes, dest: str, source: Path) -> None:
        # `docker cp` (put_archive) writes below the box's tmpfs mounts, not into them: the
        # archive is unpacked inside the box instead, by its root, from a tar we built.
        done = run_bounded(["docker", "exec", "-i", "-u", "0", self._id(), "tar", "-x", "-p", "-C", dest],
                           stdin=data, timeout=300, split=True)
        if done.returncode != 0:
            raise BoxError(f"could not copy {source} into {self.name}:{dest}: {done.error_text.strip()}")

    def _root(self, cmd: Sequence[str]) -> str:
        done = run_bounded(["docker", "exec", "-u", "0", self._id(), *cmd], timeout=30, split=True)
        if done.returncode != 0:
            raise BoxError(f"{' '.join(cmd)} failed in {self.name}: {done.error_text.strip()}")
        return done.output.decode(errors="replace")

    def disk_full(self) -> list[str]:
        """The box's tmpfs mounts that are (nearly) full: what a submission wrote past its disk
        budget failed there. Empty when the box is gone or nothing is full."""
        if not self.container_id:
            return []
        done = run_bounded(["docker", "exec", "-u", "0", self.container_id, "df", "-B1", "--output=target,used,size",
                            *box_tmpfs(self.limits)], timeout=30, split=True)
        full = []
        for line in done.output.decode(errors="replace").splitlines()[1:]:
            parts = line.split()
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit() and int(parts[2]) > 0:
                target, used, size = parts[0], int(parts[1]), int(parts[2])
                if size - used < max(size // 100, 1 << 20):
                    full.append(f"{target} ({used >> 20} MB of {size >> 20} MB)")
        return full

    def _mkdir(self, path: str, owner: int) -> None:
        # As the box's root, from the host: a trusted step before any submission code runs.
        done = run_bounded(["docker", "exec", "-u", "0", self._id(), "install", "-d",
                            "-m", "0755", "-o", str(owner), "-g", str(owner), path], timeout=30, split=True)
        if done.returncode != 0:
            raise BoxError(f"could not create {path} in {self.name}: {done.error_text.strip()}")

    def load_images(self, refs: Iterable[str], timeout: float = 600.0) -> float:
        """Copy images from the instructor's engine into the inner engine (no registry needed)."""
        refs = list(refs)
        if not refs:
            return 0.0
        start = time.monotonic()
        save = subprocess.Popen(["docker", "save", *refs], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            load = subprocess.run(["docker", "exec", "-i", "-u", BOX_USER, self._id(),
                                   "docker", "load", "-q"], stdin=save.stdout, capture_output=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            save.kill()
            raise BoxError(f"loading {', '.join(refs)} into {self.name} took more than {timeout:.0f} s") from None
        finally:
            assert save.stdout is not None and save.stderr is not None  # both are pipes
            save.stdout.close()
            save_err = save.stderr.read().decode(errors="replace")
            save.wait()
        if save.returncode != 0 or load.returncode != 0:
            why = save_err.strip() or load.stderr.decode(errors="replace").strip()
            raise BoxError(f"could not load {', '.join(refs)} into {self.name}: {why}")
        return time.monotonic() - start


class Janitor:
    """Removes finished boxes in the background: deleting a box's images takes seconds
    the next grading need not wait for. `drain()` waits for every removal; it runs at
    exit too, so a process never ends with a box of its own still there."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="box-removal")
        self._pending: list[Future] = []
        self._lock = threading.Lock()
        atexit.register(self.drain)

    def remove_later(self, box: GradingBox) -> None:
        with self._lock:
            self._pending.append(self._pool.submit(self._remove, box))

    @staticmethod
    def _remove(box: GradingBox) -> None:
        box.client = docker.from_env(timeout=300)  # the caller may close its own client meanwhile
        try:
            box.remove()
        finally:
            box.client.close()

    def drain(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.exception()  # remove() never raises; wait for it


JANITOR = Janitor()
