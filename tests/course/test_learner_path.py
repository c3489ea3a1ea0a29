"""The learner's path in course.yaml: which files continue an earlier exercise (starts_from), which
earlier Dockerfile run.sh exercises run (image_from), and that nothing given is an answer."""

from __future__ import annotations

import copy

import pytest

from course.manifest import ManifestError, load, parse

BASE = {
    "title": "t",
    "layout": {"workspace": "exercises/{id}", "notebook": "exercises/{id}/{id}.ipynb", "solution": "solutions/{id}",
               "fixtures": "fixtures/{id}", "checkpoint": "checkpoints/{id}"},
    "lessons": [{"id": "01", "title": "l", "notebook": "lessons/01-a.ipynb", "exercises": [
        {"id": "01-first", "title": "a", "deliverables": ["Dockerfile"]},
        {"id": "02-second", "title": "b", "deliverables": ["Dockerfile", "compose.yaml"],
         "starts_from": {"Dockerfile": ["01-first/Dockerfile"]}, "image_from": ["01-first/Dockerfile"]},
    ]}],
}


def with_second(**changes):
    data = copy.deepcopy(BASE)
    data["lessons"][0]["exercises"][1].update(changes)
    return data


def test_starts_from_and_image_from_are_parsed():
    second = parse(BASE).exercise("02-second")
    assert dict(second.starts_from) == {"Dockerfile": ("01-first/Dockerfile",)}
    assert second.image_from == ("01-first/Dockerfile",)
    assert second.continued() == () and str(second.checkpoint) == "checkpoints/02-second"


@pytest.mark.parametrize("changes, message", [
    ({"starts_from": {"Dockerfile": ["03-later/Dockerfile"]}}, "must name an earlier exercise"),
    ({"starts_from": {"Dockerfile": ["02-second/Dockerfile"]}}, "must name an earlier exercise"),
    ({"starts_from": {"Dockerfile": ["01-first/run.sh"]}}, "'run.sh' is not a file 01-first has the learner write"),
    ({"starts_from": {"Dockerfile": "01-first/Dockerfile"}}, "must be a list of names"),
    ({"image_from": ["01-first"]}, "is not a file 01-first has the learner write"),
    ({"shared": {"Dockerfile": "service/Dockerfile"}}, "cannot be both shared and started from"),
])
def test_a_wrong_starting_point_is_refused(changes, message):
    with pytest.raises(ManifestError, match=message):
        parse(with_second(**changes))


def test_starts_from_needs_a_checkpoint_folder():
    data = copy.deepcopy(BASE)
    del data["layout"]["checkpoint"]
    with pytest.raises(ManifestError, match="needs layout.checkpoint"):
        parse(data)


def test_the_course_shares_only_the_services_code_and_has_every_checkpoint():
    """Is no shared file an answer (a solution file of any exercise), and has every continued file
    its checkpoint?"""
    course = load()
    answers = {source for e in course.exercises for source in e.solution_files.values()}
    for e in course.exercises:
        assert not set(e.shared.values()) & answers, e.id
        for name in e.starts_from:
            assert (course.path(e.checkpoint) / name).is_file(), f"{e.id}: no checkpoint for {name}"
