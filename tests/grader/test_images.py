"""Image analysis without an engine: layer files from tar streams, wasted bytes, the layer table, the
size budget's verdict (grader.exercises._images)."""

from __future__ import annotations

import io
import tarfile

import pytest

from grader.errors import CheckFailed
from grader.exercises._images import (MB, ImageAnalysis, Layer, _instruction, _LayerFiles, account, read_layer,
                                      size_budget)


def layer(entries=None, whiteouts=(), opaque=()) -> _LayerFiles:
    return _LayerFiles(dict(entries or {}), list(whiteouts), list(opaque))


def tar_bytes(members: dict[str, bytes | None]) -> io.BytesIO:
    """A layer tar: name -> content (None: a directory)."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    data.seek(0)
    return data


def test_read_layer_sees_files_whiteouts_opaque_folders_and_the_token():
    stream = tar_bytes({"./app/": None, "./app/main.py": b"print(1)", "./opt/.wh.old.bin": b"",
                        "./cache/.wh..wh..opq": b"", "./code/.env": b"KEY=canary-123"})
    files = read_layer(stream, b"canary-123")
    assert files.entries == {"app/main.py": 8, "code/.env": 14}
    assert files.whiteouts == ["opt/old.bin"] and files.opaque == ["cache"]
    assert files.token_hits == ["code/.env"]


def test_a_file_deleted_in_a_later_layer_wastes_its_bytes_once():
    """Written (100 B) then deleted: 100 B wasted, not 200 (dive's count would include the first copy)."""
    visible, wasted = account([layer({"base/x": 5}), layer({"tmp/blob": 100}), layer(whiteouts=["tmp/blob"])],
                              base_count=1)
    assert "tmp/blob" not in visible
    assert wasted == [("tmp/blob", 100, 2)]


def test_copies_beyond_the_first_are_wasted_and_base_duplicates_are_not():
    contents = [layer({"etc/a": 10}), layer({"etc/a": 12}),          # base writes etc/a twice
                layer({"lib/p.py": 50}), layer({"lib/p.py": 60}), layer({"lib/p.py": 70}),
                layer({"etc/a": 15})]                                 # an own layer overwrites a base file
    visible, wasted = account(contents, base_count=2)
    assert dict((p, w) for p, w, _ in wasted) == {"lib/p.py": 130, "etc/a": 27}
    assert visible["lib/p.py"] == (70, 4)


def test_a_whiteout_of_a_folder_and_an_opaque_folder_hide_everything_below():
    contents = [layer({"d/one": 4, "d/sub/two": 6, "e/three": 8}), layer(whiteouts=["d"]),
                layer(opaque=["e"], entries={"e/new": 1})]
    visible, wasted = account(contents, base_count=0)
    assert set(visible) == {"e/new"}
    assert sorted(p for p, _, _ in wasted) == ["d/one", "d/sub/two", "e/three"]


@pytest.mark.parametrize("created_by, shown", [
    ("RUN /bin/sh -c pip install x # buildkit", "RUN pip install x"),
    ("RUN |2 USER_UID=1001 USER_GID=1002 /bin/sh -c groupadd fastapi # buildkit", "RUN groupadd fastapi"),
    ("COPY app ./app # buildkit", "COPY app ./app"),
    ("/bin/sh -c #(nop)  CMD [\"python3\"]", "CMD [\"python3\"]"),
])
def test_instructions_read_like_the_dockerfile(created_by, shown):
    assert _instruction(created_by) == shown


def analysis(own_sizes: list[int], wasted=()) -> ImageAnalysis:
    base = 170 * MB
    layers = (Layer(0, "base", base, 10, True),) + tuple(
        Layer(i + 1, f"RUN step {i + 1}", size, 1, False) for i, size in enumerate(own_sizes))
    visible = {"usr/bin/gcc-12": 1, "usr/bin/python3": 1, "root/.cache/pip/http/x": 3}
    return ImageAnalysis("sha256:x", base + sum(own_sizes), "python:3.11-slim", base, True, layers,
                         sum(w for _, w, _ in wasted), tuple(wasted), visible, (), (), ())


def test_size_budget_shows_the_largest_layers_first_and_the_waste():
    result = size_budget(analysis([5 * MB, 150 * MB, 1000], wasted=[("opt/tmp", 2 * MB, 2)]))
    lines = result.message.splitlines()
    assert "adds 155.0 MB to python:3.11-slim" in lines[0] and "within the 280 MB budget" in lines[0]
    assert "RUN step 2" in lines[1] and "RUN step 1" in lines[2]
    assert "wasted: 2.0 MB" in result.message and "/opt/tmp" in result.message
    assert result.evidence["layers"][0]["instruction"] == "RUN step 2"


def test_size_budget_fails_over_280_mb():
    with pytest.raises(CheckFailed, match="expected at most 280 MB over the base"):
        size_budget(analysis([200 * MB, 90 * MB]))


def test_compilers_and_pip_caches_are_found_in_the_final_file_system():
    found = analysis([1])
    assert found.compilers() == ["usr/bin/gcc-12"]
    assert found.pip_caches() == ["/root/.cache/pip"]
