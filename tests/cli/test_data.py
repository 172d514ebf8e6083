"""``sal-lightning data``: synth, check, train-aug from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sal_lightning.cli import main
from sal_lightning.data.io import read_id_list


def test_cli_synth(tmp_path: Path, capsys) -> None:
    assert (
        main(
            ["data", "synth", "--out", str(tmp_path / "d"), "--n_train", "2", "--n_val", "1", "--size", "24"]
        )
        == 0
    )
    assert "wrote a synthetic VOC root" in capsys.readouterr().out
    assert json.loads((tmp_path / "d" / "synthetic.json").read_text())["difficulty"] == "realistic"
    assert read_id_list(tmp_path / "d/ImageSets/Segmentation/val.txt") == ["synth_000002"]


def test_cli_check_and_train_aug(voc_copy: Path, capsys) -> None:
    assert main(["data", "check", "--root", str(voc_copy), "--saliency", str(voc_copy / "saliency")]) == 0
    out = capsys.readouterr().out
    assert "train: 12 images" in out and "val: 6 images" in out and "train_aug: 12 images" in out
    (voc_copy / "ImageSets/Segmentation/train_aug.txt").unlink()
    assert main(["data", "train-aug", "--root", str(voc_copy)]) == 0
    assert "(12 ids)" in capsys.readouterr().out
    from PIL import Image

    Image.fromarray(np.full((64, 64), 99, np.uint8), mode="L").save(
        voc_copy / "SegmentationClass/synth_000004.png"
    )
    assert main(["data", "check", "--root", str(voc_copy), "--split", "train"]) == 2
    assert "synth_000004.png: label values must be 0..20 or 255" in capsys.readouterr().err


def test_cli_check_decodes_every_image(voc_copy: Path, capsys) -> None:
    """A truncated JPEG (its header intact) is found by ``data check``, not later by the pipeline."""
    jpeg = voc_copy / "JPEGImages" / "synth_000013.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[:600])
    assert main(["data", "check", "--root", str(voc_copy), "--split", "val"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "synth_000013.jpg: cannot read image" in err


def test_an_option_has_one_spelling(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--n_train`` (the YAML key and the Python argument); the dashed ``--n-val`` is refused."""
    argv = ["data", "synth", "--out", str(tmp_path / "d"), "--n_train", "1", "--size", "16"]
    assert main([*argv, "--n_val", "1"]) == 0
    assert read_id_list(tmp_path / "d/ImageSets/Segmentation/train.txt") == ["synth_000000"]
    assert main([*argv, "--n-val", "1"]) == 2
    assert "--n-val" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "synth", "--help"])
    assert "--n_train N_TRAIN" in capsys.readouterr().out
