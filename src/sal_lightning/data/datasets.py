"""VOC-format datasets yielding samples in the batch contract (docs/design.md, "Batches").

A sample is a dict: ``image`` float [3, H, W] (normalised), ``mask`` long [H, W] (0..C, 255 =
ignore), ``tags`` float [C], ``weight`` float scalar tensor, ``id`` str, ``size`` (original H, W),
and ``saliency`` float [H, W] in 0..1 when a saliency folder is given.

Which mask an id gets: ``strong_ids`` -> its ground truth with weight 1 (the semi-supervised mix);
otherwise the PNG in ``proxies`` when a proxy folder is given, else the ground truth; with
``use_masks=False`` the mask is all 255 (tags-only training, unlabelled prediction). The weight comes
from the ``weight`` column of ``scores`` (1 without one).

Checked when the dataset is built: invalid or duplicate ids, missing images / masks / saliency maps
(how many, the first few), ids missing from the scores file, tags that cannot be found, and image /
mask / saliency size mismatches (read from the file headers, ``check_sizes=True``). Label values
outside 0..C / 255 are checked when a mask is read (``__getitem__``, naming the file); run
``sal-lightning data check`` to check every mask up front.

``C`` is the number of foreground classes of the root: the lines of its ``classes.txt`` after
``background``, or VOC's 20 when the root has no class file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from sal_lightning.data.classes import tags_from_label_map, validate_classes
from sal_lightning.data.io import (
    PathLike,
    check_unique_ids,
    image_size,
    read_gray_png,
    read_id_list,
    read_image,
    read_label_png,
    read_scores,
)
from sal_lightning.data.layout import (
    GT_DIRS,
    TagsSource,
    find_gt_mask,
    raise_if_missing,
    resolve_ids,
    resolve_tags,
    resolve_voc_root,
    root_classes,
)
from sal_lightning.data.transforms import SegmentationTransform, eval_transform
from sal_lightning.data.voc import IGNORE_INDEX


@dataclass(frozen=True)
class SampleSource:
    """Where one sample comes from: files, tags (None: read from the ground truth ``tags_mask``), weight."""

    image_id: str
    image: Path
    mask: Path | None
    saliency: Path | None
    tags: np.ndarray | None
    tags_mask: Path | None
    weight: float


def _strong_set(strong_ids: PathLike | Sequence[str] | None) -> set[str]:
    if strong_ids is None:
        return set()
    if isinstance(strong_ids, (str, os.PathLike)):
        return set(read_id_list(strong_ids))
    return set(check_unique_ids(list(strong_ids), "strong_ids"))


def _weights(ids: list[str], strong: set[str], scores: PathLike | None, split: object) -> dict[str, float]:
    """Each id's weight: the ``weight`` column of ``scores`` (1 for strong ids and without scores)."""
    weights = dict.fromkeys(ids, 1.0)
    if scores is None:
        return weights
    table = read_scores(scores)
    weak = [i for i in ids if i not in strong]
    absent = [i for i in weak if i not in table or math.isnan(table[i].get("weight", math.nan))]
    if absent:
        raise ValueError(
            f"{scores}: {len(absent)} of {len(weak)} ids of split {split} have no weight, e.g. {absent[:5]}"
        )
    for i in weak:
        weight = table[i]["weight"]
        if weight < 0:
            raise ValueError(f"{scores}: weight of {i!r} is negative ({weight})")
        weights[i] = weight
    return weights


def _mask_paths(
    root: Path, ids: list[str], strong: set[str], proxies: PathLike | None, gt_dirs: Sequence[str]
) -> list[Path | None]:
    """Each id's mask file: its proxy, or its ground truth (strong ids, or without ``proxies``)."""
    folder = Path(proxies) if proxies is not None else None
    if folder is not None and not folder.is_dir():
        raise FileNotFoundError(f"proxies: folder {folder} not found")
    gt_masks = {
        k: find_gt_mask(root, i, gt_dirs) or root / gt_dirs[0] / f"{i}.png"
        for k, i in enumerate(ids)
        if folder is None or i in strong
    }
    raise_if_missing(
        list(gt_masks.values()), "ground-truth masks", " or ".join(str(root / d) for d in gt_dirs)
    )
    proxy_masks = (
        {} if folder is None else {k: folder / f"{i}.png" for k, i in enumerate(ids) if i not in strong}
    )
    raise_if_missing(list(proxy_masks.values()), "proxy masks", folder or "")
    masks: list[Path | None] = [None] * len(ids)
    for k, path in (gt_masks | proxy_masks).items():
        masks[k] = path
    return masks


def _tag_masks(root: Path, ids: list[str], tags: dict[str, Any], gt_dirs: Sequence[str]) -> list[Path | None]:
    """For ids without tags, the ground-truth mask their tags are read from (never a proxy)."""
    tag_masks = [find_gt_mask(root, i, gt_dirs) if tags[i] is None else None for i in ids]
    no_tags = [i for k, i in enumerate(ids) if tags[i] is None and tag_masks[k] is None]
    if no_tags:
        raise FileNotFoundError(
            f"{root}: {len(no_tags)} ids have no tags (no Annotations XML, cls_labels entry, "
            f"SBD file or ground-truth mask), e.g. {no_tags[:5]}"
        )
    return tag_masks


class VOCDataset(Dataset[dict[str, Any]]):
    """Samples of one split of a VOC-format root.

    Args:
        root: VOC root (the folder holding ``JPEGImages/``; a ``VOCdevkit`` parent is accepted).
        split: split name (``train``, ``val``, ``train_aug``, ``test``), a list file path, or a
            sequence of ids.
        transform: joint transform (default: :func:`~sal_lightning.data.transforms.eval_transform`).
        proxies: folder of proxy label PNGs (``<id>.png``) used instead of the ground truth.
        strong_ids: ids (or a list file) that use their ground truth with weight 1.
        scores: ``scores.csv`` whose ``weight`` column gives per-image weights.
        skip_zero_weight: leave out ids whose weight is 0 (hard selection draws only selected images).
        saliency: folder of grayscale saliency PNGs (``<id>.png``) added as ``saliency``.
        use_masks: load masks (False: ``mask`` is all 255 and no mask files are needed).
        gt_dirs: ground-truth folders under the root, searched in order for ``<id>.png``.
        tags_source, cls_labels, sbd_dir: where tags come from (see
            :func:`~sal_lightning.data.layout.resolve_tags`).
        check_sizes: compare image / mask / saliency sizes from the file headers when building.
        classes: the class list, background first (default: the root's ``classes.txt``, else VOC's
            21); tags are ``[len(classes) - 1]`` and label values ``0..len(classes) - 1`` or 255.
    """

    def __init__(
        self,
        root: PathLike,
        split: PathLike | Sequence[str],
        *,
        transform: SegmentationTransform | None = None,
        proxies: PathLike | None = None,
        strong_ids: PathLike | Sequence[str] | None = None,
        scores: PathLike | None = None,
        skip_zero_weight: bool = False,
        saliency: PathLike | None = None,
        use_masks: bool = True,
        gt_dirs: Sequence[str] = GT_DIRS,
        tags_source: TagsSource = "auto",
        cls_labels: PathLike | None = None,
        sbd_dir: PathLike | None = None,
        check_sizes: bool = True,
        classes: Sequence[str] | None = None,
    ) -> None:
        self.root = resolve_voc_root(root)
        self.classes = root_classes(self.root) if classes is None else validate_classes(classes)
        self.split = split if isinstance(split, (str, os.PathLike)) else "<ids>"
        self.transform = transform if transform is not None else eval_transform()
        ids = resolve_ids(self.root, split)
        if not ids:
            raise ValueError(f"split {self.split}: no image ids")
        strong = _strong_set(strong_ids)
        outside = sorted(strong - set(ids))
        if outside:
            raise ValueError(
                f"strong_ids: {len(outside)} ids are not in split {self.split}, e.g. {outside[:5]}"
            )
        weights = _weights(ids, strong, scores, self.split)
        if skip_zero_weight:
            ids = [i for i in ids if weights[i] > 0]
            if not ids:
                raise ValueError(f"{scores}: every id of split {self.split} has weight 0 (none selected)")
        images = [self.root / "JPEGImages" / f"{i}.jpg" for i in ids]
        raise_if_missing(images, "images", self.root / "JPEGImages")
        masks = (
            _mask_paths(self.root, ids, strong, proxies, gt_dirs=gt_dirs) if use_masks else [None] * len(ids)
        )
        salient: list[Path | None] = [None] * len(ids)
        if saliency is not None:
            maps = [Path(saliency) / f"{i}.png" for i in ids]
            raise_if_missing(maps, "saliency maps", saliency)
            salient = list(maps)
        tags = resolve_tags(self.root, ids, tags_source, cls_labels, sbd_dir=sbd_dir, classes=self.classes)
        tag_masks = _tag_masks(self.root, ids, tags, gt_dirs)
        self.samples = [
            SampleSource(
                i, images[k], masks[k], salient[k], tags=tags[i], tags_mask=tag_masks[k], weight=weights[i]
            )
            for k, i in enumerate(ids)
        ]
        if check_sizes:
            self._check_sizes()

    def _check_sizes(self) -> None:
        for sample in tqdm(self.samples, desc="checking sizes", disable=len(self.samples) < 2000, unit="img"):
            size = image_size(sample.image)
            for other in (sample.mask, sample.saliency):
                other_size = image_size(other) if other is not None else size
                if other_size != size:
                    raise ValueError(
                        f"{other}: size {other_size} (H, W) differs from its image {sample.image} {size}"
                    )

    @property
    def num_classes(self) -> int:
        """K, the segmentation classes with background (21 for VOC)."""
        return len(self.classes)

    @property
    def ids(self) -> list[str]:
        """The ids in sample order."""
        return [s.image_id for s in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        source = self.samples[index]
        image = read_image(source.image)
        height, width = image.shape[:2]
        if source.mask is not None:
            mask = read_label_png(source.mask, self.num_classes)
            if mask.shape != (height, width):
                raise ValueError(f"{source.mask}: size {mask.shape} differs from its image {(height, width)}")
        else:
            mask = np.full((height, width), IGNORE_INDEX, dtype=np.uint8)
        if source.tags is not None:
            tags = source.tags
        elif source.tags_mask == source.mask:
            tags = tags_from_label_map(mask, self.num_classes)
        else:
            gt = read_label_png(source.tags_mask, self.num_classes)  # type: ignore[arg-type]
            tags = tags_from_label_map(gt, self.num_classes)
        saliency = None
        if source.saliency is not None:
            saliency = read_gray_png(source.saliency)
            if saliency.shape != (height, width):
                raise ValueError(
                    f"{source.saliency}: size {saliency.shape} differs from its image {(height, width)}"
                )
        x, y, s = self.transform(image, mask, saliency)
        sample: dict[str, Any] = {
            "image": x,
            "mask": y,
            "tags": torch.from_numpy(tags.copy()),
            "weight": torch.tensor(source.weight, dtype=torch.float32),
            "id": source.image_id,
            "size": (height, width),
        }
        if s is not None:
            sample["saliency"] = s
        return sample
