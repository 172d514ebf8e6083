"""Mask-scorer samples: (image, binary mask) -> target quality, stored in a folder, and their datasets.

The scorer's training set is synthesised from the proxies (:mod:`sal_lightning.scoring`); this
module only carries it. A sample folder holds::

    samples.csv            sample_id, image_id, kind, target   (one row per sample)
    <sample_id>.jpg        the RGB image (uint8, any size)
    <sample_id>.png        the binary mask (grayscale, 0 / 255)

``image_id`` names the source VOC image (samples of one image stay on one side of the train / val
split), ``kind`` is free text (``positive``, ``negative``, ``degraded``, ``cutpaste`` ...).

Scorer batches: ``image`` float [B, 3, S, S] (normalised), ``mask`` long [B, S, S] (0/1), ``target``
float [B], ``weight`` float [B] (ones), ``id`` list[str] (sample ids; VOC ids when predicting).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from sal_lightning._atomic import atomic_write_text
from sal_lightning.data.io import (
    PathLike,
    check_image_id,
    check_unique_ids,
    read_gray_png,
    read_image,
    write_gray_png,
    write_image,
)
from sal_lightning.data.layout import raise_if_missing
from sal_lightning.data.voc import IMAGENET_MEAN, IMAGENET_STD
from sal_lightning.scoring.synthesis import ScorerSample

SAMPLE_INDEX = "samples.csv"


def write_scorer_samples(folder: PathLike, samples: Iterable[ScorerSample]) -> Path:
    """Write samples to ``folder`` (JPEG + PNG per sample, then ``samples.csv`` last); returns the folder.

    Samples already listed in an existing ``samples.csv`` are kept; a repeated ``sample_id`` is an error.
    """
    folder = Path(folder)
    rows = read_scorer_index(folder) if (folder / SAMPLE_INDEX).is_file() else []
    seen = {r["sample_id"] for r in rows}
    for sample in samples:
        check_image_id(sample.sample_id, "sample_id")
        if sample.sample_id in seen:
            raise ValueError(f"{folder}: duplicate sample_id {sample.sample_id!r}")
        if sample.mask.shape != sample.image.shape[:2]:
            raise ValueError(
                f"sample {sample.sample_id}: mask {sample.mask.shape} and image "
                f"{sample.image.shape[:2]} differ in size"
            )
        if not 0.0 <= float(sample.target) <= 1.0:
            raise ValueError(f"sample {sample.sample_id}: target must be in [0, 1], got {sample.target}")
        write_image(folder / f"{sample.sample_id}.jpg", sample.image, quality=95)
        write_gray_png(folder / f"{sample.sample_id}.png", np.where(sample.mask > 0, 255, 0).astype(np.uint8))
        rows.append(
            {
                "sample_id": sample.sample_id,
                "image_id": sample.image_id,
                "kind": sample.kind,
                "target": float(sample.target),
            }
        )
        seen.add(sample.sample_id)
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=["sample_id", "image_id", "kind", "target"], lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(folder / SAMPLE_INDEX, buffer.getvalue())
    return folder


def read_scorer_index(folder: PathLike) -> list[dict[str, Any]]:
    """Rows of ``<folder>/samples.csv``: sample_id, image_id, kind, target (float in [0, 1])."""
    path = Path(folder) / SAMPLE_INDEX
    if not path.is_file():
        raise FileNotFoundError(f"{path}: scorer sample index not found")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"sample_id", "target"} <= set(reader.fieldnames):
            raise ValueError(
                f"{path}: expected columns sample_id, image_id, kind, target; got {reader.fieldnames}"
            )
        rows: list[dict[str, Any]] = []
        for line, row in enumerate(reader, start=2):
            try:
                target = float(row["target"])
            except ValueError as error:
                raise ValueError(f"{path}:{line}: target must be a number, got {row['target']!r}") from error
            if not 0.0 <= target <= 1.0 or math.isnan(target):
                raise ValueError(f"{path}:{line}: target must be in [0, 1], got {target}")
            rows.append(
                {
                    "sample_id": row["sample_id"],
                    "image_id": row.get("image_id") or "",
                    "kind": row.get("kind") or "",
                    "target": target,
                }
            )
    check_unique_ids([r["sample_id"] for r in rows], str(path))
    return rows


def to_scorer_input(
    image: np.ndarray, mask: np.ndarray, size: int, flip: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize to size x size (image bilinear, mask nearest), optionally flip, normalise.

    image uint8 [H, W, 3], mask [H, W] (nonzero = foreground) -> (float [3, S, S], long [S, S] 0/1).
    """
    x = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    m = cv2.resize((mask > 0).astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST_EXACT)
    if flip:
        x, m = x[:, ::-1], m[:, ::-1]
    mean, std = np.asarray(IMAGENET_MEAN, np.float32), np.asarray(IMAGENET_STD, np.float32)
    normalised = np.ascontiguousarray(((x - mean) / std).transpose(2, 0, 1))
    return torch.from_numpy(normalised), torch.from_numpy(m.astype(np.int64))


class ScorerSampleDataset(Dataset[dict[str, Any]]):
    """Scorer samples from a folder (see the module docstring) or an in-memory list.

    Args:
        samples: a sample folder, or a list of :class:`ScorerSample`.
        input_size: side S of the square network input (256 in the paper).
        hflip: random horizontal flip (training).
        sample_ids: keep only these sample ids (a train / val subset), in this order.
    """

    def __init__(
        self,
        samples: PathLike | Sequence[ScorerSample],
        input_size: int = 256,
        hflip: bool = False,
        sample_ids: Sequence[str] | None = None,
    ) -> None:
        if input_size < 1:
            raise ValueError(f"input_size must be >= 1, got {input_size}")
        self.input_size = input_size
        self.hflip = hflip
        self.folder: Path | None = None
        self.memory: dict[str, ScorerSample] = {}
        if isinstance(samples, (str, Path)) or hasattr(samples, "__fspath__"):
            self.folder = Path(samples)  # type: ignore[arg-type]
            self.rows = read_scorer_index(self.folder)
            files = [self.folder / f"{r['sample_id']}.{ext}" for r in self.rows for ext in ("jpg", "png")]
            raise_if_missing(files, "sample files", self.folder)
        else:
            items = list(samples)  # type: ignore[arg-type]
            check_unique_ids([s.sample_id for s in items], "samples")
            self.memory = {s.sample_id: s for s in items}
            self.rows = [
                {"sample_id": s.sample_id, "image_id": s.image_id, "kind": s.kind, "target": float(s.target)}
                for s in items
            ]
        if sample_ids is not None:
            by_id = {r["sample_id"]: r for r in self.rows}
            absent = [i for i in sample_ids if i not in by_id]
            if absent:
                raise ValueError(
                    f"sample_ids: {len(absent)} ids are not among the samples, e.g. {absent[:5]}"
                )
            self.rows = [by_id[i] for i in sample_ids]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.rows[index]
        sample_id = row["sample_id"]
        if self.folder is not None:
            image = read_image(self.folder / f"{sample_id}.jpg")
            mask = read_gray_png(self.folder / f"{sample_id}.png") > 127
            if mask.shape != image.shape[:2]:
                raise ValueError(f"{self.folder / sample_id}.png: size {mask.shape} differs from its image")
        else:
            image, mask = self.memory[sample_id].image, self.memory[sample_id].mask
        flip = self.hflip and bool(torch.rand(()) < 0.5)
        x, m = to_scorer_input(image, mask, self.input_size, flip)
        return {
            "image": x,
            "mask": m,
            "target": torch.tensor(row["target"], dtype=torch.float32),
            "weight": torch.tensor(1.0),
            "id": sample_id,
        }


def split_by_image(
    rows: Sequence[dict[str, Any]], val_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """Split sample ids into (train, val) by source ``image_id`` (all samples of an image on one side)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    groups = sorted({r["image_id"] or r["sample_id"] for r in rows})
    order = np.random.default_rng(seed).permutation(len(groups))
    n_val = round(val_fraction * len(groups))
    val_groups = {groups[k] for k in order[:n_val]}
    train = [r["sample_id"] for r in rows if (r["image_id"] or r["sample_id"]) not in val_groups]
    val = [r["sample_id"] for r in rows if (r["image_id"] or r["sample_id"]) in val_groups]
    return train, val
