"""Is the course manifest (course.yaml) consistent with the lessons, exercises and README?"""

from __future__ import annotations

import re

import nbformat
import pytest

from course.manifest import Course, ManifestError, load, markdown_table, parse


@pytest.fixture(scope="module")
def course() -> Course:
    return load()


def _valid_data() -> dict:
    return {
        "title": "t",
        "layout": {"workspace": "exercises/{id}", "notebook": "exercises/{id}/{id}.ipynb",
                   "solution": "solutions/{id}", "fixtures": "tests/grader/fixtures/{id}"},
        "lessons": [{"id": "01", "title": "a", "notebook": "lessons/01-a.ipynb",
                     "exercises": [{"id": "01-x", "title": "x", "deliverables": ["Dockerfile"]}]},
                    {"id": "02", "title": "b", "notebook": "lessons/02-b.ipynb", "exercises": []}],
    }


def test_manifest_lists_ten_lessons_and_the_contract_exercises_in_order(course):
    """Does course.yaml list the ten lessons and the contract's nine exercises, in order?"""
    assert [lesson.id for lesson in course.lessons] == [f"{n:02d}" for n in range(1, 11)]
    assert [e.id for e in course.exercises] == [
        "01-first-image", "02-storage", "03-permissions", "04-networking",
        "05-compose", "06-optimize", "07-gpu", "08-capstone", "09-scale-out"]
    # a learner meets each exercise right after the lesson that prepares it
    sequence = [item.id for item in course.sequence()]
    assert sequence.index("01-first-image") == sequence.index("02") + 1
    # the capstone comes after the production lesson, which follows the GPU exercise; beyond one
    # host comes last, after the capstone
    assert sequence[-5:] == ["07-gpu", "09", "08-capstone", "10", "09-scale-out"]


def test_lesson_folder_holds_exactly_the_manifest_notebooks(course, repo_root):
    """Is every notebook in lessons/ in the manifest, and every manifest lesson on disk?"""
    on_disk = sorted(p.relative_to(repo_root).as_posix() for p in (repo_root / "lessons").glob("*.ipynb"))
    assert on_disk == sorted(lesson.notebook.as_posix() for lesson in course.lessons)


@pytest.mark.parametrize("lesson_id", [f"{n:02d}" for n in range(1, 10)])
def test_lesson_notebook_is_clean_and_complete(course, repo_root, lesson_id):
    """Is each lesson a valid notebook, committed without outputs, that ends with a self-check
    and a clean-up cell and links to the exercises it prepares?"""
    lesson = course.lesson(lesson_id)
    nb = nbformat.read(repo_root / lesson.notebook, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "strip outputs before committing"
    assert f'Lesson("{lesson_id}")' in code[0].source, "the first code cell sets up the lesson's labels"
    assert code[-1].source.strip().endswith("L.cleanup()"), "the last cell removes what the lesson created"
    assert "self_check(" in code[-2].source, "a self-check comes just before the clean-up"
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for exercise in lesson.exercises:
        link = f"../{exercise.notebook.as_posix()}"
        assert f"]({link})" in markdown, f"lesson {lesson_id} must link to {link}"


def test_lesson_links_point_at_files_that_exist(course, repo_root):
    """Do the lessons' relative links to other lessons resolve (exercise links: see below)?"""
    for lesson in course.lessons:
        nb = nbformat.read(repo_root / lesson.notebook, as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "markdown":
                continue
            for target in re.findall(r"\]\(([^)#\s]+\.ipynb)\)", cell.source):
                if target.startswith("../exercises/"):
                    continue
                assert (repo_root / "lessons" / target).exists(), f"{lesson.notebook}: broken link {target}"


def test_readme_lists_lessons_and_exercises_in_manifest_order(course, repo_root):
    """Does README.md name every lesson and exercise, in the manifest's order?"""
    readme = (repo_root / "README.md").read_text()
    names = []
    for item in course.sequence():
        names.append(item.notebook.as_posix() if hasattr(item, "exercises") else item.workspace.as_posix())
    positions = []
    for name in names:
        assert f"`{name}`" in readme, f"README.md does not mention `{name}` (see `python -m course.manifest --markdown`)"
        positions.append(readme.index(f"`{name}`"))
    assert positions == sorted(positions), "README.md lists them in another order than course.yaml"


@pytest.mark.parametrize("exercise_id", ["01-first-image", "02-storage", "03-permissions", "04-networking",
                                         "05-compose", "06-optimize", "07-gpu", "08-capstone", "09-scale-out"])
def test_exercise_has_starter_notebook_solution_and_fixtures(course, repo_root, exercise_id):
    """Has each exercise its starter (with every file the learner edits), its notebook,
    a solution, and the known-bad fixtures its checks are tested against?"""
    e = course.exercise(exercise_id)
    workspace = repo_root / e.workspace
    assert workspace.is_dir(), f"missing starter folder {e.workspace}"
    # a file that continues an earlier exercise starts from the learner's own, else from its checkpoint
    missing = [d for d in e.deliverables
               if not (repo_root / (e.checkpoint if d in e.starts_from else e.workspace) / d).is_file()]
    assert not missing, f"the starter {e.workspace} (or its checkpoints) lacks {', '.join(missing)}"
    notebook = repo_root / e.notebook
    assert notebook.is_file(), f"missing exercise notebook {e.notebook}"
    nbformat.validate(nbformat.read(notebook, as_version=4))
    # Solutions hold what differs from the starter; for 05-08 that may be a pointer to service/.
    solution = repo_root / e.solution
    assert solution.is_dir() and any(p.is_file() for p in solution.rglob("*")), f"missing solution {e.solution}"
    fixtures = repo_root / e.fixtures
    assert fixtures.is_dir() and any(fixtures.iterdir()), f"missing known-bad fixtures in {e.fixtures}"


def test_markdown_table_is_what_the_readme_shows(course, repo_root):
    """Is the README's table of lessons the one generated from the manifest?"""
    assert markdown_table(course) in (repo_root / "README.md").read_text()


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["lessons"][1].update(id="03"), "expected 02"),
    (lambda d: d["lessons"][0].update(notebook="notes/01-a.ipynb"), "lessons/01-<topic>.ipynb"),
    (lambda d: d["lessons"][1].update(exercises=[{"id": "01-x", "title": "y", "deliverables": []}]), "twice"),
    (lambda d: d["lessons"][1].update(exercises=[{"id": "03-y", "title": "y", "deliverables": []}]), "expected 02"),
    (lambda d: d["layout"].update(solution="solutions"), "{id}"),
    (lambda d: d["lessons"][0]["exercises"][0].pop("deliverables"), "deliverables"),
    (lambda d: d.update(lessons=[]), "no lessons"),
])
def test_inconsistent_manifest_is_refused(mutate, message):
    """Is a manifest with misnumbered, duplicated or malformed entries refused with a clear message?"""
    data = _valid_data()
    parse(data)  # the unmutated data is valid
    mutate(data)
    with pytest.raises(ManifestError, match=re.escape(message)):
        parse(data)


def test_missing_manifest_is_a_clear_error(tmp_path):
    """Does a missing course.yaml give a ManifestError naming the file?"""
    with pytest.raises(ManifestError, match="does not exist"):
        load(tmp_path / "course.yaml")
