"""The Dockerfile parser: does it read a Dockerfile the way the frontend does, where checks depend on it?"""

from __future__ import annotations

import pytest

from grader.dockerfile import DockerfileSyntaxError, expand, parse, parse_image_ref


def test_continuations_join_lines_and_drop_inner_comments():
    """Are continuation lines joined, and comment lines inside a continuation skipped?"""
    df = parse("FROM python:3.11-slim\nRUN apt-get update \\\n    # a comment inside\n    && echo done\n")
    run = df.final_stage.instructions[0]
    assert run.keyword == "RUN"
    assert "apt-get update" in run.rest and "&& echo done" in run.rest
    assert "a comment" not in run.rest
    assert (run.line, run.end_line) == (2, 4)


def test_escape_directive_changes_the_continuation_character():
    """Does `# escape=`` ` make the backtick the continuation character?"""
    df = parse("# escape=`\nFROM python:3.11-slim\nRUN echo a `\n    b\n")
    assert df.directives["escape"] == "`"
    assert df.final_stage.instructions[0].rest == "echo a     b"


def test_comments_and_blank_lines_are_ignored():
    df = parse("# top comment\n\nFROM python:3.11-slim\n  # indented comment\nCMD [\"python\"]\n")
    assert [i.keyword for i in df.instructions] == ["FROM", "CMD"]


def test_global_arg_defaults_resolve_in_from():
    """Is `FROM python:${PY}-slim` resolved with the default of a global ARG?"""
    df = parse("ARG PY=3.11\nFROM python:${PY}-slim\n")
    assert df.final_stage.base == "python:3.11-slim"
    assert df.final_stage.unresolved == ()


def test_arg_without_default_is_reported_unresolved():
    df = parse("ARG TAG\nFROM python:$TAG\n")
    assert df.final_stage.unresolved == ("TAG",)


@pytest.mark.parametrize("text, expected", [
    ("${A:-x}", "x"), ("${B:-x}", "b"), ("${B:+y}", "y"), ("${A:+y}", ""), ("$B-$B", "b-b"),
    ("\\$B", "$B"), ("${E-d}", ""), ("${A-d}", "d"),
])
def test_variable_substitution_forms(text, expected):
    assert expand(text, {"B": "b", "E": ""})[0] == expected


def test_stage_references_resolve_to_earlier_stages():
    """Is `FROM base` recognised as the stage named base, case-insensitively?"""
    df = parse("FROM python:3.11-slim AS Base\nRUN true\nFROM base AS final\nCMD [\"x\"]\n")
    assert df.final_stage.base_stage == 0
    assert [s.index for s in df.lineage()] == [0, 1]
    assert df.external_base().base == "python:3.11-slim"


def test_a_name_used_before_its_stage_is_an_image_not_a_stage():
    df = parse("FROM builder\nFROM python:3.11-slim AS builder\n")
    assert df.stages[0].base_stage is None


def test_exec_form_shell_form_and_broken_json():
    """Are exec form, shell form and `[unquoted, json]` told apart?"""
    df = parse('FROM x:1\nCMD ["uvicorn", "app.main:app"]\nENTRYPOINT uvicorn app\nCMD [uvicorn, app]\n')
    cmd, entry, broken = df.final_stage.instructions
    assert cmd.exec_form == ("uvicorn", "app.main:app")
    assert entry.exec_form is None and not entry.looks_like_json
    assert broken.exec_form is None and broken.looks_like_json


def test_flags_including_cache_mounts_are_split_from_the_command():
    df = parse("FROM x:1\nRUN --mount=type=cache,target=/root/.cache/pip --network=none pip install -r r.txt\n")
    run = df.final_stage.instructions[0]
    assert run.flag_values("mount") == ["type=cache,target=/root/.cache/pip"]
    assert run.flag_values("network") == ["none"]
    assert run.rest == "pip install -r r.txt"


def test_heredocs_are_consumed():
    df = parse("FROM x:1\nRUN <<EOF\npip install a\nEOF\nCMD [\"a\"]\n")
    run, cmd = df.final_stage.instructions
    assert run.heredocs == ("pip install a",)
    assert cmd.keyword == "CMD"


@pytest.mark.parametrize("text, fragment", [
    ("# only comments\n", "no instructions yet"),
    ("RUN echo hi\nFROM x:1\n", "before the first FROM"),
    ("FROM x:1\nCOPPY a b\n", "unknown instruction 'COPPY'"),
    ("FROM x:1\nRUN\n", "RUN needs arguments"),
    ("FROM x:1 AS\n", "FROM takes an image"),
    ("FROM x:1\n# YOUR CODE HERE\nraise NotImplementedError()\n", "placeholder is still there"),
    ("FROM x:1 AS a\nFROM x:1 AS a\n", "two stages are named"),
    ("FROM x:1\nRUN <<EOF\necho\n", "never closed"),
])
def test_syntax_errors_name_the_problem(text, fragment):
    """Does a broken Dockerfile raise an error that says what is wrong, with its line?"""
    with pytest.raises(DockerfileSyntaxError) as err:
        parse(text)
    assert fragment in str(err.value)


@pytest.mark.parametrize("ref, expected", [
    ("python:3.11-slim", ("python", "3.11-slim", None)),
    ("python", ("python", None, None)),
    ("registry:5000/team/python", ("registry:5000/team/python", None, None)),
    ("registry:5000/python:3.11@sha256:ab", ("registry:5000/python", "3.11", "sha256:ab")),
    ("python@sha256:ab", ("python", None, "sha256:ab")),
])
def test_image_references(ref, expected):
    assert parse_image_ref(ref) == expected
