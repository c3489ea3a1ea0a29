"""09-scale-out without an engine: where a cluster cannot be made, and how placement constraints
are read."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from grader.errors import CheckSkipped
from grader.exercises.scale_out import SwarmContext, _matches

NODE = {"ID": "abc", "Spec": {"Role": "manager", "Labels": {"genai.db": "true"}},
        "Description": {"Hostname": "node1"}}


class RootlessClient:
    def info(self):
        return {"SecurityOptions": ["name=seccomp,profile=default", "name=rootless"]}


def test_a_rootless_engine_skips_the_cluster_checks_with_the_reason():
    """Is every check skipped (not counted), saying why, on a rootless engine such as the grading box's?"""
    session = SimpleNamespace(client=RootlessClient(), options=None)
    ctx = SwarmContext(session, workspace=None, environment=None)
    with pytest.raises(CheckSkipped, match="self-paced only: this engine is rootless"):
        ctx.cluster  # noqa: B018


@pytest.mark.parametrize("constraint, expected", [
    ("node.labels.genai.db == true", True),
    ("node.labels.genai.db==false", False),
    ("node.role == manager", True),
    ("node.role != manager", False),
    ("node.hostname == node2", False),
    ("node.id == abc", True),
    ("engine.labels.zone == a", None),
])
def test_a_constraint_is_read_as_swarm_reads_it(constraint, expected):
    """Does a node satisfy a constraint as swarm decides it, and is an attribute the check cannot read left open?"""
    assert _matches(NODE, constraint) is expected
