"""Does any lesson print or quote an exercise's answer?

Lessons teach with their own examples. A lesson whose source or stored output holds five or
more consecutive meaningful lines of a reference answer (a file under solutions/, or the
service's Dockerfiles and Compose files, which are the answers of exercises 05-08) gives the
exercise away.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from course.manifest import load

RUN = 5  # consecutive meaningful lines that make a quotation
ROOT = Path(__file__).resolve().parents[2]
ANSWER_GLOBS = ("solutions/**/*", "service/Dockerfile", "service/Dockerfile.gpu", "service/compose*.yaml")
_PUNCTUATION_ONLY = re.compile(r"^[\W_]*$")


def meaningful(lines) -> list[str]:
    """Lines stripped of indentation and of the quoting a notebook string adds, without the blank,
    the punctuation-only and the very short ones (`fi`, `done`, `---`) that any two files share."""
    out = []
    for line in lines:
        text = line.strip().strip("\\").strip()
        if len(text) < 6 or _PUNCTUATION_ONLY.match(text):
            continue
        out.append(text)
    return out


def runs(lines: list[str]) -> set[tuple[str, ...]]:
    return {tuple(lines[i:i + RUN]) for i in range(len(lines) - RUN + 1)}


def answer_runs() -> dict[tuple[str, ...], str]:
    found: dict[tuple[str, ...], str] = {}
    for pattern in ANSWER_GLOBS:
        for path in sorted(ROOT.glob(pattern)):
            if not path.is_file() or path.suffix in {".md", ".pyc"}:
                continue  # a solution's README explains; it is not an answer file
            try:
                text = path.read_text()
            except UnicodeDecodeError:
                continue
            for run in runs(meaningful(text.splitlines())):
                found.setdefault(run, path.relative_to(ROOT).as_posix())
    return found


def lesson_texts(path: Path):
    """Each cell's source and each stored output, as separate texts (a run never spans two)."""
    nb = nbformat.read(path, as_version=4)
    for n, cell in enumerate(nb.cells):
        yield f"cell {n} source", cell.source
        for output in cell.get("outputs", []):
            text = output.get("text") or (output.get("data") or {}).get("text/plain") or ""
            yield f"cell {n} output", "".join(text) if isinstance(text, list) else text


ANSWERS = answer_runs()


def test_answer_files_are_found():
    """Does the test see the answer files at all (an empty set would pass every lesson)?"""
    sources = set(ANSWERS.values())
    assert "service/Dockerfile" in sources and "service/compose.yaml" in sources, sorted(sources)
    assert any(s.startswith("solutions/") for s in sources), sorted(sources)


def test_a_quotation_is_caught():
    """Is a lesson that pastes five lines of service/Dockerfile caught, indentation and all?"""
    lines = meaningful((ROOT / "service" / "Dockerfile").read_text().splitlines())[:RUN]
    pasted = "L.write('Dockerfile', '''\\\n" + "\n".join("    " + line for line in lines) + "\n''')"
    assert runs(meaningful(pasted.splitlines())) & ANSWERS.keys()


@pytest.mark.parametrize("lesson", load().lessons, ids=lambda lesson: lesson.slug)
def test_lesson_quotes_no_answer(lesson):
    """Does the lesson's source and stored output stay clear of every answer file?"""
    for where, text in lesson_texts(ROOT / lesson.notebook):
        quoted = runs(meaningful(text.splitlines())) & ANSWERS.keys()
        if quoted:
            run = sorted(quoted)[0]
            pytest.fail(f"{lesson.notebook}, {where}, quotes {ANSWERS[run]}:\n  " + "\n  ".join(run))


ARTIFACTS = ROOT / "test-artifacts" / "lessons"


@pytest.mark.parametrize("lesson", load().lessons, ids=lambda lesson: lesson.slug)
def test_executed_lesson_prints_no_answer(lesson):
    """Did the lesson's last execution (test_lessons_execute keeps it) print no answer file?
    Notebooks are stored without outputs, so what a cell prints is only seen here."""
    executed = ARTIFACTS / Path(lesson.notebook).name
    if not executed.exists():
        pytest.skip(f"{executed.name} has not been executed in this checkout (tests/lessons/test_lessons_execute.py)")
    for where, text in lesson_texts(executed):
        if "output" not in where:
            continue
        quoted = runs(meaningful(text.splitlines())) & ANSWERS.keys()
        if quoted:
            run = sorted(quoted)[0]
            pytest.fail(f"{lesson.notebook}, {where} (executed), prints {ANSWERS[run]}:\n  " + "\n  ".join(run))


# print((ROOT / "service" / "compose.yaml").read_text()), `cat service/Dockerfile`...: a cell that
# prints an answer file at run time, which the stored (output-free) notebook does not show.
PRINTS_ANSWER = re.compile(
    r"(print\(.*(Dockerfile(?!\.naive)|compose[\w.]*\.yaml).*read_text\(\))"
    r"|(\bcat\s+\S*(service|solutions)/\S*(Dockerfile|compose))", re.I)


@pytest.mark.parametrize("lesson", load().lessons, ids=lambda lesson: lesson.slug)
def test_lesson_has_no_cell_that_prints_an_answer_file(lesson):
    """Does no code cell print an answer file (read_text() or cat) when it runs?"""
    nb = nbformat.read(ROOT / lesson.notebook, as_version=4)
    for n, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            assert not PRINTS_ANSWER.search(line), f"{lesson.notebook}, cell {n}, prints an answer file: {line.strip()}"


def test_the_print_detector_catches_a_printed_answer():
    """Are the lines that printed answers before this test existed caught, and a lesson's own file not?"""
    assert PRINTS_ANSWER.search('print((ROOT / "service" / "compose.yaml").read_text())')
    assert PRINTS_ANSWER.search('print((project / "compose.override.yaml").read_text())')
    assert PRINTS_ANSWER.search("print(dockerfile_gpu.read_text())")
    assert not PRINTS_ANSWER.search('print((ROOT / "service" / "Dockerfile.naive").read_text())')
    assert not PRINTS_ANSWER.search('L.write("slow/Dockerfile", text)')
