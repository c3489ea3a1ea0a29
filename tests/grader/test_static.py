"""Static analyses on parsed Dockerfiles: what each finds, and where."""

from __future__ import annotations

import pytest

from grader import static
from grader.dockerfile import parse


@pytest.mark.parametrize("text, problems", [
    ("FROM python:3.11-slim\n", []),
    ("FROM python@sha256:" + "a" * 64 + "\n", []),
    ("FROM python\n", ["has no tag"]),
    ("FROM python:latest\n", ["latest"]),
    ("ARG T\nFROM python:$T\n", ["no default value"]),
    ("ARG T=3.11-slim\nFROM python:$T\n", []),
    ("FROM python:3.11-slim AS build\nFROM build\n", []),
    ("FROM scratch\n", []),
    ("FROM python:3.11-slim AS a\nFROM python AS b\nFROM a\n", ["has no tag"]),
])
def test_unpinned_bases(text, problems):
    """Is every FROM that names an image without a tag or with latest found, and stage references not?"""
    found = static.unpinned_bases(parse(text))
    assert len(found) == len(problems)
    for finding, fragment in zip(found, problems):
        assert fragment in finding.problem


@pytest.mark.parametrize("ref, slim", [
    ("python:3.11-slim", True), ("python:3.11-slim-bookworm", True), ("python:3.12-alpine", True),
    ("gcr.io/distroless/python3-debian12", True), ("alpine:3.20", True), ("python:3.11", False),
    ("python:3.11-bookworm", False), ("myslimjim:1", False),
])
def test_slim_variants(ref, slim):
    assert static.is_slim_variant(ref) is slim


def test_final_base_follows_stage_references():
    df = parse("FROM python:3.11 AS build\nFROM python:3.11-slim AS base\nFROM base\n")
    base, stage = static.final_base(df)
    assert base == "python:3.11-slim" and stage.index == 1


def test_effective_commands_include_inherited_ones():
    """Does a CMD in a parent stage count for the final image when the final stage sets none?"""
    df = parse('FROM x:1 AS base\nCMD uvicorn app\nFROM base\nENTRYPOINT ["tini", "--"]\n')
    kinds = {i.keyword: i.is_exec_form for i in static.effective_commands(df)}
    assert kinds == {"CMD": False, "ENTRYPOINT": True}
    assert [i.keyword for i in static.shell_form_commands(df)] == ["CMD"]


@pytest.mark.parametrize("run, leaks", [
    ("RUN pip install -r requirements.txt", True),
    ("RUN pip install --no-cache-dir -r requirements.txt", False),
    ("RUN python -m pip install -r requirements.txt", True),
    ("RUN /opt/venv/bin/pip install -r requirements.txt", True),
    ("RUN pip3 install --no-cache-dir a && pip install b", True),
    ("RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt", False),
    ("RUN PIP_NO_CACHE_DIR=1 pip install a", False),
    ("ENV PIP_NO_CACHE_DIR=1\nRUN pip install a", False),
    ("ARG PIP_NO_CACHE_DIR=1\nRUN pip install a", False),
    ("RUN pip --version && apt-get install -y curl", None),
])
def test_pip_cache_is_found_per_install(run, leaks):
    """Is each `pip install` judged on its own flags, cache mount and PIP_NO_CACHE_DIR?"""
    installs = static.pip_installs(parse(f"FROM python:3.11-slim\n{run}\n"))
    if leaks is None:
        assert installs == []
    else:
        assert any(p.leaves_cache for p in installs) is leaks


def test_env_in_a_parent_stage_carries_over_but_arg_does_not():
    df = parse("FROM python:3.11-slim AS base\nARG PIP_NO_CACHE_DIR=1\nENV KEEP=1\n"
               "FROM base\nRUN pip install a\n")
    assert [p.leaves_cache for p in static.pip_installs(df)] == [True]


def test_dependency_installs_are_found_in_every_stage():
    df = parse("FROM python:3.11-slim AS build\nRUN uv sync\nFROM python:3.11-slim\nRUN pip install a\n"
               "RUN echo pip\n")
    assert [i.line for i in static.dependency_installs(df)] == [2, 4]
