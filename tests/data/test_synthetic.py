"""The synthetic VOC-format dataset: layout, determinism, annotations consistent with masks."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from sal_lightning.data.io import read_gray_png, read_id_list, read_image, read_label_png
from sal_lightning.data.scenes import class_styles
from sal_lightning.data.scenes_realistic import look_alike, realistic_styles
from sal_lightning.data.synthetic import make_synthetic_voc
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


def _saliency_f(root: Path, ids: list[str]) -> np.ndarray:
    """F-measure of each saliency map thresholded at 128 against the ground-truth foreground."""
    scores = []
    for image_id in ids:
        gt = read_label_png(root / "SegmentationClass" / f"{image_id}.png")
        valid = gt != 255
        fg, sal = (gt > 0)[valid], (read_gray_png(root / "saliency" / f"{image_id}.png") >= 128)[valid]
        scores.append(2 * (fg & sal).sum() / max(int(fg.sum() + sal.sum()), 1))
    return np.array(scores)


def test_realistic_data_has_the_difficulties_of_real_data(tmp_path: Path) -> None:
    """The default data's saliency misses and spills, and its classes look alike (the figures of
    the module docstring, measured over 300 images in broad bounds)."""
    root = make_synthetic_voc(tmp_path / "d", 300, 0, 64, seed=1)
    ids = read_id_list(root / "ImageSets/Segmentation/train.txt")
    f = _saliency_f(root, ids)
    assert 0.9 < np.median(f) < 0.99 and 0.05 < (f < 0.6).mean() < 0.25  # good maps, and poor ones
    labels = [set(np.unique(read_label_png(root / "SegmentationClassAug" / f"{i}.png"))) - {0} for i in ids]
    assert 0.5 < np.mean([len(t) == 1 for t in labels]) < 0.75  # about 60% hold one class
    pairs = sum(1 for t in labels for c in t if c % 2 == 1 and look_alike(c) in t)
    assert pairs > 10  # look-alike classes appear together
    styles = realistic_styles()
    for label in range(1, 21):  # shape, texture and colours each shared; only the combination is unique
        style = styles[label]
        assert sum(s.shape == style.shape for s in styles.values()) == 4
        assert sum(s.texture == style.texture for s in styles.values()) == 5
        assert set(styles[look_alike(label)].colours) == set(style.colours)
    assert len({(s.shape, s.texture, s.colours) for s in styles.values()}) == 20


def test_clean_data_tells_classes_apart_by_colour(tmp_path: Path) -> None:
    """The clean data: a nearest-mean colour classifier on whole objects separates most classes,
    and every saliency map is good."""
    root = make_synthetic_voc(tmp_path / "d", 18, 0, 64, seed=0, difficulty="clean")
    styles = class_styles()
    centres = np.array([styles[c].colour for c in range(1, 21)], np.float32)
    correct = total = 0
    for i in range(18):
        image = read_image(root / "JPEGImages" / f"synth_{i:06d}.jpg").astype(np.float32)
        labels = read_label_png(root / "SegmentationClass" / f"synth_{i:06d}.png")
        for label in set(np.unique(labels)) - {0, 255}:
            mean = np.median(image[labels == label], axis=0)
            correct += int(np.argmin(((centres - mean) ** 2).sum(1)) + 1 == label)
            total += 1
    assert correct / total > 0.7
    f = _saliency_f(root, [f"synth_{i:06d}" for i in range(18)])
    assert np.median(f) > 0.85


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


def test_a_synthetic_root_with_its_own_classes(tmp_path: Path) -> None:
    """``classes``: classes.txt written, labels 1..3 only, XML names from the list; without it the
    root is VOC's (no class file)."""
    from sal_lightning.data.classes import read_classes

    names = ["background", "cup", "traffic light", "owl"]
    root = make_synthetic_voc(tmp_path / "three", n_train=6, n_val=0, size=32, seed=2, classes=names)
    assert read_classes(root / "classes.txt") == tuple(names)
    pngs = (root / "SegmentationClassAug").glob("*.png")
    labels = {int(v) for p in pngs for v in np.unique(read_label_png(p, 4))}
    assert labels <= {0, 1, 2, 3} and labels - {0}
    xmls = (root / "Annotations").glob("*.xml")
    xml_names = {o.findtext("name") for p in xmls for o in ET.parse(p).iter("object")}
    assert xml_names and xml_names <= set(names[1:])
    voc = make_synthetic_voc(tmp_path / "voc", n_train=2, n_val=0, size=32, seed=2)
    assert not (voc / "classes.txt").exists()
