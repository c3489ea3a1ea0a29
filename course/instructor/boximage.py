"""Stage and build the grading box image (images/grading-box/).

The build context is staged in a temporary folder: the Dockerfile and scripts,
the host's Compose and Buildx CLI plugins (Debian 12 packages neither), the
host's CA bundle (pip behind a TLS-intercepting proxy), and requirements.txt
pinned to the versions of this venv. The tag is a digest of all of that, so an
unchanged box is never rebuilt and a changed one always is.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

from course.instructor import settings
from course.instructor.errors import BoxImageError
from dockerkit.labels import CACHE_LABEL
from dockerkit.process import run_bounded

PLUGINS = ("docker-compose", "docker-buildx")
CA_BUNDLE_DEFAULT = Path("/etc/ssl/certs/ca-certificates.crt")
BUILD_TIMEOUT = 1200.0


def requirements_text(packages: tuple[str, ...] = settings.BOX_PYTHON_PACKAGES) -> str:
    """`name==version` for each package, at the version installed in this venv."""
    lines = ["# Generated from the course's venv by course/instructor/boximage.py"]
    for name in packages:
        try:
            lines.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            raise BoxImageError(f"{name} is not installed in this environment; run `make venv`") from None
    return "\n".join(lines) + "\n"


def _ca_bundle() -> Path | None:
    path = Path(os.environ.get("CA_BUNDLE") or CA_BUNDLE_DEFAULT)
    return path if path.is_file() else None


def _sources(plugin_dir: Path) -> dict[str, Path]:
    """Every file of the build context but requirements.txt, by its name in the context."""
    files = {p.name: p for p in sorted(settings.BOX_CONTEXT.iterdir()) if p.is_file()}
    for name in PLUGINS:
        plugin = plugin_dir / name
        if not plugin.is_file():
            raise BoxImageError(f"{plugin} is missing: the box copies the host's Compose and Buildx "
                                f"plugins; run `make engine`")
        files[name] = plugin
    return files


def image_tag(plugin_dir: Path = settings.HOST_CLI_PLUGINS) -> str:
    digest = hashlib.sha256()
    ca = _ca_bundle()
    named = {**_sources(plugin_dir), **({"host-ca-bundle.crt": ca} if ca else {})}
    for name, path in sorted(named.items()):
        digest.update(name.encode() + b"\0")
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    digest.update(requirements_text().encode())
    return f"{settings.BOX_IMAGE_REPO}:{digest.hexdigest()[:12]}"


def stage(dest: Path, plugin_dir: Path = settings.HOST_CLI_PLUGINS) -> Path:
    """Write the complete build context into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for name, path in _sources(plugin_dir).items():
        shutil.copy2(path, dest / name)
    ca = _ca_bundle()
    if ca:
        shutil.copyfile(ca, dest / "host-ca-bundle.crt")
    else:
        (dest / "host-ca-bundle.crt").write_text("")
    (dest / "requirements.txt").write_text(requirements_text())
    return dest


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def ensure_image(announce=print) -> str:
    """The box image's tag, building it first if this version does not exist yet."""
    tag = image_tag()
    if image_exists(tag):
        return tag
    announce(f"building the grading box image {tag} (a few minutes, once)")
    with tempfile.TemporaryDirectory(prefix="grading-box-") as tmp:
        context = stage(Path(tmp))
        # kept between runs on purpose: its cache label says so (leftover checks forgive it)
        cmd = ["docker", "build", "--progress=plain", "--label", f"{CACHE_LABEL}=grading-box", "-t", tag,
               str(context)]
        done = run_bounded(cmd, timeout=BUILD_TIMEOUT, env={**os.environ, "DOCKER_BUILDKIT": "1"})
    if done.timed_out:
        raise BoxImageError(f"building {tag} took more than {BUILD_TIMEOUT:.0f} s")
    if done.returncode != 0:
        tail = "\n".join(done.text.splitlines()[-25:])
        raise BoxImageError(f"building {tag} failed:\n{tail}")
    _remove_stale(tag)
    return tag


def _remove_stale(current: str) -> None:
    """Older versions of the box image (same repository, our label) are of no use any more."""
    listed = subprocess.run(["docker", "images", "--filter", f"label={settings.COMPONENT_LABEL}=grading-box",
                             "--filter", f"label={settings.MANAGED_LABEL}=true",
                             "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True)
    stale = [ref for ref in listed.stdout.split() if ref.startswith(settings.BOX_IMAGE_REPO + ":")
             and ref != current]
    if stale:
        subprocess.run(["docker", "rmi", *stale], capture_output=True)
