"""Start JupyterLab for the course (`make lab`), and the same code path for tests.

`LabServer` runs `jupyter lab` from this environment bound to 127.0.0.1 with a
random token, waits until it answers, and stops it on exit.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRST_PAGE = "lessons/01-deployment-options.ipynb"


class LabError(RuntimeError):
    """JupyterLab could not be started."""


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    def __init__(self, port: int | None = None, root: Path = ROOT, token: str | None = None,
                 start_timeout: float = 60.0) -> None:
        self.port = port or free_port()
        self.root = Path(root)
        self.token = token or secrets.token_hex(16)
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        page = FIRST_PAGE if (self.root / FIRST_PAGE).exists() else ""
        return f"{self.base_url}/lab/tree/{page}?token={self.token}"

    def start(self, stream=None) -> "LabServer":
        if not port_is_free(self.port):
            raise LabError(f"port {self.port} is already in use: choose another with `make lab PORT=...`")
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
               f"--port={self.port}", "--port-retries=0", f"--ServerApp.root_dir={self.root}",
               f"--IdentityProvider.token={self.token}"]
        if os.geteuid() == 0:
            cmd.append("--allow-root")  # containers and CI run as root
        self.proc = subprocess.Popen(cmd, stdout=stream or subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT if stream else subprocess.DEVNULL,
                                     start_new_session=True)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        status_url = f"{self.base_url}/api/status?token={self.token}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LabError(f"jupyter lab exited with status {self.proc.returncode} before answering")
            try:
                with urllib.request.urlopen(status_url, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)  # polling interval while waiting for readiness
        self.stop()
        raise LabError(f"jupyter lab did not answer on {self.base_url} within {self.start_timeout:.0f} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def __enter__(self) -> "LabServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start JupyterLab on the course's first lesson")
    parser.add_argument("--port", type=int, default=8888)
    args = parser.parse_args(argv)
    server = LabServer(port=args.port)
    try:
        server.start(stream=sys.stderr)
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 2
    print(f"\nlab: JupyterLab is running. Open this URL in your browser:\n\n    {server.url}\n\n"
          "lab: press Ctrl-C to stop it.", flush=True)
    try:
        server.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
