"""Static analyses of a parsed Dockerfile. Each returns data (what it found, where);
checks turn the data into a verdict and a message."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from grader.dockerfile import Dockerfile, Instruction, Stage, expand, parse_arg, parse_env, parse_image_ref

# pip's global options may come before `install` (`pip --python /opt/venv/bin/python install ...`)
PIP_INSTALL = re.compile(r"(?:^|[\s;&|(])(?:[\w./-]*/)?(?:pip3?(?:\.\d+)?|python3?(?:\.\d+)?\s+-m\s+pip)"
                         r"(?:\s+--?[\w-]+(?:=\S+|\s+(?!install\b)[^\s-]\S*)?)*\s+install\b")
DEPENDENCY_INSTALL = re.compile(PIP_INSTALL.pattern + r"|\buv\s+(?:pip\s+install|sync)\b|\bpoetry\s+install\b"
                                r"|\bpipenv\s+install\b")
_SEGMENT_SPLIT = re.compile(r"&&|\|\||;|\n|\|")
SLIM_VARIANT = re.compile(r"(?:^|[-:/_.@])(slim|alpine|distroless)", re.IGNORECASE)


@dataclass(frozen=True)
class BaseProblem:
    line: int
    written: str      # as in the Dockerfile
    resolved: str     # after ARG substitution
    problem: str


def unpinned_bases(df: Dockerfile) -> list[BaseProblem]:
    """Every FROM naming an image (not an earlier stage, not scratch) without a tag or digest, or with latest."""
    problems = []
    for stage in df.stages:
        if stage.base_stage is not None or stage.base.lower() == "scratch":
            continue
        line = stage.from_instruction.line
        if stage.unresolved:
            names = ", ".join(f"${n}" for n in stage.unresolved)
            problems.append(BaseProblem(line, stage.base_raw, stage.base,
                                        f"uses {names} with no default value, so the tag is unknown"))
            continue
        _, tag, digest = parse_image_ref(stage.base)
        if digest:
            continue
        if tag is None:
            problems.append(BaseProblem(line, stage.base_raw, stage.base, "has no tag, which means `latest`"))
        elif tag.lower() == "latest":
            problems.append(BaseProblem(line, stage.base_raw, stage.base, "uses the moving `latest` tag"))
    return problems


def final_base(df: Dockerfile) -> tuple[str, Stage]:
    """The image the final stage is ultimately built from, through `FROM <stage>` references."""
    stage = df.external_base()
    return stage.base, stage


def is_slim_variant(image_ref: str) -> bool:
    return bool(SLIM_VARIANT.search(image_ref))


def effective_commands(df: Dockerfile) -> list[Instruction]:
    """The CMD and ENTRYPOINT that apply to the final image (inherited from parent stages too)."""
    return [ins for ins in (df.effective("ENTRYPOINT"), df.effective("CMD")) if ins is not None]


def shell_form_commands(df: Dockerfile) -> list[Instruction]:
    return [ins for ins in effective_commands(df) if not ins.is_exec_form]


def _build_variables(df: Dockerfile, stage: Stage, until: Instruction) -> dict[str, str]:
    """ARG and ENV values visible to `until` (build args are environment variables for RUN).

    ENV carries over to stages built FROM this one; ARG stays within its stage."""
    env: dict[str, str] = {}
    for st in df.lineage(stage):
        args: dict[str, str] = {}
        for ins in st.instructions:
            if ins is until:
                return {**args, **env}
            if ins.keyword == "ARG":
                for name, default in parse_arg(ins.rest):
                    value = default if default is not None else df.global_args.get(name)
                    if value is not None:
                        args[name] = expand(value, {**args, **env})[0]
            elif ins.keyword == "ENV":
                for name, value in parse_env(ins.rest):
                    env[name] = expand(value, {**args, **env})[0]
    return env


@dataclass(frozen=True)
class PipInstall:
    line: int
    stage: str
    command: str            # the shell segment that installs
    no_cache_dir: bool      # --no-cache-dir on the command
    cache_mount: bool       # a BuildKit cache mount holds pip's cache
    env_disabled: bool      # PIP_NO_CACHE_DIR set (ENV, ARG or inline)

    @property
    def leaves_cache(self) -> bool:
        return not (self.no_cache_dir or self.cache_mount or self.env_disabled)


def _mount_targets(ins: Instruction) -> list[str]:
    targets = []
    for value in ins.flag_values("mount"):
        fields = {key: val for key, _, val in (part.partition("=") for part in (value or "").split(","))}
        if fields.get("type") == "cache":
            targets.append(fields.get("target") or fields.get("dst") or fields.get("destination") or "")
    return targets


def _run_text(ins: Instruction) -> str:
    return "\n".join([ins.rest, *ins.heredocs]) if not ins.is_exec_form else " ".join(ins.exec_form or ())


def pip_installs(df: Dockerfile) -> list[PipInstall]:
    """Every `pip install` in every stage, with what (if anything) keeps pip's cache out of the image."""
    found = []
    for stage in df.stages:
        for ins in stage.instructions:
            if ins.keyword != "RUN":
                continue
            text = _run_text(ins)
            if not PIP_INSTALL.search(text):
                continue
            variables = _build_variables(df, stage, ins)
            cache_dir = variables.get("PIP_CACHE_DIR", "")
            targets = _mount_targets(ins)
            cache_mount = any(t.rstrip("/").endswith((".cache/pip", ".cache")) or "pip" in t
                              or (cache_dir and t.rstrip("/") == cache_dir.rstrip("/")) for t in targets)
            for segment in _SEGMENT_SPLIT.split(text):
                if not PIP_INSTALL.search(" " + segment):
                    continue
                try:
                    words = shlex.split(segment)
                except ValueError:
                    words = segment.split()
                inline_env = any(w.startswith("PIP_NO_CACHE_DIR=") for w in words)
                exported = "PIP_NO_CACHE_DIR" in text and re.search(r"export\s+PIP_NO_CACHE_DIR=", text)
                found.append(PipInstall(
                    ins.line, stage.label, segment.strip(),
                    no_cache_dir=any(w == "--no-cache-dir" for w in words),
                    cache_mount=cache_mount,
                    env_disabled="PIP_NO_CACHE_DIR" in variables or inline_env or bool(exported)))
    return found


def dependency_installs(df: Dockerfile) -> list[Instruction]:
    """RUN instructions that install Python dependencies (pip, uv, poetry, pipenv)."""
    return [ins for stage in df.stages for ins in stage.instructions
            if ins.keyword == "RUN" and DEPENDENCY_INSTALL.search(_run_text(ins))]
