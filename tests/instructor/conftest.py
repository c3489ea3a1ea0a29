"""Fixtures for the instructor tests that use the engine: the grading box image, built
once per run, and proof that the boxes leave nothing behind."""

from __future__ import annotations

import pytest

from course.instructor import boximage, settings
from tests.helpers import new_since, snapshot

BOX_LABEL = f"{settings.COMPONENT_LABEL}=grading-box"


@pytest.fixture(scope="session")
def box_image(docker_client) -> str:
    return boximage.ensure_image(announce=lambda line: print(line))


def box_resources(client) -> dict[str, set[str]]:
    """Every container, network and volume of a grading box on the instructor's engine."""
    flt = {"label": BOX_LABEL}
    return {"containers": {c.name for c in client.containers.list(all=True, filters=flt)},
            "networks": {n.name for n in client.networks.list(filters=flt)},
            "volumes": {v.name for v in client.volumes.list(filters=flt)}}


@pytest.fixture
def no_box_left_behind(docker_client):
    """Fails the test if a box's container, network or volume outlives it."""
    before = box_resources(docker_client)
    everything = snapshot(docker_client)
    yield
    after = box_resources(docker_client)
    left = {kind: sorted(after[kind] - before[kind]) for kind in after if after[kind] - before[kind]}
    assert not left, f"grading boxes left resources behind: {left}"
    # and nothing unlabelled either (an anonymous volume, an untagged image): all kinds, before/after
    assert new_since(docker_client, everything) == [], "a box left unlabelled resources behind"
