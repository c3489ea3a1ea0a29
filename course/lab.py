"""Start JupyterLab for the course (`make lab`), and the same code path for tests.

`LabServer` runs `jupyter lab` from this environment bound to 127.0.0.1 with a
random token, waits until it answers, and stops it on exit.

A learner's lab serves the learner area (`learner_area()`): a folder holding only
links to lessons/ and exercises/, so that its file browser never shows the
solutions, the grader's source, the tests or nbgrader's generated source. The
instructor's lab serves the repository.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

from dockerkit.http import http
from dockerkit.net import free_port as free_port
from dockerkit.process import kill_group
from dockerkit.wait import WaitFailed, poll

ROOT = Path(__file__).resolve().parent.parent
FIRST_PAGE = "lessons/01-deployment-options.ipynb"
# Each role's lab settings folder (page_config.json: disabled plugins; overrides.json: defaults),
# passed per launch so that nobody's own Jupyter configuration is touched. Learners get no
# nbgrader instructor tools and no news prompt, and keep the Assignments list (File menu).
LAB_SETTINGS = ROOT / "course" / "jupyter"
# What a learner's lab shows: {name in the learner area: folder of the repository}.
LEARNER_AREA = ROOT / ".learner"
LEARNER_LINKS = {"lessons": "lessons", "exercises": "exercises"}
INSTRUCTOR_SERVER_EXTENSIONS = ("nbgrader.server_extensions.formgrader",
                                "nbgrader.server_extensions.course_list")


def role_options(instructor: bool = False) -> list[str]:
    """`jupyter lab` options for a learner's lab, or an instructor's."""
    options = [f"--LabApp.app_settings_dir={LAB_SETTINGS / ('instructor' if instructor else 'learner')}"]
    if not instructor:
        options += [f"--ServerApp.jpserver_extensions={ext}=False" for ext in INSTRUCTOR_SERVER_EXTENSIONS]
    return options


class LabError(RuntimeError):
    """JupyterLab could not be started."""


def learner_area(area: Path = LEARNER_AREA, repo: Path = ROOT) -> Path:
    """The folder a learner's lab serves: links to the lessons and the exercise workspaces, nothing else.

    A link is created where none is; nothing that exists is ever replaced (a learner's own file
    or folder of that name is theirs): the lab refuses to start instead."""
    area.mkdir(parents=True, exist_ok=True)
    for name, target in LEARNER_LINKS.items():
        link, real = area / name, (repo / target).resolve()
        if link.is_symlink() and link.resolve() == real:
            continue
        if link.exists() or link.is_symlink():
            raise LabError(f"{link} exists and is not the link to {target}/ that the lab serves: "
                           "move it away, it is not the course's to replace")
        link.symlink_to(os.path.relpath(real, area), target_is_directory=True)
    return area


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class LabServer:
    def __init__(self, port: int | None = None, root: Path = ROOT, token: str | None = None,
                 start_timeout: float = 60.0, instructor: bool = False) -> None:
        self.port = port or free_port()
        self.instructor = instructor
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

    def start(self, stream=None) -> LabServer:
        if not port_is_free(self.port):
            raise LabError(f"port {self.port} is already in use: choose another with `make lab PORT=...`")
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
               f"--port={self.port}", "--port-retries=0", f"--ServerApp.root_dir={self.root}",
               f"--IdentityProvider.token={self.token}", *role_options(self.instructor)]
        if os.geteuid() == 0:
            cmd.append("--allow-root")  # containers and CI run as root
        self.proc = subprocess.Popen(cmd, stdout=stream or subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT if stream else subprocess.DEVNULL,
                                     start_new_session=True)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        status_url = f"{self.base_url}/api/status?token={self.token}"
        proc = self.proc
        assert proc is not None

        def exited() -> str | None:
            code = proc.poll()
            return None if code is None else f"jupyter lab exited with status {code} before answering"

        try:
            poll(lambda: http("GET", status_url, timeout=2).status == 200, timeout=self.start_timeout,
                 what=f"jupyter lab on {self.base_url}", stopped=exited)
        except WaitFailed as failed:
            self.stop()
            if proc.poll() is not None and "exited" in str(failed):
                raise LabError(f"jupyter lab exited with status {proc.returncode} before answering") from None
            raise LabError(f"jupyter lab did not answer on {self.base_url} within "
                           f"{self.start_timeout:.0f} s") from None

    def stop(self) -> None:
        if self.proc is not None:
            kill_group(self.proc, grace=15)  # time for jupyter to shut its kernels down

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start JupyterLab on the course's first lesson")
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--instructor", action="store_true",
                        help="keep nbgrader's instructor tools (formgrader, Create Assignment)")
    args = parser.parse_args(argv)
    try:
        root = ROOT if args.instructor else learner_area()
        server = LabServer(port=args.port, root=root, instructor=args.instructor)
        server.start(stream=sys.stderr)
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 2
    print(f"\nlab: JupyterLab is running. Open this URL in your browser:\n\n    {server.url}\n\n"
          "lab: press Ctrl-C to stop it.", flush=True)
    try:
        if server.proc is not None:
            server.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
