"""Coarse scores of whole datasets (SAL-Net Eq. 3-5), without Lightning.

:class:`CoarseScoringDataset` yields, per image id, the image, its proxy annotation, its reference
mask H and its tags. The reference is read from ``reference_dir`` when its PNG exists; otherwise it
is built from the saliency source (:mod:`sal_lightning.scoring.references`: binarisation plus dense
CRF) *inside the dataset*, so with DataLoader workers the image decoding and the CRFs run in worker
processes; built references are written to ``reference_dir`` (when given) for later runs.

:func:`score_samples` turns a list of such samples into AC, CD and SC, batching images of equal
size (VOC images come in a handful of sizes) on any device. The Lightning predict loop that shards
a dataset across DDP ranks and writes ``scores.csv`` is :func:`sal_lightning.scoring.stages.score_coarse`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from sal_lightning.data.io import check_unique_ids, read_image, read_label_png
from sal_lightning.data.layout import (
    TagsSource,
    find_gt_mask,
    raise_if_missing,
    resolve_tags,
    resolve_voc_root,
)
from sal_lightning.data.voc import tags_from_labels
from sal_lightning.scoring.metrics import Definition, boundary_accuracy, class_distribution, coarse_score
from sal_lightning.scoring.objectness import mask_objectness
from sal_lightning.scoring.references import (
    ReferenceConfig,
    SaliencySource,
    load_saliency,
    read_reference,
    reference_mask,
    write_reference,
)

PathLike = str | os.PathLike[str]
ObjectnessFn = Callable[[Tensor, Tensor], Tensor]
"""``F(image uint8 [B, 3, H, W], mask [B, H, W]) -> [B]`` in (0, 1], e.g. :func:`mask_objectness`."""


@dataclass(frozen=True)
class CoarseConfig:
    """Settings of Eq. 3.

    Attributes:
        b: exponent of the objectness term (paper: 0.1).
        definition: ``"paper"`` (Eq. 3 as printed) or ``"fmeasure"`` (standard F1).
        objectness: ``F(B)``; the default edge-alignment :func:`mask_objectness`, ``None`` for F = 1.
            Must be picklable (a module-level function) to run under DDP.
    """

    b: float = 0.1
    definition: Definition = "paper"
    objectness: ObjectnessFn | None = field(default=mask_objectness)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view (the objectness function by qualified name)."""
        f = self.objectness
        name = None if f is None else f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', repr(f))}"
        return {"b": self.b, "definition": self.definition, "objectness": name}


def accuracy_batch(image: Tensor, reference: Tensor, mask: Tensor, config: CoarseConfig) -> Tensor:
    """AC (Eq. 3) of same-sized masks.

    image: uint8/float ``[B, 3, H, W]``; reference: bool ``[B, H, W]``; mask: ``[B, H, W]`` label
    maps or bool foregrounds. Returns float32 ``[B]``.
    """
    f = None if config.objectness is None else config.objectness(image, mask)
    return boundary_accuracy(reference, mask, objectness=f, b=config.b, definition=config.definition)


def boundary_accuracy_np(
    image: np.ndarray, reference: np.ndarray, mask: np.ndarray, config: CoarseConfig | None = None
) -> float:
    """AC of one mask from numpy arrays: image uint8 ``[H, W, 3]``, reference and mask ``[H, W]``."""
    x = torch.tensor(image).permute(2, 0, 1)[None]  # torch.tensor copies (inputs may be read-only)
    ref = torch.tensor(reference, dtype=torch.bool)[None]
    m = torch.tensor(mask)[None]
    return float(accuracy_batch(x, ref, m, config or CoarseConfig())[0])


def score_samples(samples: Sequence[dict[str, Any]], config: CoarseConfig) -> dict[str, Tensor | list[str]]:
    """AC, CD and SC of a list of samples as :class:`CoarseScoringDataset` yields them.

    Each sample: ``id`` str, ``image`` uint8 ``[3, H, W]``, ``proxy`` uint8 ``[H, W]``,
    ``reference`` bool ``[H, W]``, ``tags`` float ``[20]`` (sizes may differ between samples).
    Returns ``{"id": [...], "ac": [N], "cd": [N], "sc": [N]}`` (float32, on the samples' device),
    in input order.
    """
    n = len(samples)
    device = samples[0]["image"].device if n else torch.device("cpu")
    ac = torch.zeros(n, device=device)
    cd = torch.zeros(n, device=device)
    groups: dict[tuple[int, int], list[int]] = {}
    for k, sample in enumerate(samples):
        groups.setdefault(tuple(sample["proxy"].shape), []).append(k)
    for members in groups.values():
        image = torch.stack([samples[k]["image"] for k in members])
        proxy = torch.stack([samples[k]["proxy"] for k in members]).long()
        reference = torch.stack([samples[k]["reference"] for k in members])
        tags = torch.stack([samples[k]["tags"] for k in members])
        index = torch.as_tensor(members, device=device)
        ac[index] = accuracy_batch(image, reference, proxy, config).to(device)
        cd[index] = class_distribution(proxy, tags).to(device)
    return {"id": [s["id"] for s in samples], "ac": ac, "cd": cd, "sc": coarse_score(ac, cd)}


def read_tags(root: Path, ids: Sequence[str], source: TagsSource = "auto") -> dict[str, np.ndarray]:
    """Tags float32 ``[20]`` of every id: XML / cls_labels / SBD as the data layer resolves them,
    else from the ground-truth mask; ``FileNotFoundError`` when an id has neither."""
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
            value = tags_from_labels(read_label_png(gt))
        out[image_id] = np.asarray(value, dtype=np.float32)
    return out


class CoarseScoringDataset(Dataset[dict[str, Any]]):
    """Per id: image, proxy, reference mask and tags, for :func:`score_samples`.

    Args:
        root: VOC root (``JPEGImages/<id>.jpg``, tags from ``Annotations/`` and the other sources
            of :func:`sal_lightning.data.layout.resolve_tags`, or ground-truth masks).
        ids: image ids to score.
        proxy_dir: folder of proxy annotations ``<id>.png`` (labels 0..20, 255 = ignore).
        reference_dir: folder of reference masks ``<id>.png``; missing ones are built from
            ``saliency`` and written there. ``None``: always built, never written.
        saliency: folder of saliency PNGs, a callable, or ``None`` for the built-in method.
        reference_config: binarisation, CRF and iterative erasing settings.
        tags_source: see :func:`sal_lightning.data.layout.resolve_tags`.

    Samples: ``id`` str, ``image`` uint8 ``[3, H, W]``, ``proxy`` uint8 ``[H, W]``,
    ``reference`` bool ``[H, W]``, ``tags`` float32 ``[20]``.
    """

    def __init__(
        self,
        root: PathLike,
        ids: Sequence[str],
        proxy_dir: PathLike,
        reference_dir: PathLike | None = None,
        saliency: SaliencySource = None,
        reference_config: ReferenceConfig | None = None,
        tags_source: TagsSource = "auto",
    ) -> None:
        self.root = resolve_voc_root(root)
        self.ids = check_unique_ids(list(ids), "ids")
        self.proxy_dir = Path(proxy_dir)
        self.reference_dir = None if reference_dir is None else Path(reference_dir)
        self.saliency = saliency
        self.reference_config = reference_config or ReferenceConfig()
        raise_if_missing([self.root / "JPEGImages" / f"{i}.jpg" for i in self.ids], "images", self.root)
        raise_if_missing([self.proxy_dir / f"{i}.png" for i in self.ids], "proxy annotations", self.proxy_dir)
        if saliency is not None and not callable(saliency):
            todo = [i for i in self.ids if self.reference_dir is None or not self._ref_path(i).is_file()]
            raise_if_missing([Path(saliency) / f"{i}.png" for i in todo], "saliency maps", saliency)
        self.tags = read_tags(self.root, self.ids, tags_source)

    def _ref_path(self, image_id: str) -> Path:
        assert self.reference_dir is not None
        return self.reference_dir / f"{image_id}.png"

    def __len__(self) -> int:
        return len(self.ids)

    def reference(self, image_id: str, image: np.ndarray) -> np.ndarray:
        """The reference mask bool ``[H, W]`` of ``image_id`` (read, or built and cached)."""
        if self.reference_dir is not None and self._ref_path(image_id).is_file():
            ref = read_reference(self._ref_path(image_id))
        else:
            ref = reference_mask(image, load_saliency(self.saliency, image_id), self.reference_config)
            if self.reference_dir is not None:
                write_reference(self._ref_path(image_id), ref)
        if ref.shape != image.shape[:2]:
            raise ValueError(f"reference mask of {image_id}: size {ref.shape} differs from its image")
        return ref

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_id = self.ids[index]
        image = read_image(self.root / "JPEGImages" / f"{image_id}.jpg")
        proxy = read_label_png(self.proxy_dir / f"{image_id}.png")
        if proxy.shape != image.shape[:2]:
            raise ValueError(
                f"{self.proxy_dir / image_id}.png: size {proxy.shape} differs from the image's "
                f"{image.shape[:2]}"
            )
        return {
            "id": image_id,
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "proxy": torch.from_numpy(np.array(proxy)),  # a writable copy
            "reference": torch.from_numpy(self.reference(image_id, image)),
            "tags": torch.from_numpy(self.tags[image_id]),
        }


def list_collate(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """DataLoader collate that keeps variable-size samples as a list."""
    return samples
