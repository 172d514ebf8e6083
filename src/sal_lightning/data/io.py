"""File IO for VOC-format data: images, label PNGs, saliency and reference PNGs, CAM files, id lists and
the scores table.

Every reader returns numpy arrays and raises ``FileNotFoundError`` / ``ValueError`` naming the file
and what was expected; every writer goes through :mod:`sal_lightning._atomic`, so an interrupted
write never leaves a half-written file.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sal_lightning._atomic import atomic_path, atomic_write_text
from sal_lightning._versions import library_versions
from sal_lightning.data.classes import CLASSES_FILE, check_label_values, palette
from sal_lightning.data.voc import IGNORE_INDEX, NUM_CLASSES, NUM_FOREGROUND, VOC_PALETTE

PathLike = str | os.PathLike[str]

SCORE_COLUMNS: tuple[str, ...] = ("image_id", "ac", "cd", "sc", "p", "sf", "weight")
"""Columns of ``scores.csv`` (docs/design.md, "scores.csv"); every column but ``image_id`` is a float,
empty = NaN."""


@functools.lru_cache(maxsize=8)
def _palette_bytes(num_classes: int) -> bytes:
    """The PNG palette of a ``num_classes``-class dataset: VOC's own (all 256 rows) up to 21 classes,
    so VOC's files are byte for byte what they were, else :func:`~sal_lightning.data.classes.palette`."""
    return VOC_PALETTE.tobytes() if num_classes <= NUM_CLASSES else palette(num_classes).tobytes()


@functools.lru_cache(maxsize=8)
def _colour_to_label(num_classes: int) -> dict[int, int]:
    """RGB colour (packed as r<<16|g<<8|b) -> label value, for colour-coded masks saved as RGB."""
    colours = palette(num_classes)
    labels = [*range(num_classes), IGNORE_INDEX]
    return {(int(colours[k, 0]) << 16) | (int(colours[k, 1]) << 8) | int(colours[k, 2]): k for k in labels}


def _open_image(path: PathLike) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        image = Image.open(path)
        image.load()
    except (OSError, SyntaxError) as error:  # PIL raises both for truncated / corrupt files
        raise ValueError(f"{path}: cannot read image ({error})") from error
    return image


def image_size(path: PathLike) -> tuple[int, int]:
    """(height, width) of an image file, read from its header without decoding the pixels."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, SyntaxError) as error:
        raise ValueError(f"{path}: cannot read image header ({error})") from error
    return height, width


def read_image(path: PathLike) -> np.ndarray:
    """Read a JPEG/PNG image as uint8 [H, W, 3] RGB (grayscale and RGBA are converted)."""
    image = _open_image(path)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def write_image(path: PathLike, image: np.ndarray, quality: int = 90) -> None:
    """Write uint8 [H, W, 3] RGB as JPEG (``.jpg``/``.jpeg``) or PNG, chosen by the suffix."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{path}: image must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
    with atomic_path(path) as tmp:
        Image.fromarray(image, mode="RGB").save(tmp, quality=quality)


def check_labels(labels: np.ndarray, source: str, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Raise ``ValueError`` (naming ``source``) unless ``labels`` holds only ``0..num_classes-1`` and 255.

    ``num_classes`` is ``K``, background included (21 for VOC, the length of a root's
    ``classes.txt``); the error says where ``K`` comes from, so a COCO label read as VOC says how
    to fix it.
    """
    try:
        return check_label_values(np.asarray(labels, dtype=np.uint8), num_classes, source)
    except ValueError as error:
        raise ValueError(
            f"{error}; the dataset has {num_classes} classes (its root's {CLASSES_FILE}, or VOC's "
            f"{NUM_CLASSES} without one): fix the PNG, or list every class in {CLASSES_FILE} "
            "(background first) in the folder holding JPEGImages/"
        ) from None


def read_label_png(path: PathLike, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Read a label map (proxy, prediction or ground truth) as uint8 [H, W].

    Palette PNGs give their indices, grayscale PNGs their values, and RGB PNGs coloured with the
    dataset's palette (:func:`~sal_lightning.data.classes.palette`) are mapped back to label values.
    Values must be ``0..num_classes-1`` or 255 (``num_classes`` = K, background included: 21 for
    VOC); anything else raises a ``ValueError`` naming the file and ``classes.txt``.
    """
    image = _open_image(path)
    if image.mode in ("P", "L"):
        labels = np.asarray(image, dtype=np.uint8)
    elif image.mode in ("RGB", "RGBA"):
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint32)
        packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        colours, inverse = np.unique(packed, return_inverse=True)
        table = _colour_to_label(num_classes)
        unknown = [int(c) for c in colours if int(c) not in table]
        if unknown:
            shown = [((c >> 16) & 255, (c >> 8) & 255, c & 255) for c in unknown[:5]]
            raise ValueError(f"{path}: RGB mask holds colours outside the dataset's palette, e.g. {shown}")
        lut = np.array([table[int(c)] for c in colours], dtype=np.uint8)
        labels = lut[inverse.reshape(packed.shape)]
    elif image.mode in ("I", "I;16", "I;16B", "I;16L"):
        raw = np.asarray(image).astype(np.int64)
        if raw.size and (raw.min() < 0 or raw.max() > 255):
            raise ValueError(
                f"{path}: label values must be 0..{num_classes - 1} or 255, found range "
                f"{raw.min()}..{raw.max()}"
            )
        labels = raw.astype(np.uint8)
    else:
        raise ValueError(f"{path}: expected a palette, grayscale or RGB label PNG, got mode {image.mode}")
    return check_labels(labels, str(path), num_classes)


def write_label_png(path: PathLike, labels: np.ndarray, num_classes: int = NUM_CLASSES) -> None:
    """Write a label map uint8 [H, W] (``0..num_classes-1``, 255) as a palette PNG.

    The palette is VOC's up to 21 classes, else the generated one of
    :func:`~sal_lightning.data.classes.palette`.
    """
    if labels.dtype != np.uint8 or labels.ndim != 2:
        raise ValueError(f"{path}: labels must be uint8 [H, W], got {labels.dtype} {list(labels.shape)}")
    check_labels(labels, str(path), num_classes)
    image = Image.fromarray(labels, mode="P")
    image.putpalette(_palette_bytes(num_classes))
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def read_gray_png(path: PathLike) -> np.ndarray:
    """Read a grayscale map (saliency, 0..255) as uint8 [H, W]; RGB files are converted to luma."""
    image = _open_image(path)
    if image.mode != "L":
        image = image.convert("L")
    return np.asarray(image, dtype=np.uint8)


def write_gray_png(path: PathLike, values: np.ndarray) -> None:
    """Write uint8 [H, W] (0..255) as a grayscale PNG."""
    if values.dtype != np.uint8 or values.ndim != 2:
        raise ValueError(f"{path}: values must be uint8 [H, W], got {values.dtype} {list(values.shape)}")
    with atomic_path(path) as tmp:
        Image.fromarray(values, mode="L").save(tmp, format="PNG")


def read_reference(path: PathLike) -> np.ndarray:
    """Read a reference-mask PNG as bool ``[H, W]`` (pixels > 127 are salient)."""
    return read_gray_png(path) > 127


def write_reference(path: PathLike, mask: np.ndarray) -> None:
    """Write a bool ``[H, W]`` reference mask as a 0/255 grayscale PNG (atomically)."""
    if mask.ndim != 2:
        raise ValueError(f"{path}: reference mask must be [H, W], got shape {mask.shape}")
    write_gray_png(path, np.where(mask, 255, 0).astype(np.uint8))


def write_cams(path: PathLike, cams: np.ndarray, labels: np.ndarray) -> None:
    """Write one image's CAMs atomically as a compressed ``.npz``.

    cams: float ``[n, H, W]`` (stored as float16); labels: int ``[n]``, foreground label values 1..C.
    """
    cams = np.asarray(cams)
    labels = np.asarray(labels)
    if cams.ndim != 3 or labels.shape != (cams.shape[0],):
        raise ValueError(
            f"{path}: expected cams [n, H, W] and labels [n], got {list(cams.shape)} and {list(labels.shape)}"
        )
    if labels.size and (labels.min() < 1 or labels.max() > 255):
        raise ValueError(f"{path}: labels must be foreground label values (1..), got {labels.tolist()}")
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, cams=cams.astype(np.float16), labels=labels.astype(np.uint8))


def read_cams(path: PathLike, num_foreground: int = NUM_FOREGROUND) -> np.ndarray:
    """Read a :func:`write_cams` file as dense float32 ``[C, H, W]`` (channel c = label c+1).

    ``num_foreground`` is C, the foreground classes (20 for VOC).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: CAM file not found")
    with np.load(path) as data:
        if "cams" not in data or "labels" not in data:
            raise ValueError(f"{path}: expected arrays 'cams' and 'labels', got {sorted(data.files)}")
        cams, labels = data["cams"].astype(np.float32), data["labels"].astype(np.int64)
    if cams.ndim != 3 or labels.shape != (cams.shape[0],):
        raise ValueError(f"{path}: expected cams [n, H, W] and labels [n], got {cams.shape}, {labels.shape}")
    if labels.size and labels.max() > num_foreground:
        raise ValueError(
            f"{path}: label {labels.max()} exceeds the {num_foreground} foreground classes; were these "
            f"CAMs written for another class list ({CLASSES_FILE})?"
        )
    dense = np.zeros((num_foreground, *cams.shape[1:]), dtype=np.float32)
    dense[labels - 1] = cams
    return dense


def check_image_id(image_id: str, source: str = "image id") -> str:
    """Return ``image_id`` unless it is empty, has whitespace, a path separator or ``..``."""
    if (
        not image_id
        or image_id != image_id.strip()
        or any(ch.isspace() for ch in image_id)
        or "/" in image_id
        or "\\" in image_id
        or ".." in image_id
        or image_id.startswith(".")
    ):
        raise ValueError(
            f"{source}: invalid image id {image_id!r}; ids are file stems without path separators, "
            "whitespace, '..' or a leading '.'"
        )
    return image_id


def check_unique_ids(ids: Iterable[str], source: str) -> list[str]:
    """Validate every id (see :func:`check_image_id`) and reject duplicates; returns the ids as a list."""
    out: list[str] = []
    seen: set[str] = set()
    dupes: list[str] = []
    for image_id in ids:
        check_image_id(image_id, source)
        if image_id in seen:
            dupes.append(image_id)
        seen.add(image_id)
        out.append(image_id)
    if dupes:
        raise ValueError(f"{source}: {len(dupes)} duplicate image ids, e.g. {dupes[:5]}")
    return out


def read_id_list(path: PathLike) -> list[str]:
    """Read an id list (one id per line, as ``ImageSets/Segmentation/*.txt``); blank lines skipped.

    VOC's classification lists (``id  1``/``id -1``) are accepted: only the first column is read.
    Raises ``ValueError`` for invalid or duplicate ids, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: id list not found")
    ids = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    return check_unique_ids(ids, str(path))


def write_id_list(path: PathLike, ids: Iterable[str]) -> None:
    """Write one id per line (validated, no duplicates)."""
    ids = check_unique_ids(ids, str(path))
    atomic_write_text(path, "".join(f"{i}\n" for i in ids))


def _parse_float(text: str, path: Path, line: int, column: str) -> float:
    if text.strip() == "":
        return math.nan
    try:
        return float(text)
    except ValueError as error:
        raise ValueError(f"{path}:{line}: column {column!r} must be a number, got {text!r}") from error


def read_scores(path: PathLike) -> dict[str, dict[str, float]]:
    """Read ``scores.csv`` into ``{image_id: {column: value}}`` (empty cells -> NaN).

    The header must start with ``image_id``; the columns of :data:`SCORE_COLUMNS` missing from the
    file read as NaN, and extra columns are kept.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: scores file not found")
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or header[0] != "image_id":
            raise ValueError(f"{path}: expected a header starting with 'image_id', got {header}")
        columns = header[1:]
        rows: dict[str, dict[str, float]] = {}
        for line, record in enumerate(reader, start=2):
            if not record:
                continue
            if len(record) != len(header):
                raise ValueError(f"{path}:{line}: expected {len(header)} cells, got {len(record)}")
            image_id = check_image_id(record[0], f"{path}:{line}")
            if image_id in rows:
                raise ValueError(f"{path}:{line}: duplicate image id {image_id!r}")
            row = {c: math.nan for c in SCORE_COLUMNS[1:]}
            row.update({c: _parse_float(v, path, line, c) for c, v in zip(columns, record[1:], strict=True)})
            rows[image_id] = row
    return rows


def scores_sidecar(path: PathLike) -> Path:
    """The JSON sidecar of a scores table: ``scores.csv`` -> ``scores.json``."""
    return Path(path).with_suffix(".json")


def _format(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(float(value))


def write_scores(
    path: PathLike,
    rows: Mapping[str, Mapping[str, float]],
    config: Mapping[str, Any] | None = None,
) -> None:
    """Write or update ``scores.csv`` and its JSON sidecar (``scores.json``).

    ``rows`` maps image id -> {column: value} for any subset of the columns. Rows of an existing
    file are kept and updated column by column (a later step fills ``p``, ``sf``, ``weight``
    without touching ``ac``/``cd``/``sc``); new ids are appended. The sidecar records each write:
    the columns it set, ``config`` and the library versions.
    """
    path = Path(path)
    merged = read_scores(path) if path.exists() else {}
    written: set[str] = set()
    for image_id, values in rows.items():
        check_image_id(image_id, str(path))
        row = merged.setdefault(image_id, {c: math.nan for c in SCORE_COLUMNS[1:]})
        for column, value in values.items():
            if column == "image_id":
                continue
            row[column] = float(value)
            written.add(column)
    columns = list(SCORE_COLUMNS[1:])
    columns += sorted({c for row in merged.values() for c in row} - set(columns))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image_id", *columns])
    for image_id, row in merged.items():
        writer.writerow([image_id, *(_format(row.get(c, math.nan)) for c in columns)])
    sidecar = scores_sidecar(path)
    history: list[Any] = []
    if sidecar.exists():
        try:
            history = list(json.loads(sidecar.read_text()).get("writes", []))
        except (ValueError, AttributeError):
            history = []
    history.append(
        {
            "columns": [c for c in columns if c in written],
            "config": dict(config or {}),
            "versions": library_versions(),
        }
    )
    atomic_write_text(path, buffer.getvalue())
    atomic_write_text(sidecar, json.dumps({"writes": history}, indent=2, sort_keys=True, default=str) + "\n")
