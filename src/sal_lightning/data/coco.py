"""MS COCO 2014 as the WSSS field uses it: COCO instance annotations -> a VOC-layout root.

:func:`convert_coco` reads official ``instances_{train,val}2014.json`` files (or any COCO-format
instance annotations) and writes, under ``out``::

    classes.txt                          background + the categories in category-id order
    JPEGImages/<id>.jpg                  hard links to the COCO images (copies across file systems)
    SegmentationClass/<id>.png           palette label PNGs: 0 background, 1..C category, 255 crowd
    ImageSets/Segmentation/<split>.txt   the images holding at least one non-crowd object
    cls_labels.npy                       dict id -> float32 [C] tags of every image, as PSA/IRN ship it

An id is the image's file stem (``COCO_train2014_000000000009``); the split is named after the
annotation file (``instances_train2014.json`` -> ``train``). For COCO 2014, ``C = 80``: category
ids are sparse (1..90), label ``c`` is the ``c``-th category in id order (:data:`COCO_CATEGORY_IDS`,
:data:`COCO_CLASSES`).

Label maps and tags: :mod:`sal_lightning.data.coco_annotations` (the smaller instance on top,
crowd regions 255).

**Resumable and atomic.** Every file is written to a temporary name and renamed, so an
interrupted run leaves only complete files; a rerun keeps the label PNGs whose size matches the
annotation's, and the split lists and ``cls_labels.npy`` are written last. pycocotools is an
optional dependency: ``pip install "sal-lightning[coco]"``.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from sal_lightning._atomic import atomic_path, check_writable
from sal_lightning._threads import one_thread_worker
from sal_lightning.data.classes import (
    BACKGROUND,
    CLASSES_FILE,
    palette,
    read_classes,
    write_classes,
)
from sal_lightning.data.coco_annotations import (
    CocoAnnotations,
    CocoImage,
    coco_label_map,
    coco_tags,
    import_pycocotools_mask,
    read_coco_annotations,
    split_name,
)
from sal_lightning.data.io import PathLike, check_image_id, image_size, write_id_list
from sal_lightning.data.layout import write_cls_labels

COCO_CATEGORY_IDS: tuple[int, ...] = tuple(
    i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
)
"""The 80 category ids of COCO 2014 / 2017 instances in order: ``COCO_CATEGORY_IDS[c - 1]`` is label ``c``."""

COCO_CLASSES: tuple[str, ...] = (
    BACKGROUND,
    *("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"),
    *("traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog"),
    *("horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag"),
    *("tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat"),
    *("baseball glove", "skateboard", "surfboard", "tennis racket", "bottle", "wine glass", "cup", "fork"),
    *("knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog"),
    *("pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet", "tv"),
    *("laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink"),
    *("refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush"),
)
"""The 81 label names of COCO 2014 (background + the categories' ``name`` in id order), as
:func:`convert_coco` writes them to ``classes.txt``; write them beside label PNGs made elsewhere
with :func:`~sal_lightning.data.classes.write_classes`."""

CLS_LABELS_FILE = "cls_labels.npy"
LABEL_DIR = "SegmentationClass"
IMAGE_DIR = "JPEGImages"


# ---------------------------------------------------------------------------------------------------
# files


def find_image(images: Path, file_name: str) -> Path | None:
    """``<images>/<file_name>``, else ``<images>/<set>/<file_name>`` for COCO names
    ``COCO_<set>_<number>.jpg`` (``--images`` may be the folder above ``train2014/``), else None."""
    direct = images / file_name
    if direct.is_file():
        return direct
    parts = Path(file_name).name.split("_")
    if len(parts) >= 3 and parts[0] == "COCO":
        nested = images / parts[1] / Path(file_name).name
        if nested.is_file():
            return nested
    return None


_NO_HARD_LINK = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES)
"""errno values of ``os.link`` that mean "copy instead" (other file system, no links, too many links)."""


def link_image(source: Path, target: Path) -> str:
    """Put ``source`` at ``target``: a hard link where the file system allows it, else a copy.

    Atomic (a temporary name, then a rename). Returns ``"present"`` when ``target`` already is
    ``source`` or a file of the same size, else ``"linked"`` or ``"copied"``.
    """
    if target.is_file() and _same_file(source, target):
        return "present"
    with atomic_path(target) as tmp:
        try:
            os.link(source, tmp)
            how = "linked"
        except OSError as error:
            if error.errno not in _NO_HARD_LINK:
                raise
            shutil.copyfile(source, tmp)
            how = "copied"
    return how


def _same_file(source: Path, target: Path) -> bool:
    return os.path.samefile(source, target) or target.stat().st_size == source.stat().st_size


def write_palette_png(path: Path, labels: np.ndarray, colours: np.ndarray) -> None:
    """Write uint8 ``[H, W]`` labels as a palette PNG with ``colours`` (uint8 ``[256, 3]``), atomically."""
    image = Image.fromarray(labels, mode="P")
    image.putpalette(colours.tobytes())
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", compress_level=3)  # 3x faster than 6, files 45% larger


@dataclass(frozen=True)
class _Task:
    image: CocoImage
    source: Path
    out: Path
    label_of_category: dict[int, int]
    colours: np.ndarray


def _convert_one(task: _Task) -> tuple[str, str]:
    """Write one image's label PNG (unless a complete one is there) and its JPEG link.

    Returns ``(png status, image status)``: ``"written"`` / ``"kept"``, and
    ``"linked"`` / ``"copied"`` / ``"present"``.
    """
    image = task.image
    size = image_size(task.source)
    if size != (image.height, image.width):
        raise ValueError(
            f"{task.source}: image size {size} (H, W) differs from its annotation's "
            f"{(image.height, image.width)}; are --images and --annotations from the same COCO release?"
        )
    png = task.out / LABEL_DIR / f"{image.image_id}.png"
    status = "kept"
    if not (png.is_file() and _png_size(png) == size):
        labels = coco_label_map(image, task.label_of_category)
        write_palette_png(png, labels, task.colours)
        status = "written"
    return status, link_image(task.source, task.out / IMAGE_DIR / f"{image.image_id}.jpg")


def _png_size(path: Path) -> tuple[int, int] | None:
    try:
        return image_size(path)
    except (OSError, ValueError):
        return None


def _run(tasks: Sequence[_Task], processes: int, desc: str, progress: bool) -> Iterator[tuple[str, str]]:
    bar = tqdm(total=len(tasks), desc=desc, unit="img", disable=not progress, dynamic_ncols=True)
    try:
        if processes <= 0 or len(tasks) < 2:
            for task in tasks:
                yield _convert_one(task)
                bar.update()
        else:
            # spawn: safe beside threads; the worker imports only numpy, PIL and pycocotools
            context = get_context("spawn")
            with ProcessPoolExecutor(processes, mp_context=context, initializer=one_thread_worker) as pool:
                for result in pool.map(_convert_one, tasks, chunksize=16):
                    yield result
                    bar.update()
    finally:
        bar.close()


# ---------------------------------------------------------------------------------------------------
# the conversion


@dataclass
class CocoSplitSummary:
    """What :func:`convert_coco` did for one annotation file."""

    split: str
    annotations: Path
    images: int = 0
    listed: int = 0
    with_crowd: int = 0
    written: int = 0
    kept: int = 0
    linked: int = 0
    copied: int = 0
    present: int = 0

    def __str__(self) -> str:
        return (
            f"{self.split}: {self.listed} of {self.images} images hold objects ({self.with_crowd} with "
            f"crowd regions); label PNGs: {self.written} written, {self.kept} already complete; "
            f"images: {self.linked} linked, {self.copied} copied, {self.present} already there"
        )


def _as_paths(annotations: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(annotations, (str, os.PathLike)):
        return [Path(annotations)]
    return [Path(a) for a in annotations]


def _write_list_if_changed(path: Path, ids: Sequence[str]) -> None:
    if path.is_file() and path.read_text().split() == list(ids):
        return
    write_id_list(path, ids)


@dataclass(frozen=True)
class _Plan:
    """One annotation file, checked: its split name and the image file of each listed image."""

    path: Path
    split: str
    classes: tuple[str, ...]
    sources: tuple[Path, ...]


def _plan(path: Path, coco: CocoAnnotations, split: str, images_dir: Path) -> _Plan:
    check_image_id(split, f"{path}: split name")
    listed = [img for img in coco.images if img.has_objects]
    not_jpeg = [
        img.file_name for img in listed if Path(img.file_name).suffix.lower() not in (".jpg", ".jpeg")
    ]
    if not_jpeg:
        raise ValueError(
            f"{path}: {len(not_jpeg)} images are not JPEG files, e.g. {not_jpeg[0]}; the VOC layout holds "
            "JPEGImages/<id>.jpg: convert them to JPEG (and their file_name) first"
        )
    sources = [find_image(images_dir, img.file_name) for img in listed]
    missing = [img.file_name for img, src in zip(listed, sources, strict=True) if src is None]
    if missing:
        raise FileNotFoundError(
            f"images {images_dir}: {len(missing)} of the {len(listed)} images of {path.name} with "
            f"objects are missing, e.g. {', '.join(missing[:3])}; give the folder holding them "
            "(or the folder above train2014/ and val2014/)"
        )
    return _Plan(path, split, coco.class_names, tuple(src for src in sources if src is not None))


def convert_coco(
    annotations: Sequence[PathLike] | PathLike,
    images: PathLike,
    out: PathLike,
    *,
    split: str | None = None,
    crowd_tags: bool = True,
    processes: int = 0,
    progress: bool = True,
) -> list[CocoSplitSummary]:
    """Convert COCO instance annotations into a VOC-layout root at ``out`` (see the module docstring).

    Args:
        annotations: one or more COCO instances JSON files (``instances_train2014.json``,
            ``instances_val2014.json``); each fills the split named after it (:func:`split_name`).
        images: the folder of the COCO images: ``<images>/<file_name>``, or the folder above
            ``train2014/`` and ``val2014/`` (``<images>/<set>/<file_name>``).
        out: the VOC-layout root to write (created). A rerun into the same folder keeps the
            finished label PNGs and images, and adds the splits of other annotation files.
        split: the split name for a single annotation file (default: from its file name).
        crowd_tags: tag an image with the categories of its crowd annotations too.
        processes: processes writing label PNGs (0: this process).
        progress: show a tqdm progress bar per split.

    Checked before anything is written: pycocotools is installed, ``out`` is writable, every
    annotation file parses (:func:`read_coco_annotations`), their categories agree with each other
    and with an existing ``out/classes.txt``, ids are unique across files, and the image of every
    image with objects is found. Checked per image while converting: the JPEG's size is the
    annotation's. Several files are read twice (checked, then converted one at a time), so only
    one is held in memory while converting. Returns one :class:`CocoSplitSummary` per file.
    """
    import_pycocotools_mask()  # fail in the first second when the extra is missing
    paths = _as_paths(annotations)
    if not paths:
        raise ValueError("annotations: give at least one COCO instances JSON file")
    if split is not None and len(paths) > 1:
        raise ValueError("split: name the split only when converting a single annotation file")
    images_dir = Path(images).expanduser()
    if not images_dir.is_dir():
        raise FileNotFoundError(f"images {images_dir}: folder not found (the folder of the COCO JPEGs)")
    if processes < 0:
        raise ValueError(f"processes: expected 0 or more processes, got {processes}")
    root = check_writable(Path(out).expanduser(), "out")

    plans: list[_Plan] = []
    seen_ids: dict[str, Path] = {}
    coco: CocoAnnotations | None = None
    for path in paths:
        coco = None  # one parsed file in memory at a time
        coco = read_coco_annotations(path)
        plan = _plan(path, coco, split if split is not None else split_name(path), images_dir)
        if plans and plan.classes != plans[0].classes:
            raise ValueError(f"{path}: its categories differ from those of {paths[0]}; convert it separately")
        if plan.split in {p.split for p in plans}:
            raise ValueError(f"{path}: fills split {plan.split!r} as another annotation file does")
        for image in coco.images:
            if image.image_id in seen_ids:
                raise ValueError(f"{path}: image {image.image_id} is also in {seen_ids[image.image_id]}")
            seen_ids[image.image_id] = path
        plans.append(plan)
    del seen_ids
    colours = palette(len(_class_file(root, plans[0].classes)))

    summaries: list[CocoSplitSummary] = []
    for plan in plans:
        if coco is None or coco.path != plan.path:  # a single file is read once, several twice
            coco = None
            coco = read_coco_annotations(plan.path)
        summaries.append(
            _convert_split(
                coco, plan, root, colours, crowd_tags=crowd_tags, processes=processes, progress=progress
            )
        )
        coco = None
    return summaries


def _class_file(root: Path, classes: Sequence[str]) -> Sequence[str]:
    """Write ``classes`` as the root's class file, or check that the one there holds them."""
    path = root / CLASSES_FILE
    if not path.is_file():
        write_classes(path, classes)
    elif read_classes(path) != tuple(classes):
        raise ValueError(f"{path}: {root} already holds another class list; convert into a new --out folder")
    return classes


def _convert_split(
    coco: CocoAnnotations,
    plan: _Plan,
    root: Path,
    colours: np.ndarray,
    crowd_tags: bool,
    processes: int,
    progress: bool,
) -> CocoSplitSummary:
    """Label PNGs and images of one file's listed images, then its tags and split list."""
    label_of = coco.label_of_category
    listed = [img for img in coco.images if img.has_objects]
    tasks = [
        _Task(img, src, root, label_of, colours=colours)
        for img, src in zip(listed, plan.sources, strict=True)
    ]
    summary = CocoSplitSummary(plan.split, plan.path, images=len(coco.images), listed=len(listed))
    summary.with_crowd = sum(any(a.get("iscrowd", 0) for a in img.annotations) for img in listed)
    for png_status, image_status in _run(tasks, processes, f"coco {plan.split}", progress):
        setattr(summary, png_status, getattr(summary, png_status) + 1)  # written | kept
        setattr(summary, image_status, getattr(summary, image_status) + 1)  # linked | copied | present
    tags = {img.image_id: coco_tags(img, label_of, crowd_tags) for img in coco.images}
    write_cls_labels(root / CLS_LABELS_FILE, tags, len(label_of))
    _write_list_if_changed(
        root / "ImageSets" / "Segmentation" / f"{plan.split}.txt", [img.image_id for img in listed]
    )
    return summary
