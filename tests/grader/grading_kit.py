"""Helpers for the tests of exercises 05-08, whose reference solutions are the service's own files.

- Known-bad fixtures are folders under tests/grader/fixtures/<exercise>/<name>/: files to lay over
  the solved workspace, and/or an `edits.yaml` that changes the service's files in the copy, so a
  fixture stays a few lines and never a stale copy of a service file:
      compose.yaml:             # a YAML file: structural edits (dotted paths, list indexes allowed)
        set: {services.server.read_only: false}
        delete: [services.db.deploy]
      Dockerfile:               # any other file: regular expressions (multiline), each must match;
        - {pattern: '^USER fastapi\\n', replace: ''}   # the replacement is literal text
- `grade_only` grades some checks of an exercise (and the checks they need), so that a check that
  reads the configuration is proven with a fixture that fails in seconds, without a stack.
- `compose_leftovers` finds what a grading of a compose exercise could leave under its project's
  name; volumes no label names (the anonymous volumes of an image's VOLUME) show in the
  before/after snapshot of everything the engine holds.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any, Iterable

import yaml

from grader.engine import Engine
from grader.grading import grade
from grader.options import GradingOptions
from grader.results import ExerciseReport
from grader.workspace import materialize
from tests.helpers import snapshot

FIXTURES = Path(__file__).with_name("fixtures")
EDITS = "edits.yaml"


def _walk(document: Any, dotted: str) -> tuple[Any, Any]:
    *parents, last = [int(p) if p.isdigit() else p for p in dotted.split(".")]
    node = document
    for key in parents:
        node = node[key]
    return node, last


def edit_yaml(path: Path, spec: dict) -> None:
    document = yaml.safe_load(path.read_text())
    for dotted, value in (spec.get("set") or {}).items():
        parent, key = _walk(document, dotted)
        parent[key] = value
    for dotted in spec.get("delete") or []:
        parent, key = _walk(document, dotted)
        del parent[key]   # a KeyError here: the fixture no longer matches the service's file
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def edit_text(path: Path, rules: list[dict]) -> None:
    text = path.read_text()
    for rule in rules:
        # the replacement is literal text (a fixture's shell lines are full of backslashes)
        text, count = re.subn(rule["pattern"], lambda _, literal=rule["replace"]: literal, text, flags=re.MULTILINE)
        assert count, f"{path.name}: the fixture's pattern {rule['pattern']!r} matches nothing any more"
    path.write_text(text)


def apply_fixture(exercise_id: str, fixture: str, workspace: Path) -> None:
    source = FIXTURES / exercise_id / fixture
    assert source.is_dir(), f"no fixture {source}"
    for item in sorted(source.rglob("*")):
        if item.is_file() and item.name != EDITS:
            target = workspace / item.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(item.read_bytes())
    edits = source / EDITS
    if edits.is_file():
        for name, spec in (yaml.safe_load(edits.read_text()) or {}).items():
            path = workspace / name
            assert path.is_file(), f"{fixture} edits {name}, which the workspace lacks"
            if path.suffix in (".yaml", ".yml"):
                edit_yaml(path, spec)
            else:
                edit_text(path, spec)


def workspace_for(exercise_id: str, dest: Path, fixture: str | None = None, solution: bool = True) -> Path:
    workspace = materialize(exercise_id, dest, with_solution=solution)
    if fixture is not None:
        apply_fixture(exercise_id, fixture, workspace)
    return workspace


def grade_only(exercise_id: str, workspace: Path, check_ids: Iterable[str], *, options: GradingOptions,
               engine: Engine) -> ExerciseReport:
    """grader.grading.grade for these checks and what they need (the report holds only those)."""
    return grade(exercise_id, workspace, options, only=check_ids, engine=engine)


def compose_leftovers(client, session_id: str) -> list[str]:
    """The grading's compose project if it still exists, and what carries its compose label (a volume
    no label names, such as the anonymous volume of an image's VOLUME orphaned by a `down`, is in the
    before/after snapshot that `leftovers` compares)."""
    found = []
    project = f"genai-grade-{session_id}"
    proc = subprocess.run(["docker", "compose", "ls", "--all", "--quiet", "--filter", f"name={project}"],
                          capture_output=True, text=True, timeout=60)
    found += [f"compose project {name}" for name in proc.stdout.split() if name == project]
    label = {"label": f"com.docker.compose.project={project}"}
    found += [f"container {c.name}" for c in client.containers.list(all=True, filters=label)]
    found += [f"volume {v.name}" for v in client.volumes.list(filters=label)]
    found += [f"network {n.name}" for n in client.networks.list(filters=label)]
    return found


def grader_for(exercise_id: str, tmp_path: Path, engine: Engine, client, base_options: GradingOptions):
    """run(fixture=None, *, checks=None, solution=True, **limits) -> report, after proving that the
    grading left nothing behind (labelled resources, fixed names, its compose project, orphaned volumes)."""
    from dataclasses import replace
    from itertools import count

    from tests.grader.conftest import leftovers

    numbers = count()

    def run(fixture: str | None = None, *, checks: Iterable[str] | None = None, solution: bool = True,
            **limits: Any) -> ExerciseReport:
        options = replace(base_options, **limits)
        workspace = workspace_for(exercise_id, tmp_path / f"ws{next(numbers)}", fixture, solution)
        before = snapshot(client)
        report = grade(exercise_id, workspace, options, only=checks, engine=engine)
        left = leftovers(client, report.session_id, exercise_id, before) + \
            compose_leftovers(client, report.session_id)
        assert not left, f"the grading left {left}"
        return report
    return run


def assert_fails_exactly(report: ExerciseReport, check_id: str, fragment: str) -> None:
    """conftest's assert_fails_exactly, with checks this host cannot evaluate (skipped, worth 0 here:
    cuda_provider without a GPU) left out: they neither pass nor fail."""
    from dataclasses import replace

    from tests.grader import conftest
    counted = tuple(c for c in report.checks if not (c.status.value == "skipped" and c.max_points == 0))
    conftest.assert_fails_exactly(replace(report, checks=counted), check_id, fragment)
