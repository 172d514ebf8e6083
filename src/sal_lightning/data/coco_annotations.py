"""COCO instance annotations: the checked instances file, and one image's label map and tags.

:func:`read_coco_annotations` parses and checks an instances JSON file with plain ``json``;
:func:`coco_label_map` and :func:`coco_tags` give one image's label map and tags, which
:mod:`sal_lightning.data.coco` writes as a VOC-layout root.

**Label maps.** Each instance is rasterised by pycocotools (polygons and RLE alike). Where
instances overlap, **the smaller instance is on top**: instances are painted in decreasing order of
their pixel area (ties: the later annotation on top). COCO's polygons of large objects (dining
tables, beds, couches, people) usually include the area of the smaller objects lying on or in
front of them, so painting in file order ("later wins", what the common WSSS conversion script
does) makes a cup on a table disappear whenever the table was annotated after it, and the file's
order carries no meaning. **Every pixel of a crowd region is 255** (ignore), whatever else covers
it, as COCO's own evaluation ignores crowd regions.

**Tags** are the categories of all the image's annotations, crowd ones included (``crowd_tags``):
an image whose people are annotated as a crowd does hold the class ``person``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from sal_lightning.data.classes import BACKGROUND, validate_classes
from sal_lightning.data.io import PathLike, check_image_id
from sal_lightning.data.voc import IGNORE_INDEX

INSTALL_HINT = 'COCO conversion needs pycocotools: pip install "sal-lightning[coco]"'


def import_pycocotools_mask() -> ModuleType:
    """``pycocotools.mask``, or ``ImportError`` saying ``pip install "sal-lightning[coco]"``."""
    try:
        from pycocotools import mask
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return mask


# ---------------------------------------------------------------------------------------------------
# the annotation file


@dataclass(frozen=True)
class CocoImage:
    """One image of an annotation file: its id (file stem), file name, size and annotations."""

    image_id: str
    file_name: str
    height: int
    width: int
    annotations: tuple[dict[str, Any], ...]

    @property
    def has_objects(self) -> bool:
        """True when the image holds at least one non-crowd annotation (it enters the split list)."""
        return any(not a.get("iscrowd", 0) for a in self.annotations)


@dataclass(frozen=True)
class CocoAnnotations:
    """A parsed COCO instances file: ``categories`` (id, name) in id order and the images in id order."""

    path: Path
    categories: tuple[tuple[int, str], ...]
    images: tuple[CocoImage, ...]

    @property
    def class_names(self) -> tuple[str, ...]:
        """``(background, name of label 1, ..., name of label C)``."""
        return (BACKGROUND, *(name for _, name in self.categories))

    @property
    def label_of_category(self) -> dict[int, int]:
        """COCO category id -> label value 1..C (category-id order)."""
        return {cat: label for label, (cat, _) in enumerate(self.categories, start=1)}


def split_name(annotations: PathLike) -> str:
    """The split an annotation file fills: ``instances_train2014.json`` -> ``train``.

    Drops an ``instances_`` prefix and a trailing four-digit year from the file stem
    (``instances_minival2014`` -> ``minival``, ``my_set.json`` -> ``my_set``).
    """
    stem = Path(annotations).name.removesuffix(".json")
    stem = stem.removeprefix("instances_")
    stem = re.sub(r"(?<=[a-zA-Z])(19|20)\d\d$", "", stem) or stem
    return stem


def _require(record: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(record, Mapping) or key not in record:
        raise ValueError(f"{where}: missing {key!r}")
    value = record[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def read_coco_annotations(path: PathLike) -> CocoAnnotations:
    """Read and check a COCO instances JSON file (plain ``json``; no pycocotools needed).

    Checks, each error naming the file and the record: the ``images``, ``annotations`` and
    ``categories`` lists; unique category ids and names (``background`` is reserved); unique image
    ids and file stems (valid ids: no whitespace, no ``..``); annotations that name an unknown
    image or category.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation file not found (give instances_train2014.json)")
    try:
        with path.open("rb") as handle:
            data = json.load(handle)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a JSON file ({error})") from error
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a COCO instances object, got a JSON {type(data).__name__}")
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list) or not data[key]:
            raise ValueError(f"{path}: expected a non-empty {key!r} list (a COCO instances file)")
    anns = data.get("annotations", [])
    if not isinstance(anns, list):
        raise ValueError(f"{path}: 'annotations' must be a list")

    categories: dict[int, str] = {}
    for k, cat in enumerate(data["categories"]):
        where = f"{path}: categories[{k}]"
        cat_id = _require(cat, "id", int, where)
        name = _require(cat, "name", str, where).strip()
        if cat_id in categories:
            raise ValueError(f"{where}: duplicate category id {cat_id}")
        categories[cat_id] = name
    ordered = tuple(sorted(categories.items()))
    validate_classes((BACKGROUND, *(name for _, name in ordered)), f"{path}: category names")

    by_id: dict[int, dict[str, Any]] = {}
    stems: set[str] = set()
    for k, img in enumerate(data["images"]):
        where = f"{path}: images[{k}]"
        image_id = _require(img, "id", int, where)
        file_name = _require(img, "file_name", str, where)
        height = _require(img, "height", int, where)
        width = _require(img, "width", int, where)
        if height < 1 or width < 1:
            raise ValueError(f"{where}: size {height} x {width} must be positive")
        if image_id in by_id:
            raise ValueError(f"{where}: duplicate image id {image_id}")
        stem = check_image_id(Path(file_name).stem, f"{where} file_name {file_name!r}")
        if stem in stems:
            raise ValueError(f"{where}: file stem {stem!r} repeats (ids are the file stems)")
        stems.add(stem)
        by_id[image_id] = {"stem": stem, "file_name": file_name, "height": height, "width": width, "anns": []}
    for k, ann in enumerate(anns):
        where = f"{path}: annotations[{k}]"
        image_id = _require(ann, "image_id", int, where)
        cat_id = _require(ann, "category_id", int, where)
        if image_id not in by_id:
            raise ValueError(f"{where}: image_id {image_id} is not among the images")
        if cat_id not in categories:
            raise ValueError(f"{where}: category_id {cat_id} is not among the categories")
        by_id[image_id]["anns"].append(ann)
    images = tuple(
        CocoImage(rec["stem"], rec["file_name"], rec["height"], rec["width"], annotations=tuple(rec["anns"]))
        for _, rec in sorted(by_id.items())
    )
    return CocoAnnotations(path, ordered, images)


# ---------------------------------------------------------------------------------------------------
# one image: label map and tags


def instance_rle(
    segmentation: Any, height: int, width: int, source: str, mask_api: ModuleType | None = None
) -> dict[str, Any]:
    """The run-length encoding (pycocotools' compressed RLE) of one annotation's segmentation.

    ``segmentation``: a list of polygons ``[x1, y1, x2, y2, ...]`` (COCO's non-crowd form),
    an uncompressed RLE ``{"size": [h, w], "counts": [...]}`` (COCO's crowd form) or a compressed
    RLE (``counts`` a string). Polygons with fewer than three points have no area and are left out
    (pycocotools would read a four-number polygon as a box). ``source`` names the annotation in
    errors.
    """
    mask = mask_api or import_pycocotools_mask()
    if isinstance(segmentation, list):
        polygons = []
        for polygon in segmentation:
            if not isinstance(polygon, list) or len(polygon) % 2:
                raise ValueError(f"{source}: a polygon must be a list of x, y pairs, got {polygon!r:.60}")
            if len(polygon) >= 6:
                polygons.append([float(v) for v in polygon])
        if not polygons:
            return mask.encode(np.zeros((height, width, 1), dtype=np.uint8, order="F"))[0]
        return mask.merge(mask.frPyObjects(polygons, height, width))
    if isinstance(segmentation, Mapping) and "counts" in segmentation and "size" in segmentation:
        if [int(v) for v in segmentation["size"]] != [height, width]:
            raise ValueError(
                f"{source}: RLE size {list(segmentation['size'])} differs from the image's {[height, width]}"
            )
        if isinstance(segmentation["counts"], list):
            return mask.frPyObjects(dict(segmentation), height, width)
        return dict(segmentation)
    raise ValueError(
        f"{source}: segmentation must be polygons or an RLE dict, got {type(segmentation).__name__}"
    )


def coco_label_map(
    image: CocoImage, label_of_category: Mapping[int, int], mask_api: ModuleType | None = None
) -> np.ndarray:
    """The label map uint8 ``[H, W]`` of one image: 0 background, 1..C categories, 255 crowd.

    Non-crowd instances are painted in decreasing order of pixel area, so the smaller instance is
    on top where two overlap (equal areas: the later annotation on top); then every crowd pixel
    becomes 255.
    """
    mask = mask_api or import_pycocotools_mask()
    # pycocotools decodes column-major [H, W] masks; painting their C-ordered transposes into a
    # [W, H] map is a third faster than boolean indexing across the two memory orders
    labels_t = np.zeros((image.width, image.height), dtype=np.uint8)
    things: list[tuple[int, int, dict[str, Any], int]] = []
    crowds: list[dict[str, Any]] = []
    for order, ann in enumerate(image.annotations):
        source = f"image {image.file_name}, annotation id {ann.get('id', order)}"
        rle = instance_rle(ann.get("segmentation", []), image.height, image.width, source, mask_api=mask)
        if ann.get("iscrowd", 0):
            crowds.append(rle)
        else:
            things.append((-int(mask.area(rle)), order, rle, label_of_category[ann["category_id"]]))
    for _, _, rle, label in sorted(things, key=lambda t: (t[0], t[1])):
        labels_t[mask.decode(rle).T.view(bool)] = label
    if crowds:
        labels_t[mask.decode(mask.merge(crowds, intersect=False)).T.view(bool)] = IGNORE_INDEX
    return np.ascontiguousarray(labels_t.T)


def coco_tags(image: CocoImage, label_of_category: Mapping[int, int], crowd_tags: bool = True) -> np.ndarray:
    """Tags float32 ``[C]`` of one image: the categories of its annotations (crowd ones too
    unless ``crowd_tags=False``); ``tags[c - 1]`` is label ``c``."""
    tags = np.zeros(len(label_of_category), dtype=np.float32)
    for ann in image.annotations:
        if crowd_tags or not ann.get("iscrowd", 0):
            tags[label_of_category[ann["category_id"]] - 1] = 1.0
    return tags
