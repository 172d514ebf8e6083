"""Class lists of any dataset: the ``classes.txt`` contract, label values, palettes, tags.

A dataset has ``K`` segmentation classes: ``0`` is background and ``1..K-1`` are the ``C = K - 1``
foreground classes; label maps hold ``0..K-1`` and :data:`IGNORE_INDEX` (255); image tags are
float32 ``[C]`` multi-hot vectors, ``tags[c - 1]`` for class ``c``. ``K`` is 21 for PASCAL VOC
(the default everywhere), 81 for MS COCO 2014, anything from 2 to 255 for a user's own classes.

**The class file.** A VOC-layout root may carry ``classes.txt``: plain UTF-8 text, one class name
per line in label order, the first line ``background``. Names are stripped of surrounding
whitespace and may hold inner spaces (``traffic light``); they may not be empty or repeat (compared
case-insensitively), and there are at most 255 of them (label 255 means ignore). Blank lines are
allowed only at the end. A root without the file has VOC's 21 classes.

**Palettes.** :func:`palette` gives uint8 ``[256, 3]`` colours for label PNGs: VOC's own colour map
for up to 21 classes (so VOC's masks keep their devkit colours and a 7-class set looks like VOC's
first classes), and for more classes a generated one (evenly spaced hues over three
saturation / brightness tiers, consecutive labels far apart) whose colours are distinct, none black
(background) and none VOC's void colour (label 255).

**A model and its data.** A model's ``num_classes`` is K too; the trainer commands fill an unset one
from the data (the ``sal-lightning fit`` family of commands), and when both are given and differ,
:func:`check_data_classes` stops the run at ``setup``, before a step, with the fix.
"""

from __future__ import annotations

import colorsys
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sal_lightning._atomic import atomic_write_text
from sal_lightning.data.voc import IGNORE_INDEX, VOC_CLASSES, VOC_PALETTE

PathLike = str | os.PathLike[str]

CLASSES_FILE: str = "classes.txt"
"""File name of a root's class list (in the folder holding ``JPEGImages/``)."""

BACKGROUND: str = "background"
"""The required first name of every class list (label value 0)."""

MAX_CLASSES: int = IGNORE_INDEX
"""The most classes a list may hold, background included: labels ``0..254`` (255 is ignore)."""

DEFAULT_CLASSES: tuple[str, ...] = VOC_CLASSES
"""The class list of a root without ``classes.txt``: VOC's 21 names."""


def validate_classes(names: Sequence[str], source: str = "classes") -> tuple[str, ...]:
    """Check a class list and return it as a tuple.

    ``names`` must start with :data:`BACKGROUND`, hold at least one foreground class and at most
    :data:`MAX_CLASSES` names, none empty, none with surrounding whitespace or a line break, none
    repeated (case-insensitively). Raises ``ValueError`` starting with ``source`` (a file name or
    argument) that says which entry is wrong and how to fix it.
    """
    if isinstance(names, str):
        raise ValueError(f"{source}: expected a sequence of class names, got the string {names!r}")
    names = tuple(names)
    if not names:
        raise ValueError(f"{source}: the class list is empty; its first entry must be {BACKGROUND!r}")
    for index, name in enumerate(names):
        where = f"{source}: entry {index} (line {index + 1})"
        if not isinstance(name, str):
            raise ValueError(f"{where}: class names must be strings, got {type(name).__name__}")
        if not name.strip():
            raise ValueError(f"{where}: empty class name; give every class a name, one per line")
        if name != name.strip() or "\n" in name or "\r" in name:
            raise ValueError(f"{where}: class name {name!r} has surrounding whitespace or a line break")
    if names[0] != BACKGROUND:
        raise ValueError(
            f"{source}: the first class must be {BACKGROUND!r} (label 0), got {names[0]!r}; add a "
            f"{BACKGROUND!r} line at the top (foreground classes are labels 1..C after it)"
        )
    if len(names) < 2:
        raise ValueError(f"{source}: no foreground class; list at least one class after {BACKGROUND!r}")
    if len(names) > MAX_CLASSES:
        raise ValueError(
            f"{source}: {len(names)} classes, at most {MAX_CLASSES} fit in 8-bit label maps "
            f"(labels 0..{MAX_CLASSES - 1}, {IGNORE_INDEX} = ignore)"
        )
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        key = name.casefold()
        if key in seen:
            raise ValueError(
                f"{source}: class {name!r} on line {index + 1} repeats {names[seen[key]]!r} on line "
                f"{seen[key] + 1}; names must be unique (compared case-insensitively)"
            )
        seen[key] = index
    return names


def read_classes(path: PathLike) -> tuple[str, ...]:
    """Read and validate a ``classes.txt`` (one name per line, background first).

    Returns the ``K`` names in label order. Raises ``FileNotFoundError`` / ``ValueError`` naming
    the file and the line at fault.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: class list not found")
    try:
        text = path.read_text(encoding="utf-8-sig")  # tolerate a BOM written by some editors
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: class list must be UTF-8 text ({error})") from error
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return validate_classes(lines, str(path))


def write_classes(path: PathLike, names: Sequence[str]) -> Path:
    """Validate ``names`` and write them to ``path`` atomically, one per line; returns ``path``."""
    path = Path(path)
    names = validate_classes(names, str(path))
    atomic_write_text(path, "".join(f"{name}\n" for name in names))
    return path


def check_num_classes(num_classes: int, source: str = "num_classes") -> int:
    """Return ``num_classes`` (K, background included) unless it is outside ``2..255``."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise ValueError(f"{source}: expected an integer number of classes, got {num_classes!r}")
    if not 2 <= int(num_classes) <= MAX_CLASSES:
        raise ValueError(
            f"{source}: expected 2..{MAX_CLASSES} classes (background included), got {num_classes}"
        )
    return int(num_classes)


def _generated_colours(count: int) -> np.ndarray:
    """uint8 ``[count, 3]`` distinct saturated colours for ``count`` foreground classes.

    Three (saturation, value) tiers take turns (class 1 tier 0, class 2 tier 1, ...); within a tier
    the hues are evenly spaced and visited with a stride near ``0.38 x`` their number, so
    consecutive labels differ in tier and hue. Saturation >= 0.5 and value >= 0.6 keep every
    colour away from black (background) and from VOC's pale void colour (label 255).
    """
    tiers = ((0.80, 0.95), (0.50, 0.80), (0.95, 0.60))
    per_tier = math.ceil(count / len(tiers))
    stride = max(1, round(per_tier * 0.381966))
    while math.gcd(stride, per_tier) != 1:
        stride += 1
    colours = np.zeros((count, 3), dtype=np.uint8)
    for i in range(count):
        tier, j = i % len(tiers), i // len(tiers)
        hue = ((j * stride) % per_tier + tier / len(tiers)) / per_tier
        saturation, value = tiers[tier]
        colours[i] = [round(c * 255) for c in colorsys.hsv_to_rgb(hue, saturation, value)]
    return colours


def palette(num_classes: int) -> np.ndarray:
    """Colours of the label values of a ``num_classes``-class dataset, uint8 ``[256, 3]``.

    Rows ``0..num_classes-1`` and 255 are the colours of the valid labels, every other row is
    black. Up to 21 classes: VOC's devkit colour map (``palette(21)`` equals VOC's palette on
    those rows); more: background black, void VOC's (224, 224, 192), the foreground classes
    generated colours, all distinct and deterministic. The result is read-only.
    """
    num_classes = check_num_classes(num_classes)
    out = np.zeros((256, 3), dtype=np.uint8)
    if num_classes <= len(VOC_CLASSES):
        out[:num_classes] = VOC_PALETTE[:num_classes]
    else:
        out[1:num_classes] = _generated_colours(num_classes - 1)
    out[IGNORE_INDEX] = VOC_PALETTE[IGNORE_INDEX]
    out.setflags(write=False)
    return out


def valid_labels(num_classes: int) -> np.ndarray:
    """bool ``[256]`` lookup table: True for the label values ``0..num_classes-1`` and 255."""
    num_classes = check_num_classes(num_classes)
    table = np.zeros(256, dtype=bool)
    table[:num_classes] = True
    table[IGNORE_INDEX] = True
    table.setflags(write=False)
    return table


def check_label_values(labels: np.ndarray, num_classes: int, source: str) -> np.ndarray:
    """Return ``labels`` (uint8 ``[H, W]``) unless it holds values outside ``0..K-1`` and 255.

    The ``ValueError`` names ``source`` (a file), the first offending values and their pixel count.
    """
    if labels.dtype != np.uint8:
        raise ValueError(f"{source}: labels must be uint8, got {labels.dtype}")
    bad = ~valid_labels(num_classes)[labels]
    if bad.any():
        values = sorted({int(v) for v in np.unique(labels[bad])})
        raise ValueError(
            f"{source}: label values must be 0..{num_classes - 1} or {IGNORE_INDEX} (ignore), found "
            f"{values[:10]}{' ...' if len(values) > 10 else ''} in {int(bad.sum())} pixels"
        )
    return labels


def tags_from_label_map(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Multi-hot tags float32 ``[num_classes - 1]`` of the foreground classes present in ``labels``.

    labels: int ``[H, W]`` with values ``0..num_classes-1`` or 255 (background and ignore are
    not tags; other values are left out).
    """
    num_classes = check_num_classes(num_classes)
    present = np.unique(labels).astype(np.int64)
    present = present[(present >= 1) & (present < num_classes)]
    tags = np.zeros(num_classes - 1, dtype=np.float32)
    tags[present - 1] = 1.0
    return tags


def check_data_classes(module: Any, num_classes: int) -> None:
    """Raise ``ValueError`` when ``module``'s trainer has a DataModule whose ``num_classes`` differs.

    ``module``: a LightningModule (attached to a trainer or not; without a DataModule, or one that
    does not say its classes, nothing is checked). ``num_classes``: the model's K.
    """
    trainer = getattr(module, "_trainer", None)
    datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
    data_classes = getattr(datamodule, "num_classes", None)
    if not isinstance(data_classes, int) or data_classes == num_classes:
        return
    root = getattr(datamodule, "root", "the data root")
    raise ValueError(
        f"num_classes: the model has {num_classes} classes (background included) but {root} has "
        f"{data_classes} (its {CLASSES_FILE}, or VOC's 21 without one); leave the model's "
        "num_classes unset to take the data's, or fix the class file"
    )
