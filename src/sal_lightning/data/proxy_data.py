"""Datasets over a folder of proxy annotations: what the scoring stages read.

- :class:`CoarseScoringDataset`: image, proxy, reference mask and tags per id, for the coarse
  scores (:func:`~sal_lightning.scoring.coarse.score_samples`). A reference is read from
  ``references`` when its PNG exists, else built from the saliency *inside the dataset* (so with
  DataLoader workers the image decoding and the CRFs run in worker processes) and written there.
- :class:`ProxyMaskDataset`: image and the proxy's binary foreground, resized for a fine scorer.
- :class:`AgreementDataset`: image labelled where the proxy's foreground and its reference mask
  agree, the training data of :class:`~sal_lightning.models.AgreementNet`.

Saliency comes as :data:`SaliencySource`: a folder of grayscale PNGs ``<folder>/<id>.png``, a
callable ``image -> map``, or ``None`` for the built-in method (see
:func:`~sal_lightning.scoring.references.reference_mask`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from sal_lightning.data.classes import tags_from_label_map
from sal_lightning.data.io import (
    PathLike,
    check_unique_ids,
    read_image,
    read_label_png,
    read_reference,
    write_reference,
)
from sal_lightning.data.layout import (
    TagsSource,
    find_gt_mask,
    raise_if_missing,
    resolve_tags,
    resolve_voc_root,
    root_classes,
)
from sal_lightning.data.saliency import SaliencySource, load_saliency
from sal_lightning.data.scorer_data import to_scorer_input
from sal_lightning.data.voc import IGNORE_INDEX
from sal_lightning.scoring.references import reference_mask


def read_tags(root: Path, ids: Sequence[str], source: TagsSource = "auto") -> dict[str, np.ndarray]:
    """Tags float32 ``[C]`` of every id (C: the foreground classes of the root's ``classes.txt``,
    VOC's 20 without one): XML / cls_labels / SBD as the data layer resolves them, else from the
    ground-truth mask; ``FileNotFoundError`` when an id has neither."""
    num_classes = len(root_classes(root))
    tags = resolve_tags(root, ids, source)
    out: dict[str, np.ndarray] = {}
    for image_id, value in tags.items():
        if value is None:
            gt = find_gt_mask(root, image_id)
            if gt is None:
                raise FileNotFoundError(
                    f"{root}: no tags for {image_id!r} (no Annotations XML, cls_labels.npy entry or "
                    "ground-truth mask)"
                )
            value = tags_from_label_map(read_label_png(gt, num_classes), num_classes)
        out[image_id] = np.asarray(value, dtype=np.float32)
    return out


def list_collate(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """DataLoader collate that keeps variable-size samples as a list."""
    return samples


class _ProxyFolder(Dataset[dict[str, Any]]):
    """The images of ``ids`` under a VOC root with their proxy ``<proxies>/<id>.png`` (checked)."""

    def __init__(self, root: PathLike, ids: Sequence[str], proxies: PathLike) -> None:
        self.root = resolve_voc_root(root)
        self.ids = check_unique_ids(list(ids), "ids")
        self.proxies = Path(proxies)
        self.num_classes = len(root_classes(self.root))  # K: label values 0..K-1 and 255
        raise_if_missing([self.root / "JPEGImages" / f"{i}.jpg" for i in self.ids], "images", self.root)
        raise_if_missing([self.proxies / f"{i}.png" for i in self.ids], "proxy annotations", self.proxies)

    def __len__(self) -> int:
        return len(self.ids)

    def read(self, image_id: str) -> tuple[np.ndarray, np.ndarray]:
        """Image uint8 ``[H, W, 3]`` and proxy labels uint8 ``[H, W]`` of ``image_id`` (same size)."""
        image = read_image(self.root / "JPEGImages" / f"{image_id}.jpg")
        labels = read_label_png(self.proxies / f"{image_id}.png", self.num_classes)
        if labels.shape != image.shape[:2]:
            raise ValueError(
                f"{self.proxies / image_id}.png: size {labels.shape} differs from the image's "
                f"{image.shape[:2]}"
            )
        return image, labels


def proxy_foreground(labels: np.ndarray) -> np.ndarray:
    """Bool ``[H, W]``: the pixels of a label map with a foreground class (1..C, not 0 or void 255)."""
    return (labels >= 1) & (labels != IGNORE_INDEX)


class CoarseScoringDataset(_ProxyFolder):
    """Per id: image, proxy, reference mask and tags, for :func:`~sal_lightning.scoring.coarse.score_samples`.

    Args:
        root: VOC root (``JPEGImages/<id>.jpg``, tags from ``Annotations/`` and the other sources
            of :func:`sal_lightning.data.layout.resolve_tags`, or ground-truth masks).
        ids: image ids to score.
        proxies: folder of proxy annotations ``<id>.png`` (labels 0..C, 255 = ignore).
        references: folder of reference masks ``<id>.png``; missing ones are built from
            ``saliency`` and written there. ``None``: always built, never written.
        saliency: folder of saliency PNGs, a callable, or ``None`` for the built-in method.
        reference_arguments: keyword arguments of
            :func:`~sal_lightning.scoring.references.reference_mask` (binarisation, CRF and
            iterative erasing; ``ReferenceSettings.mask_arguments()`` gives them).
        tags_source: see :func:`sal_lightning.data.layout.resolve_tags`.

    Samples: ``id`` str, ``image`` uint8 ``[3, H, W]``, ``proxy`` uint8 ``[H, W]``,
    ``reference`` bool ``[H, W]``, ``tags`` float32 ``[C]``.
    """

    def __init__(
        self,
        root: PathLike,
        ids: Sequence[str],
        proxies: PathLike,
        references: PathLike | None = None,
        saliency: SaliencySource = None,
        reference_arguments: Mapping[str, Any] | None = None,
        tags_source: TagsSource = "auto",
    ) -> None:
        super().__init__(root, ids, proxies)
        self.references = None if references is None else Path(references)
        self.saliency = saliency
        self.reference_arguments = dict(reference_arguments or {})
        if saliency is not None and not callable(saliency):
            todo = [i for i in self.ids if self._cached(i) is None]
            raise_if_missing([Path(saliency) / f"{i}.png" for i in todo], "saliency maps", saliency)
        self.tags = read_tags(self.root, self.ids, tags_source)

    def _cached(self, image_id: str) -> Path | None:
        """The reference PNG of ``image_id`` when it exists."""
        if self.references is None or not (self.references / f"{image_id}.png").is_file():
            return None
        return self.references / f"{image_id}.png"

    def reference(self, image_id: str, image: np.ndarray) -> np.ndarray:
        """The reference mask bool ``[H, W]`` of ``image_id`` (read, or built and cached)."""
        cached = self._cached(image_id)
        if cached is not None:
            ref = read_reference(cached)
        else:
            ref = reference_mask(image, load_saliency(self.saliency, image_id), **self.reference_arguments)
            if self.references is not None:
                write_reference(self.references / f"{image_id}.png", ref)
        if ref.shape != image.shape[:2]:
            raise ValueError(f"reference mask of {image_id}: size {ref.shape} differs from its image")
        return ref

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_id = self.ids[index]
        image, proxy = self.read(image_id)
        return {
            "id": image_id,
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "proxy": torch.from_numpy(np.array(proxy)),  # a writable copy
            "reference": torch.from_numpy(self.reference(image_id, image)),
            "tags": torch.from_numpy(self.tags[image_id]),
        }


class ProxyMaskDataset(_ProxyFolder):
    """VOC images with the binary foreground of their proxy (labels 1..C), for scoring proxies.

    Samples: ``image`` float [3, S, S], ``mask`` long [S, S] (0/1), ``id`` (the VOC id), ``size``
    (original H, W), ``weight`` 1. No target.
    """

    def __init__(self, root: PathLike, ids: Sequence[str], proxies: PathLike, input_size: int = 256) -> None:
        super().__init__(root, ids, proxies)
        self.input_size = input_size

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_id = self.ids[index]
        image, labels = self.read(image_id)
        x, m = to_scorer_input(image, proxy_foreground(labels), self.input_size, flip=False)
        return {"image": x, "mask": m, "weight": torch.tensor(1.0), "id": image_id, "size": image.shape[:2]}


def agreement_labels(proxy_foreground: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Where the proxy and its reference agree, their common label; elsewhere ``IGNORE_INDEX``.

    proxy_foreground, reference: bool ``[H, W]``. Returns uint8 ``[H, W]``: 1 (both foreground),
    0 (both background) or 255 (they disagree).
    """
    if proxy_foreground.shape != reference.shape:
        raise ValueError(
            f"proxy foreground {proxy_foreground.shape} and reference {reference.shape} differ in size"
        )
    out = np.full(proxy_foreground.shape, IGNORE_INDEX, dtype=np.uint8)
    agree = proxy_foreground == reference
    out[agree] = proxy_foreground[agree]
    return out


class AgreementDataset(_ProxyFolder):
    """VOC images labelled where their proxy foreground and their reference mask agree.

    The training data of :class:`~sal_lightning.models.AgreementNet`. Samples: ``image`` float
    ``[3, S, S]`` (normalised), ``mask`` long ``[S, S]``: 1 foreground, 0 background, 255 where
    the proxy (labels 1..C) and the reference (``<references>/<id>.png``, > 127 salient)
    disagree (see :func:`agreement_labels`); ``weight`` 1, ``id``.

    Args:
        root, ids, proxies, references: VOC root, image ids and the two mask folders.
        input_size: side S of the square network input.
        hflip: random horizontal flips (training).
    """

    def __init__(
        self,
        root: PathLike,
        ids: Sequence[str],
        proxies: PathLike,
        references: PathLike,
        input_size: int = 96,
        hflip: bool = True,
    ) -> None:
        super().__init__(root, ids, proxies)
        self.references = Path(references)
        raise_if_missing([self.references / f"{i}.png" for i in self.ids], "reference masks", self.references)
        self.input_size = input_size
        self.hflip = hflip

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_id = self.ids[index]
        image, labels = self.read(image_id)
        reference = read_reference(self.references / f"{image_id}.png")
        if reference.shape != image.shape[:2]:
            raise ValueError(
                f"{image_id}: reference {reference.shape} and image {image.shape[:2]} differ in size"
            )
        target = agreement_labels(proxy_foreground(labels), reference)
        flip = self.hflip and bool(torch.rand(()) < 0.5)
        x, _ = to_scorer_input(image, target, self.input_size, flip)
        size = self.input_size
        m = cv2.resize(target, (size, size), interpolation=cv2.INTER_NEAREST_EXACT)
        if flip:
            m = m[:, ::-1]
        return {
            "image": x,
            "mask": torch.from_numpy(np.ascontiguousarray(m).astype(np.int64)),
            "weight": torch.tensor(1.0),
            "id": image_id,
        }
