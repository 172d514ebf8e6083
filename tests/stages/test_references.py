"""Reference masks of a whole split: from a folder of saliency PNGs or the built-in method, in worker
processes, resumable; their PNG format."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pytest

from sal_lightning.data.io import read_label_png, read_reference, write_gray_png
from sal_lightning.data.layout import read_split
from sal_lightning.scoring.saliency import classical_saliency
from sal_lightning.stages.references import ReferenceSettings, build_references


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_build_references_from_a_folder_resumes_and_checks(synthetic_voc: Path, tmp_path: Path) -> None:
    ids = read_split(synthetic_voc, "train")[:4]
    out = build_references(
        synthetic_voc, tmp_path / "refs", split=ids, saliency=synthetic_voc / "saliency", progress=False
    )
    for image_id in ids:
        ref = read_reference(out / f"{image_id}.png")
        gt = read_label_png(synthetic_voc / "SegmentationClassAug" / f"{image_id}.png") > 0
        assert ref.shape == gt.shape
    ious = [
        _iou(
            read_reference(out / f"{i}.png"),
            read_label_png(synthetic_voc / "SegmentationClassAug" / f"{i}.png") > 0,
        )
        for i in ids
    ]
    assert np.mean(ious) > 0.6  # the synthetic detector is decent but imperfect
    stamp = {i: os.stat(out / f"{i}.png").st_mtime_ns for i in ids}
    # a rerun skips what exists; a removed mask is rebuilt
    (out / f"{ids[0]}.png").unlink()
    build_references(synthetic_voc, out, split=ids, saliency=synthetic_voc / "saliency", progress=False)
    assert all(os.stat(out / f"{i}.png").st_mtime_ns == stamp[i] for i in ids[1:])
    assert (out / f"{ids[0]}.png").is_file()
    with pytest.raises(FileNotFoundError, match="folder .* not found"):
        build_references(
            synthetic_voc, tmp_path / "r2", split=ids, saliency=tmp_path / "nowhere", progress=False
        )
    partial_maps = tmp_path / "partial"
    partial_maps.mkdir()
    write_gray_png(partial_maps / f"{ids[0]}.png", np.zeros((64, 64), np.uint8))
    with pytest.raises(FileNotFoundError, match=r"3 of 4 saliency maps missing"):
        build_references(synthetic_voc, tmp_path / "r3", split=ids, saliency=partial_maps, progress=False)


def test_build_references_builtin_in_worker_processes(synthetic_voc: Path, tmp_path: Path) -> None:
    ids = read_split(synthetic_voc, "val")[:3]
    config = ReferenceSettings(method="ft-border")
    pool = ReferenceSettings(method="ft-border", processes=2)
    inline = build_references(synthetic_voc, tmp_path / "a", split=ids, settings=config, progress=False)
    pooled = build_references(synthetic_voc, tmp_path / "b", split=ids, settings=pool, progress=False)
    for image_id in ids:
        assert np.array_equal(
            read_reference(inline / f"{image_id}.png"), read_reference(pooled / f"{image_id}.png")
        )
    with pytest.raises(ValueError, match="picklable"):
        build_references(
            synthetic_voc,
            tmp_path / "c",
            split=ids,
            saliency=lambda im: im[..., 0] / 255.0,
            settings=ReferenceSettings(processes=2),
            progress=False,
        )
    partial = functools.partial(classical_saliency, method="ft")
    build_references(
        synthetic_voc, tmp_path / "d", split=ids[:1], saliency=partial, settings=config, progress=False
    )
    assert (tmp_path / "d" / f"{ids[0]}.png").is_file()


def test_reference_png_format(tmp_path: Path) -> None:
    write_gray_png(tmp_path / "x.png", np.array([[0, 100, 128, 255]], dtype=np.uint8))
    assert read_reference(tmp_path / "x.png").tolist() == [[False, False, True, True]]
