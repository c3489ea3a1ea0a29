"""Do imports run one way only: the Docker/process kit, then the course manifest, then the grader,
then what is built on it (the lab, the lesson kit, the widgets, the instructor workflow)?

Every import statement counts, also one inside a function: a lazy import is still an arrow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("dockerkit", "manifest", "grader", "top")
ALLOWED = {
    "dockerkit": {"dockerkit"},
    "manifest": {"manifest"},  # the manifest reads course.yaml; it needs no Docker
    "grader": {"dockerkit", "manifest", "grader"},
    "top": {"dockerkit", "manifest", "grader", "top"},
}


def layer_of(module: str) -> str | None:
    """Which layer a dotted module name belongs to; None for what is not ours."""
    top = module.split(".")[0]
    if top == "dockerkit":
        return "dockerkit"
    if top == "grader":
        return "grader"
    if module == "course.manifest":
        return "manifest"
    if top == "course":
        return "top" if module != "course" else "package"
    return None


def imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            # `from course import manifest` imports course.manifest: its layer is the module's
            found += [(node.lineno, f"{base}.{alias.name}" if base == "course" else base) for alias in node.names]
    return found


def our_modules() -> list[tuple[Path, str]]:
    found = []
    for package in ("dockerkit", "grader", "course"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found.append((path, module))
    return found


def upward_imports(modules: list[tuple[Path, str]]) -> list[str]:
    wrong = []
    for path, module in modules:
        here = layer_of(module)
        if here not in ALLOWED:
            continue
        for line, target in imports(path, module):
            there = layer_of(target)
            if there == "package":  # `import course` alone runs only course/__init__.py
                continue
            if there is not None and there not in ALLOWED[here]:
                shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                wrong.append(f"{shown}:{line} ({here}) imports {target} ({there})")
    return wrong


def test_imports_run_one_way():
    """Is there no import from a lower layer to a higher one?"""
    assert upward_imports(our_modules()) == []


def test_the_course_package_itself_imports_nothing_of_ours():
    """Does importing course.manifest load nothing above it (course/__init__.py is empty of imports)?"""
    assert [t for _, t in imports(ROOT / "course" / "__init__.py", "course") if layer_of(t)] == []


@pytest.mark.parametrize(
    "module, source, culprit",
    [
        ("dockerkit.net", "from grader.options import models_dir\n", "grader.options"),
        ("course.manifest", "import course.widgets\n", "course.widgets"),
        ("grader.notebook", "def show():\n    from course.widgets import table_text\n", "course.widgets"),
        ("grader.registry", "from course import lessonkit\n", "course.lessonkit"),
        ("dockerkit.http", "from ..grader import errors\n", "grader"),
    ],
)
def test_an_upward_import_is_caught(tmp_path, module, source, culprit):
    """Would the check fail on an upward import, also a lazy or relative one?"""
    path = tmp_path / "probe.py"
    path.write_text(source)
    found = upward_imports([(path.parent / "probe.py", module)])
    assert len(found) == 1 and culprit in found[0], found


def test_a_downward_import_is_allowed(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text("from dockerkit.net import free_port\nfrom course.manifest import load\nimport grader\n")
    assert upward_imports([(path, "course.instructor.box")]) == []
