"""An image's history entries, read as the Dockerfile instructions a learner wrote."""

from __future__ import annotations

import re

_SHELL_PREFIX = re.compile(r"^(?:\|\d+ (?:\S+=\S* )*)?/bin/sh -c ")


def clean_instruction(created_by: str) -> str:
    """ "RUN /bin/sh -c pip ...  # buildkit" -> "RUN pip ..."; classic builders' #(nop) too."""
    text = re.sub(r"\s+", " ", created_by or "").strip()
    text = re.sub(r"\s*# buildkit$", "", text)
    if "#(nop)" in text:  # classic builder: metadata instructions
        return text.split("#(nop)", 1)[1].strip()
    if text.startswith("RUN "):  # BuildKit: "RUN /bin/sh -c cmd" or "RUN |1 ARG=v /bin/sh -c cmd"
        text = "RUN " + _SHELL_PREFIX.sub("", text[4:])
    elif _SHELL_PREFIX.match(text):  # classic builder's RUN
        text = "RUN " + _SHELL_PREFIX.sub("", text)
    return text or "(imported filesystem)"
