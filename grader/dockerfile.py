"""A Dockerfile parser for static checks: what the file says, before anything is built.

It follows the Dockerfile frontend where the checks depend on it: parser
directives (`# escape=`), comments (also inside continuations), line
continuations, heredocs, ARG defaults and `$VAR`/`${VAR:-default}`
substitution, stages and `FROM <earlier stage>`, exec (JSON) vs shell form, and
the flags of RUN/COPY/ADD/FROM such as `--mount=type=cache,...`.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

KNOWN_INSTRUCTIONS = frozenset({
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
    "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
})
FLAGGED_INSTRUCTIONS = frozenset({"ADD", "COPY", "FROM", "RUN", "HEALTHCHECK"})
HEREDOC_INSTRUCTIONS = frozenset({"ADD", "COPY", "RUN"})
# nbgrader's stub for a solution region that the learner has not replaced yet
NOTEBOOK_PLACEHOLDER = "raise NotImplementedError()"

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9_-]*)\s*=\s*(.*?)\s*$")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_VAR = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-+?])(?P<word>[^}]*))?\}"
                  r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


class DockerfileSyntaxError(ValueError):
    """The Dockerfile cannot be parsed; `line` is 1-based (0: the file as a whole)."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.reason = message


@dataclass(frozen=True)
class Instruction:
    keyword: str                       # upper case, e.g. "RUN"
    args: str                          # everything after the keyword, continuations joined
    line: int                          # first line, 1-based
    end_line: int
    flags: tuple[tuple[str, str | None], ...] = ()   # leading --name[=value] options
    rest: str = ""                     # args without the flags
    exec_form: tuple[str, ...] | None = None         # JSON array form, when valid
    looks_like_json: bool = False      # starts with "[" but is not a valid JSON array of strings
    heredocs: tuple[str, ...] = ()

    def flag_values(self, name: str) -> list[str | None]:
        return [v for k, v in self.flags if k == name]

    @property
    def is_exec_form(self) -> bool:
        return self.exec_form is not None

    def __str__(self) -> str:
        return f"{self.keyword} {self.args}".strip()


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None                   # the AS name, lower case
    base: str                          # the image or stage named by FROM, ARGs substituted
    base_raw: str                      # as written
    base_stage: int | None             # index of the earlier stage that FROM names, if any
    platform: str | None
    from_instruction: Instruction
    instructions: tuple[Instruction, ...]
    unresolved: tuple[str, ...] = ()   # variables in FROM that have no value

    @property
    def label(self) -> str:
        return self.name or f"stage {self.index}"


@dataclass(frozen=True)
class Dockerfile:
    instructions: tuple[Instruction, ...]
    stages: tuple[Stage, ...]
    global_args: Mapping[str, str | None] = field(default_factory=dict)
    directives: Mapping[str, str] = field(default_factory=dict)

    @property
    def final_stage(self) -> Stage:
        return self.stages[-1]

    def stage_named(self, name: str) -> Stage | None:
        for stage in self.stages:
            if stage.name == name.lower():
                return stage
        return None

    def lineage(self, stage: Stage | None = None) -> list[Stage]:
        """The stage and the stages it is built FROM, oldest first."""
        chain = [stage or self.final_stage]
        while chain[0].base_stage is not None:
            chain.insert(0, self.stages[chain[0].base_stage])
        return chain

    def external_base(self, stage: Stage | None = None) -> Stage:
        """The stage of the lineage whose FROM names an image rather than a stage."""
        return self.lineage(stage)[0]

    def effective(self, keyword: str, stage: Stage | None = None) -> Instruction | None:
        """The last `keyword` instruction that applies to the stage (inherited ones count)."""
        found = None
        for st in self.lineage(stage):
            for ins in st.instructions:
                if ins.keyword == keyword:
                    found = ins
        return found


def expand(text: str, variables: Mapping[str, str], escape: str = "\\") -> tuple[str, list[str]]:
    """Substitute $VAR, ${VAR}, ${VAR:-default}, ${VAR:+alt}; returns (text, unset names)."""
    unset: list[str] = []
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == escape and i + 1 < len(text) and text[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        if ch == "$":
            m = _VAR.match(text, i)
            if m:
                name = m.group("braced") or m.group("plain")
                op, word = m.group("op"), m.group("word") or ""
                value = variables.get(name)
                is_set = value is not None
                nonempty = bool(value)
                if op in (":-", "-"):
                    result = value if (nonempty if op == ":-" else is_set) else expand(word, variables, escape)[0]
                elif op in (":+", "+"):
                    result = expand(word, variables, escape)[0] if (nonempty if op == ":+" else is_set) else ""
                else:
                    if not is_set:
                        unset.append(name)
                    result = value or ""
                out.append(result or "")
                i = m.end()
                continue
        out.append(ch)
        i += 1
    return "".join(out), unset


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_arg(rest: str) -> list[tuple[str, str | None]]:
    pairs = []
    for token in rest.split():
        name, eq, default = token.partition("=")
        pairs.append((name, _unquote(default) if eq else None))
    return pairs


def parse_env(rest: str) -> list[tuple[str, str]]:
    """`ENV A=1 B="two words"` or the legacy `ENV A one value`."""
    try:
        words = shlex.split(rest, posix=True)
    except ValueError:
        words = rest.split()
    if words and "=" not in words[0]:
        return [(words[0], rest.split(None, 1)[1].strip() if len(words) > 1 else "")]
    return [tuple(w.split("=", 1)) for w in words if "=" in w]  # type: ignore[misc]


def parse_image_ref(ref: str) -> tuple[str, str | None, str | None]:
    """`registry:5000/name:tag@sha256:...` -> (name, tag, digest)."""
    name, _, digest = ref.partition("@")
    tag = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    return name, tag, (digest or None)


def _split_flags(keyword: str, args: str) -> tuple[tuple[tuple[str, str | None], ...], str]:
    flags: list[tuple[str, str | None]] = []
    rest = args
    if keyword in FLAGGED_INSTRUCTIONS:
        while rest.startswith("--"):
            token, _, remainder = rest.partition(" ")
            name, eq, value = token[2:].partition("=")
            flags.append((name.lower(), value if eq else None))
            rest = remainder.lstrip()
    return tuple(flags), rest


def _exec_form(rest: str) -> tuple[tuple[str, ...] | None, bool]:
    text = rest.strip()
    if not text.startswith("["):
        return None, False
    try:
        value = json.loads(text)
    except ValueError:
        return None, True
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value), False
    return None, True


def _logical_lines(text: str) -> tuple[list[tuple[int, int, str, tuple[str, ...]]], dict[str, str]]:
    """Join continuations, drop comments; returns ([(first, last, text, heredocs)], directives)."""
    lines = text.splitlines()
    directives: dict[str, str] = {}
    i = 0
    while i < len(lines):  # parser directives: only at the very top
        m = _DIRECTIVE.match(lines[i].strip())
        if not m or m.group(1).lower() in directives:
            break
        directives[m.group(1).lower()] = m.group(2)
        i += 1
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileSyntaxError(f"invalid escape directive {escape!r}: use \\ or `", 1)
    continuation = re.compile(re.escape(escape) + r"[ \t]*$")

    logical = []
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        first = i
        parts = []
        current = lines[i]
        while continuation.search(current):
            parts.append(continuation.sub("", current))
            i += 1
            # comment and empty lines inside a continuation are skipped, as the frontend does
            while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                i += 1
            if i >= len(lines):
                current = ""
                break
            current = lines[i]
        parts.append(current)
        joined = "".join(parts).strip()
        last = min(i, len(lines) - 1)
        i += 1
        heredocs: list[str] = []
        keyword = joined.split(None, 1)[0].upper() if joined else ""
        if keyword in HEREDOC_INSTRUCTIONS:
            for m in _HEREDOC.finditer(joined):
                strip_tabs, delimiter = m.group(1) == "-", m.group(3)
                body = []
                while i < len(lines):
                    candidate = lines[i].lstrip("\t") if strip_tabs else lines[i]
                    i += 1
                    if candidate.rstrip() == delimiter:
                        break
                    body.append(lines[i - 1])
                else:
                    raise DockerfileSyntaxError(f"heredoc <<{delimiter} is never closed", first + 1)
                heredocs.append("\n".join(body))
                last = i - 1
        logical.append((first + 1, last + 1, joined, tuple(heredocs)))
    return logical, directives


def parse(text: str) -> Dockerfile:
    """Parse Dockerfile text; raises DockerfileSyntaxError where the frontend would refuse it."""
    logical, directives = _logical_lines(text)
    instructions: list[Instruction] = []
    for first, last, joined, heredocs in logical:
        keyword, _, args = joined.partition(" ")
        keyword_upper = keyword.upper()
        if keyword_upper not in KNOWN_INSTRUCTIONS:
            if NOTEBOOK_PLACEHOLDER in joined or joined.startswith("raise "):
                raise DockerfileSyntaxError(
                    "the notebook's placeholder is still there: replace `# YOUR CODE HERE` and "
                    "`raise NotImplementedError()` with your instructions", first)
            raise DockerfileSyntaxError(f"unknown instruction {keyword!r}", first)
        args = args.strip()
        flags, rest = _split_flags(keyword_upper, args)
        exec_args, looks_like_json = _exec_form(rest) if keyword_upper in (
            "CMD", "ENTRYPOINT", "RUN", "SHELL", "HEALTHCHECK", "COPY", "ADD", "VOLUME") else (None, False)
        if not args and keyword_upper not in ("CMD", "ENTRYPOINT"):
            raise DockerfileSyntaxError(f"{keyword_upper} needs arguments", first)
        instructions.append(Instruction(keyword_upper, args, first, last, flags, rest,
                                        exec_args, looks_like_json, heredocs))

    global_args: dict[str, str | None] = {}
    stages: list[Stage] = []
    current: list[Instruction] | None = None
    for ins in instructions:
        if ins.keyword == "FROM":
            if current is not None:
                stages[-1] = _with_instructions(stages[-1], current)
            stages.append(_stage(ins, len(stages), stages, global_args))
            current = []
        elif current is None:
            if ins.keyword != "ARG":
                raise DockerfileSyntaxError(
                    f"{ins.keyword} before the first FROM (only ARG may come before FROM)", ins.line)
            for name, default in parse_arg(ins.rest):
                global_args[name] = expand(default, {k: v for k, v in global_args.items() if v is not None})[0] \
                    if default is not None else None
        else:
            current.append(ins)
    if not instructions:
        raise DockerfileSyntaxError("it holds no instructions yet (only comments): start with FROM")
    if not stages:
        raise DockerfileSyntaxError("no FROM instruction: a Dockerfile starts from a base image")
    stages[-1] = _with_instructions(stages[-1], current or [])
    return Dockerfile(tuple(instructions), tuple(stages), MappingProxyType(global_args),
                      MappingProxyType(directives))


def _with_instructions(stage: Stage, instructions: list[Instruction]) -> Stage:
    return Stage(stage.index, stage.name, stage.base, stage.base_raw, stage.base_stage,
                 stage.platform, stage.from_instruction, tuple(instructions), stage.unresolved)


def _stage(ins: Instruction, index: int, earlier: list[Stage], global_args: Mapping[str, str | None]) -> Stage:
    words = ins.rest.split()
    if len(words) == 1:
        raw, name = words[0], None
    elif len(words) == 3 and words[1].lower() == "as":
        raw, name = words[0], words[2].lower()
    else:
        raise DockerfileSyntaxError(f"FROM takes an image and optionally `AS name`, got {ins.rest!r}", ins.line)
    values = {k: v for k, v in global_args.items() if v is not None}
    base, unset = expand(raw, values)
    # a variable declared without default also counts as unresolved
    unset += [n for n in global_args if global_args[n] is None and re.search(rf"\$\{{?{n}\b", raw)]
    if name and any(s.name == name for s in earlier):
        raise DockerfileSyntaxError(f"two stages are named {name!r}", ins.line)
    base_stage = next((s.index for s in earlier if s.name and s.name == base.lower()), None)
    platform = next((v for k, v in ins.flags if k == "platform"), None)
    return Stage(index, name, base, raw, base_stage, platform, ins, (), tuple(dict.fromkeys(unset)))
