"""The synthetic VOC-format dataset: layout, determinism, annotations consistent with masks."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from sal_lightning.cli import main
from sal_lightning.data.io import read_gray_png, read_id_list, read_image, read_label_png
from sal_lightning.data.synthetic import class_styles, make_synthetic_voc
from sal_lightning.data.voc import VOC_CLASSES, tags_from_labels


def _xml_objects(path: Path) -> list[tuple[int, tuple[int, ...]]]:
    root = ET.parse(path).getroot()
    return [
        (
            VOC_CLASSES.index(obj.findtext("name", "")),
            tuple(int(obj.findtext(f"bndbox/{k}", "")) for k in ("xmin", "ymin", "xmax", "ymax")),
        )
        for obj in root.iter("object")
    ]


def test_layout_and_annotations_agree_with_masks(synthetic_voc: Path) -> None:
    lists = synthetic_voc / "ImageSets" / "Segmentation"
    train, val = read_id_list(lists / "train.txt"), read_id_list(lists / "val.txt")
    assert len(train) == 12 and len(val) == 6 and read_id_list(lists / "train_aug.txt") == train
    assert not set(train) & set(val)
    for image_id in train + val:
        image = read_image(synthetic_voc / "JPEGImages" / f"{image_id}.jpg")
        voc = read_label_png(synthetic_voc / "SegmentationClass" / f"{image_id}.png")
        aug = read_label_png(synthetic_voc / "SegmentationClassAug" / f"{image_id}.png")
        saliency = read_gray_png(synthetic_voc / "saliency" / f"{image_id}.png")
        assert image.shape == (64, 64, 3) and voc.shape == aug.shape == saliency.shape == (64, 64)
        objects = _xml_objects(synthetic_voc / "Annotations" / f"{image_id}.xml")
        assert 1 <= len(objects) <= 3
        tags = np.zeros(20, np.float32)
        tags[[label - 1 for label, _ in objects]] = 1
        assert np.array_equal(tags, tags_from_labels(aug)) and np.array_equal(tags, tags_from_labels(voc))
        assert set(np.unique(aug)) <= set(range(21))
        # the void band only replaces labels, on both sides of every label change
        void = voc == 255
        assert void.any() and np.array_equal(voc[~void], aug[~void])
        changes = np.zeros_like(void)
        changes[:, 1:] |= aug[:, 1:] != aug[:, :-1]
        changes[:, :-1] |= aug[:, 1:] != aug[:, :-1]
        changes[1:] |= aug[1:] != aug[:-1]
        changes[:-1] |= aug[1:] != aug[:-1]
        assert np.array_equal(void, changes)
        # boxes enclose exactly the pixels of their class (one box per class when not repeated)
        for label, (x0, y0, x1, y1) in objects:
            ys, xs = np.nonzero(aug == label)
            assert xs.min() + 1 <= x0 <= x1 <= xs.max() + 1 and ys.min() + 1 <= y0 <= y1 <= ys.max() + 1


def test_saliency_is_good_but_imperfect(synthetic_voc: Path) -> None:
    ious = []
    for i in range(18):
        fg = read_label_png(synthetic_voc / "SegmentationClassAug" / f"synth_{i:06d}.png") > 0
        saliency = read_gray_png(synthetic_voc / "saliency" / f"synth_{i:06d}.png")
        assert saliency[fg].mean() > saliency[~fg].mean() + 60
        sal = saliency > 128
        ious.append((sal & fg).sum() / max((sal | fg).sum(), 1))
    assert 0.6 < np.mean(ious) < 0.97 and min(ious) < 0.9


def test_classes_are_told_apart_by_colour(synthetic_voc: Path) -> None:
    """A nearest-mean colour classifier on whole objects already separates most classes."""
    styles = class_styles()
    centres = np.array([styles[c].colour for c in range(1, 21)], np.float32)
    correct = total = 0
    for i in range(18):
        image = read_image(synthetic_voc / "JPEGImages" / f"synth_{i:06d}.jpg").astype(np.float32)
        labels = read_label_png(synthetic_voc / "SegmentationClass" / f"synth_{i:06d}.png")
        for label in set(np.unique(labels)) - {0, 255}:
            mean = np.median(image[labels == label], axis=0)
            correct += int(np.argmin(((centres - mean) ** 2).sum(1)) + 1 == label)
            total += 1
    assert correct / total > 0.7


def test_deterministic_and_rerun_is_a_no_op(tmp_path: Path) -> None:
    a = make_synthetic_voc(tmp_path / "a", 3, 1, 32, seed=5)
    b = make_synthetic_voc(tmp_path / "b", 3, 1, (32, 48), seed=5)
    c = make_synthetic_voc(tmp_path / "c", 3, 1, 32, seed=6)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 4 * 5 + 3 + 1
    same = [
        (a / f).read_bytes() == (make_synthetic_voc(tmp_path / "a2", 3, 1, 32, 5) / f).read_bytes()
        for f in files
    ]
    assert all(same)
    assert (a / "JPEGImages/synth_000000.jpg").read_bytes() != (
        c / "JPEGImages/synth_000000.jpg"
    ).read_bytes()
    assert read_image(b / "JPEGImages/synth_000000.jpg").shape == (32, 48, 3)
    stamp = (a / "JPEGImages/synth_000000.jpg").stat().st_mtime_ns
    make_synthetic_voc(tmp_path / "a", 3, 1, 32, seed=5)
    assert (a / "JPEGImages/synth_000000.jpg").stat().st_mtime_ns == stamp


def test_cli_synth(tmp_path: Path, capsys) -> None:
    assert (
        main(
            ["data", "synth", "--out", str(tmp_path / "d"), "--n-train", "2", "--n-val", "1", "--size", "24"]
        )
        == 0
    )
    assert "wrote a synthetic VOC root" in capsys.readouterr().out
    assert read_id_list(tmp_path / "d/ImageSets/Segmentation/val.txt") == ["synth_000002"]


def test_cli_check_and_train_aug(voc_copy: Path, capsys) -> None:
    assert main(["data", "check", "--root", str(voc_copy), "--saliency-dir", str(voc_copy / "saliency")]) == 0
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
