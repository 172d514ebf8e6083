"""PASCAL VOC 2012 constants: class names, label values, colour palette, input normalisation.

Label maps hold ``0`` (background), ``1..20`` (the foreground classes in :data:`VOC_CLASSES` order)
and :data:`IGNORE_INDEX` (``255``, VOC's "void" along object borders and for unlabelled pixels).
Image tags are multi-hot vectors over the 20 foreground classes only: ``tags[c - 1]`` is class ``c``.
"""

from __future__ import annotations

import numpy as np

VOC_CLASSES: tuple[str, ...] = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
"""The 21 VOC label names; index 0 is background, index ``c`` is label value ``c``."""

NUM_CLASSES: int = 21
"""Segmentation classes including background."""

NUM_FOREGROUND: int = 20
"""Foreground classes (the length of a tag vector)."""

IGNORE_INDEX: int = 255
"""Label value of void / unlabelled pixels, ignored by losses and metrics."""

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
"""Per-channel RGB mean (in 0..1) subtracted by the transforms; ``x = (rgb / 255 - mean) / std``."""

IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
"""Per-channel RGB standard deviation (in 0..1) the transforms divide by."""

CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(VOC_CLASSES)}
"""Class name -> label value (``"person"`` -> 15)."""


def _voc_palette() -> np.ndarray:
    """The standard VOC colour map: label ``i`` gets the colour spelled by the bits of ``i``."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for label in range(256):
        r = g = b = 0
        c = label
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[label] = (r, g, b)
    return palette


VOC_PALETTE: np.ndarray = _voc_palette()
"""uint8 [256, 3]: RGB colour of each label value (15 person (192, 128, 128), 255 void (224, 224, 192))."""
VOC_PALETTE.setflags(write=False)

VALID_LABELS: np.ndarray = np.zeros(256, dtype=bool)
"""bool [256]: True for the allowed label values 0..20 and 255 (a lookup table for validation)."""
VALID_LABELS[:NUM_CLASSES] = True
VALID_LABELS[IGNORE_INDEX] = True
VALID_LABELS.setflags(write=False)


def class_index(name: str) -> int:
    """Label value (1..20) of a VOC foreground class name; ``ValueError`` for unknown names."""
    index = CLASS_INDEX.get(name.strip())
    if index is None or index == 0:
        raise ValueError(f"unknown VOC class name {name!r}; expected one of {', '.join(VOC_CLASSES[1:])}")
    return index


def tags_from_labels(labels: np.ndarray) -> np.ndarray:
    """Multi-hot tags of the foreground classes present in a label map.

    labels: uint8/int [H, W] with values 0..20 or 255. Returns float32 [20].
    """
    present = np.unique(labels)
    tags = np.zeros(NUM_FOREGROUND, dtype=np.float32)
    fg = present[(present >= 1) & (present <= NUM_FOREGROUND)].astype(np.int64)
    tags[fg - 1] = 1.0
    return tags
