"""Are the hash locks complete, current and consistent, and is the learner's free of test tools?

No network: these read requirements/*.in, the locks they generate and the imports of course/
and grader/.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
REQS = ROOT / "requirements"
LOCKS = ("course", "dev", "export")
# Named by the issue that split the locks: never in the learner's environment.
TEST_TOOLS = {"pytest", "schemathesis", "playwright"}
LINUX = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
         "platform_machine": "x86_64", "python_version": "3.11", "python_full_version": "3.11.7",
         "implementation_name": "cpython", "platform_python_implementation": "CPython"}


def lock_entries(env: str) -> list[tuple[Requirement, list[str]]]:
    """(requirement, hashes) for every entry of requirements/<env>.txt."""
    text = (REQS / f"{env}.txt").read_text()
    entries = []
    for block in re.split(r"\n(?=\S)", text):
        lines = [line.split("#", 1)[0].strip(" \\") for line in block.splitlines()]
        lines = [line for line in lines if line]
        if not lines:
            continue
        hashes = [line.removeprefix("--hash=") for line in lines[1:] if line.startswith("--hash=")]
        entries.append((Requirement(lines[0]), hashes))
    return entries


def pins(env: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for req, _ in lock_entries(env):
        out.setdefault(canonicalize_name(req.name), set()).add(next(iter(req.specifier)).version)
    return out


def via(env: str) -> dict[str, set[str]]:
    """What each entry of the lock is there for, from uv's `# via` annotations."""
    out: dict[str, set[str]] = {}
    name = ""
    for line in (REQS / f"{env}.txt").read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            name = canonicalize_name(Requirement(line.rstrip(" \\")).name)
            out[name] = set()
        elif line.strip().startswith("# via") or line.strip().startswith("#   "):
            source = line.strip().removeprefix("#").strip().removeprefix("via").strip()
            if source and name:
                out[name].add(source)
    return out


def declared(path: Path) -> list[Requirement]:
    """The requirements an input file declares, following -r (not -c: constraints add nothing)."""
    reqs: list[Requirement] = []
    for line in path.read_text().splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#") or line.startswith("-c"):
            continue
        if line.startswith("-r"):
            reqs += declared((path.parent / line[2:].strip()).resolve())
        else:
            reqs.append(Requirement(line))
    return reqs


@pytest.mark.parametrize("env", LOCKS)
def test_every_entry_is_pinned_and_hashed(env):
    """Can pip install the lock with --require-hashes: one exact version and sha256 hashes each?"""
    entries = lock_entries(env)
    assert len(entries) > 10
    for req, hashes in entries:
        assert len(req.specifier) == 1 and next(iter(req.specifier)).operator == "==", str(req)
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), str(req)


@pytest.mark.parametrize("env", LOCKS)
def test_lock_holds_what_its_input_declares(env):
    """Is the lock current: every package its .in (and service/requirements.txt) names is in it,
    at the pinned version where the input pins one? If not, run `make lock`."""
    locked = pins(env)
    for req in declared(REQS / f"{env}.in"):
        if req.marker and not req.marker.evaluate(LINUX):
            continue
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is declared in {env}.in but not locked: run `make lock`"
        assert any(req.specifier.contains(v, prereleases=True) for v in locked[name]), \
            f"{env}.txt has {req.name} {locked[name]}, {env}.in asks {req.specifier}: run `make lock`"


def test_learners_get_no_test_tools():
    """Does the learner's lock leave out every tool that only dev.in adds (pytest, schemathesis,
    Playwright, the linters, uv)?"""
    course_declared = {canonicalize_name(r.name) for r in declared(REQS / "course.in")}
    dev_only = {canonicalize_name(r.name) for r in declared(REQS / "dev.in")} - course_declared
    assert TEST_TOOLS <= dev_only
    course = set(pins("course"))
    assert not TEST_TOOLS & course and not {n for n in course if n.startswith("pytest")}
    # A library the tests import may come in as a learner package's dependency (httpx, for
    # JupyterLab), never because the learner's input asks for it.
    asked = {n for n, sources in via("course").items() if any(s.startswith("-r") for s in sources)}
    assert not dev_only & asked, f"test tools asked for by the learner's lock: {sorted(dev_only & asked)}"


@pytest.mark.parametrize("env", ["dev", "export"])
def test_locks_agree_on_shared_versions(env):
    """Do dev.txt and export.txt pin every package they share with the others at the same
    version, so that the locks install together into one environment?"""
    mine = pins(env)
    for other in LOCKS:
        if other == env:
            continue
        theirs = pins(other)
        for name in mine.keys() & theirs.keys():
            assert mine[name] & theirs[name], f"{name}: {env}.txt {mine[name]}, {other}.txt {theirs[name]}"


def test_export_lock_takes_only_torchs_cpu_build():
    """On Linux, is torch locked as the +cpu build, with no nvidia-* package anywhere?"""
    entries = lock_entries("export")
    assert not [str(r) for r, _ in entries if canonicalize_name(r.name).startswith("nvidia")]
    on_linux = [r for r, _ in entries if r.name == "torch" and (not r.marker or r.marker.evaluate(LINUX))]
    assert on_linux and all(next(iter(r.specifier)).version.endswith("+cpu") for r in on_linux), on_linux


@pytest.mark.parametrize("env", LOCKS)
def test_lock_names_no_local_source(env):
    """Does the lock name no folder or file index of the machine that generated it?"""
    text = (REQS / f"{env}.txt").read_text()
    assert "file:" not in text and "--find-links" not in text and "--index-url" not in text
    assert not re.search(r"^#.*\s/\w", text, re.M), "an absolute path in a comment"


def _third_party_imports(package: Path) -> dict[str, Path]:
    ours = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    found: dict[str, Path] = {}
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                     else [])
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ours and top != "__future__":
                    found.setdefault(top, source)
    return found


def test_course_code_declares_what_it_imports():
    """Does course.in (or the service's lock it includes) name, by itself, every distribution
    that course/ and grader/ import, instead of relying on another package to pull it in?"""
    course_declared = {canonicalize_name(r.name) for r in declared(REQS / "course.in")}
    providers = importlib.metadata.packages_distributions()
    missing = []
    for package in ("course", "grader"):
        for module, source in _third_party_imports(ROOT / package).items():
            dists = {canonicalize_name(d) for d in providers.get(module, [])}
            assert dists, f"{module} (imported by {source.relative_to(ROOT)}) is not installed"
            if not dists & course_declared:
                missing.append(f"{module} ({source.relative_to(ROOT)}): {sorted(dists)}")
    assert not missing, "declare in requirements/course.in: " + "; ".join(missing)

