"""A synthetic dataset in the exact PASCAL VOC 2012 layout (the demo's data and the tests' fixture).

The files written under ``out``::

    JPEGImages/<id>.jpg                     RGB images
    SegmentationClass/<id>.png              VOC-palette masks with a void (255) band along borders
    SegmentationClassAug/<id>.png           the same masks without the void band (as SBD's)
    Annotations/<id>.xml                    VOC XML: size and one <object> (name, bndbox) per object
    ImageSets/Segmentation/{train,val,train_aug}.txt
    saliency/<id>.png                       grayscale maps of an imperfect salient-object detector
    synthetic.json                          the generator's parameters (a rerun with equal ones is a no-op)
    classes.txt                             the class list, background first (only with ``classes``)

``classes`` gives the dataset its own class list (background first; labels ``1..C`` are drawn
among its ``C`` foreground classes, the XML names are its names): a VOC-layout root with a
``classes.txt``, the case of COCO and of a user's own data. Without it the classes are VOC's 20 and
no class file is written. The looks below are those of VOC's 20 classes; past 20 they repeat.

Two difficulties (``difficulty``):

- ``"realistic"`` (the default; ``data synth``, the demo): what makes real weakly supervised data
  hard. Classes look alike: each of the 20 is a combination of a shape (5), a texture (4) and a
  pair of colours (10 pairs over 6 colours), every one of them shared with other classes, so only
  the combination tells a class; classes ``2j-1`` and ``2j`` share both colours (in every other
  pair with the roles of the two swapped) and the second object of an image is the first one's
  look-alike in 30% of the draws that are not a repeat of its class. About 60% of the images hold
  one class;
  objects range from small to large (log-uniform sizes), occlude each other (each keeps at least
  half of itself visible), on a smooth background with low-contrast clutter. The saliency maps
  miss and spill: about 15% are deliberately poor (low contrast, heavy blur, the biggest object
  missed, a large salient background area, or only part of an object salient), small objects
  (under 3% of the image) are missed 40% of the time, and 25% of the maps get a false-positive
  blob; the others are slightly blurred, grown or shrunk. ``benchmarks/data_profile.py`` measures
  these figures; ``docs/data.md`` compares them with an independent benchmark's.
- ``"clean"``: the generator of sal-lightning 0.1's first figures (one colour per class, 1-3
  objects, decent saliency); it reproduces them, and suits tests of mechanics.

The output depends only on the parameters; image ``i`` only on ``(seed, i)``. The scenes are drawn
by :mod:`sal_lightning.data.scenes` (``clean``) and :mod:`sal_lightning.data.scenes_realistic`.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from tqdm import tqdm

from sal_lightning._atomic import atomic_write_text
from sal_lightning.data.classes import CLASSES_FILE, validate_classes, write_classes
from sal_lightning.data.io import PathLike, write_gray_png, write_id_list, write_image, write_label_png
from sal_lightning.data.scenes import make_sample
from sal_lightning.data.scenes_realistic import make_realistic_sample
from sal_lightning.data.voc import IGNORE_INDEX, VOC_CLASSES

_FORMAT_VERSION = 1  # of the "clean" data; "realistic" data records its difficulty beside it
Difficulty = Literal["realistic", "clean"]
DIFFICULTIES: tuple[str, ...] = ("realistic", "clean")


def _void_band(labels: np.ndarray, width: int) -> np.ndarray:
    """bool [H, W]: pixels within ``width - 1`` of a boundary between two different labels (both sides)."""
    edge = np.zeros(labels.shape, dtype=bool)
    diff_x = labels[:, 1:] != labels[:, :-1]
    diff_y = labels[1:, :] != labels[:-1, :]
    edge[:, 1:] |= diff_x
    edge[:, :-1] |= diff_x
    edge[1:, :] |= diff_y
    edge[:-1, :] |= diff_y
    if width > 1:
        kernel = np.ones((2 * width - 1, 2 * width - 1), np.uint8)
        edge = cv2.dilate(edge.astype(np.uint8), kernel).astype(bool)
    return edge


def annotation_xml(
    image_id: str,
    height: int,
    width: int,
    objects: list[tuple[int, tuple[int, int, int, int]]],
    classes: Sequence[str] = VOC_CLASSES,
) -> str:
    """A VOC ``Annotations/<id>.xml`` document for the given objects (label, (xmin, ymin, xmax, ymax));
    label ``c`` is named ``classes[c]``."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "VOC2012"
    ET.SubElement(root, "filename").text = f"{image_id}.jpg"
    source = ET.SubElement(root, "source")
    ET.SubElement(source, "database").text = "sal-lightning synthetic"
    size = ET.SubElement(root, "size")
    ET.SubElement(size, "width").text = str(width)
    ET.SubElement(size, "height").text = str(height)
    ET.SubElement(size, "depth").text = "3"
    ET.SubElement(root, "segmented").text = "1"
    for label, (x0, y0, x1, y1) in objects:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = classes[label]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        box = ET.SubElement(obj, "bndbox")
        for tag, value in (("xmin", x0), ("ymin", y0), ("xmax", x1), ("ymax", y1)):
            ET.SubElement(box, tag).text = str(value)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def make_synthetic_voc(
    out: PathLike,
    n_train: int = 200,
    n_val: int = 50,
    size: int | tuple[int, int] = 96,
    seed: int = 0,
    *,
    difficulty: Difficulty = "realistic",
    classes: list[str] | None = None,
    progress: bool = False,
) -> Path:
    """Write a synthetic VOC-format dataset under ``out`` and return ``out`` (a VOC root).

    Image ``i`` depends only on ``(seed, i)``, so the output is deterministic. Ids are
    ``synth_000000`` ...; the first ``n_train`` form ``train`` (and ``train_aug``), the next
    ``n_val`` form ``val``. A rerun with the same parameters over a complete output returns at once.

    Args:
        out: the folder to write (it becomes a VOC root).
        n_train: images of the ``train`` (and ``train_aug``) split.
        n_val: images of the ``val`` split.
        size: the images' square side in pixels, or (height, width).
        seed: seed of the images, masks and saliency maps.
        difficulty: ``"realistic"`` (look-alike classes, saliency maps that miss and spill) or
            ``"clean"`` (see the module docstring).
        classes: the class list, background first (written as ``classes.txt``; labels ``1..C`` are
            drawn among its ``C`` foreground classes); ``None``: VOC's, no class file.
        progress: show a progress bar.
    """
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty: expected one of {list(DIFFICULTIES)}, got {difficulty!r}")
    if n_train < 0 or n_val < 0 or n_train + n_val == 0:
        raise ValueError(f"n_train and n_val must be >= 0 with at least one image, got {n_train}, {n_val}")
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if min(height, width) < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    names = VOC_CLASSES if classes is None else validate_classes(classes, "classes")
    out = Path(out)
    params: dict[str, int | str | list[str]] = {
        "format": _FORMAT_VERSION,
        "n_train": n_train,
        "n_val": n_val,
        "height": height,
        "width": width,
        "seed": seed,
    }
    if difficulty != "clean":  # the clean data keeps its first marker, so its outputs are reused
        params["difficulty"] = difficulty
    if classes is not None:  # VOC's data keeps its marker, so its outputs are reused
        params["classes"] = list(names)
    marker = out / "synthetic.json"
    if marker.is_file() and json.loads(marker.read_text()) == params:
        return out
    ids = [f"synth_{i:06d}" for i in range(n_train + n_val)]
    void_width = max(1, round(min(height, width) / 100))
    seeds = np.random.SeedSequence(seed).spawn(len(ids))
    for image_id, child in tqdm(
        list(zip(ids, seeds, strict=True)), desc="synthetic VOC", disable=not progress, unit="img"
    ):
        make = make_sample if difficulty == "clean" else make_realistic_sample
        sample = make(np.random.default_rng(child), height, width, len(names) - 1)
        write_image(out / "JPEGImages" / f"{image_id}.jpg", sample.image, quality=92)
        write_label_png(out / "SegmentationClassAug" / f"{image_id}.png", sample.labels, len(names))
        voc_labels = sample.labels.copy()
        voc_labels[_void_band(sample.labels, void_width)] = IGNORE_INDEX
        write_label_png(out / "SegmentationClass" / f"{image_id}.png", voc_labels, len(names))
        write_gray_png(out / "saliency" / f"{image_id}.png", sample.saliency)
        xml = annotation_xml(image_id, height, width, sample.objects, classes=names)
        atomic_write_text(out / "Annotations" / f"{image_id}.xml", xml)
    lists = out / "ImageSets" / "Segmentation"
    write_id_list(lists / "train.txt", ids[:n_train])
    write_id_list(lists / "train_aug.txt", ids[:n_train])
    write_id_list(lists / "val.txt", ids[n_train:])
    if classes is not None:
        write_classes(out / CLASSES_FILE, names)
    atomic_write_text(marker, json.dumps(params, indent=2) + "\n")
    return out
