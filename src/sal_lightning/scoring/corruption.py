"""Proxy annotations of known quality: ground-truth masks corrupted on purpose.

To check that a scorer ranks proxies by quality one needs proxies whose quality is known.
:func:`corrupt_labels` degrades a ground-truth label map with one of:

- ``"none"``: the ground truth itself;
- ``"erode"`` / ``"dilate"``: every object shrunk / grown by a disk of radius
  ``strength * sqrt(foreground area)``;
- ``"shift"``: the whole label map moved by ``strength`` times the image size in a random
  direction (wrapped content is replaced by background);
- ``"drop"``: random objects (connected components) removed, each with probability ``strength``;
- ``"blob"``: a false-positive ellipse of a tagged class, of area ``strength`` times the image;
- ``"relabel"``: the ``strength`` fraction of foreground pixels (a half-plane cut) given a class
  that is *not* among the image's tags (lowers CD, not AC).

Void pixels (255) become background first.
:func:`sal_lightning.stages.corrupt.make_corrupted_proxies` writes one corrupted proxy per id of a
VOC root (op and strength drawn from :data:`STRENGTHS` with a seeded generator), so tests, docs and
benchmarks can compare scores with the true quality.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage

from sal_lightning.scoring.synthesis import degrade_mask

Corruption = Literal["none", "erode", "dilate", "shift", "drop", "blob", "relabel"]
CORRUPTIONS: tuple[Corruption, ...] = ("none", "erode", "dilate", "shift", "drop", "blob", "relabel")
STRENGTHS: dict[str, tuple[float, float]] = {
    "none": (0.0, 0.0),
    "erode": (0.03, 0.3),
    "dilate": (0.03, 0.5),
    "shift": (0.05, 0.4),
    "drop": (0.3, 1.0),
    "blob": (0.05, 0.3),
    "relabel": (0.1, 0.9),
}
"""Range of ``strength`` drawn per corruption by ``make_corrupted_proxies``."""


def _majority_fill(labels: np.ndarray, region: np.ndarray, fallback: int) -> np.ndarray:
    """Label every pixel of ``region`` with its nearest foreground label (``fallback`` without one)."""
    fg = labels > 0
    if not fg.any():
        return np.where(region, fallback, labels).astype(np.uint8)
    _, (iy, ix) = ndimage.distance_transform_edt(~fg, return_indices=True)
    nearest = labels[iy, ix]
    return np.where(region & ~fg, nearest, labels).astype(np.uint8)


def corrupt_labels(
    labels: np.ndarray,
    op: Corruption,
    strength: float,
    rng: np.random.Generator,
    num_foreground: int = 20,
    ignore_index: int = 255,
) -> np.ndarray:
    """A corrupted copy of a ground-truth label map uint8 ``[H, W]`` (module docstring); uint8 ``[H, W]``.

    Labels are 0 (background), ``1..num_foreground`` (C: 20 for VOC, 80 for COCO) and
    ``ignore_index`` (void).
    """
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"labels: expected uint8 [H, W], got {labels.dtype} {labels.shape}")
    out = np.where(labels == ignore_index, 0, labels).astype(np.uint8)
    fg = out > 0
    height, width = out.shape
    tagged = sorted({int(v) for v in np.unique(out) if v > 0})
    if op == "none":
        return out
    if op == "erode":
        return np.where(degrade_mask(fg, "erode", strength, rng), out, 0).astype(np.uint8)
    if op == "dilate":
        grown = degrade_mask(fg, "dilate", strength, rng)
        return _majority_fill(out, grown, tagged[0] if tagged else 1)
    if op == "shift":
        angle = rng.uniform(0, 2 * np.pi)
        dy, dx = round(strength * height * np.sin(angle)), round(strength * width * np.cos(angle))
        shifted = np.zeros_like(out)
        ys, xs = slice(max(dy, 0), height + min(dy, 0)), slice(max(dx, 0), width + min(dx, 0))
        src_y, src_x = slice(max(-dy, 0), height + min(-dy, 0)), slice(max(-dx, 0), width + min(-dx, 0))
        shifted[ys, xs] = out[src_y, src_x]
        return shifted
    if op == "drop":
        comps, n = ndimage.label(fg)
        keep = rng.uniform(size=n + 1) >= strength
        keep[0] = False
        return np.where(keep[comps], out, 0).astype(np.uint8)
    if op == "blob":
        cls = tagged[int(rng.integers(len(tagged)))] if tagged else int(rng.integers(1, num_foreground + 1))
        area = strength * height * width
        ry = max(1.0, np.sqrt(area / np.pi) * rng.uniform(0.7, 1.4))
        rx = max(1.0, area / (np.pi * ry))
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        yy, xx = np.mgrid[:height, :width]
        blob = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        return np.where(blob & ~fg, cls, out).astype(np.uint8)
    if op == "relabel":
        untagged = [c for c in range(1, num_foreground + 1) if c not in tagged]
        cut = degrade_mask(fg, "erase", strength, rng)  # keeps 1 - strength of the foreground
        return np.where(fg & ~cut, untagged[int(rng.integers(len(untagged)))], out).astype(np.uint8)
    raise ValueError(f"op: expected one of {CORRUPTIONS}, got {op!r}")
