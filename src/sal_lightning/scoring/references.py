"""Reference masks H (SAL-Net Sec. III-B1): binary salient-object masks built from saliency.

The coarse score compares each proxy annotation's foreground with a class-agnostic reference mask.
The paper takes DSS saliency maps, refines them with a dense CRF and finds several objects by
iterative erasing. :func:`reference_mask` takes the saliency of one image as

- a map ``[H, W]`` (float in [0, 1] or uint8 0..255; the PNGs of DSS, PoolNet and similar detectors),
- any callable ``image uint8 [H, W, 3] -> saliency float [H, W] in [0, 1]``,
- ``None``: the built-in classical method :func:`~sal_lightning.scoring.saliency.classical_saliency`
  (``"ft-border"`` unless ``method`` says otherwise).

A map becomes a mask by thresholding at ``threshold`` and refining with a
two-label dense CRF whose unary is the saliency stretched so that the threshold maps to
probability 0.5 (:func:`saliency_probabilities`); without CRF the mask is ``saliency >= threshold``.
With a callable (built-in included) and ``max_objects > 1``, each found object is erased (filled
with the mean colour of the rest of the image) and the callable runs again; new regions covering at
least ``min_object_fraction`` of the image are added (:func:`reference_mask`).

:func:`sal_lightning.stages.references.build_references` writes the masks of a whole split as
grayscale PNGs (0 = background, 255 = salient), from a folder of saliency PNGs, a callable or the
built-in method, in a pool of worker processes.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import numpy as np

from sal_lightning.scoring.saliency import SaliencyFn, SaliencyMethod, check_image, classical_saliency

Threshold = float | Literal["adaptive", "otsu"]


def check_mask_settings(threshold: Any, max_objects: Any, min_object_fraction: Any) -> None:
    """Raise ``ValueError`` naming the setting unless ``threshold`` is ``None``, ``"adaptive"``,
    ``"otsu"`` or a number in (0, 1), ``max_objects`` an integer ``>= 1`` and
    ``min_object_fraction`` a fraction in [0, 1)."""
    t = threshold
    if not (t is None or t in ("adaptive", "otsu") or (isinstance(t, int | float) and 0.0 < float(t) < 1.0)):
        raise ValueError(f"threshold: expected a number in (0, 1), 'adaptive', 'otsu' or None, got {t!r}")
    if isinstance(max_objects, bool) or not isinstance(max_objects, int) or max_objects < 1:
        raise ValueError(f"max_objects: expected at least 1, got {max_objects}")
    if not 0.0 <= min_object_fraction < 1.0:
        raise ValueError(f"min_object_fraction: expected a fraction in [0, 1), got {min_object_fraction}")


def check_saliency(
    saliency: object, shape: tuple[int, ...] | None = None, name: str = "saliency"
) -> np.ndarray:
    """Return ``saliency`` as float32 ``[H, W]`` in ``[0, 1]``; uint8 maps are divided by 255.

    Raises ``ValueError`` for other ranks, a size different from ``shape`` or values outside [0, 1].
    """
    if not isinstance(saliency, np.ndarray) or saliency.ndim != 2:
        got = f"shape {saliency.shape}" if isinstance(saliency, np.ndarray) else type(saliency).__name__
        raise ValueError(f"{name}: expected a 2-D saliency map [H, W], got {got}")
    if shape is not None and saliency.shape != tuple(shape):
        raise ValueError(f"{name}: expected size {tuple(shape)} (the image's), got {saliency.shape}")
    sal = saliency.astype(np.float32) / 255.0 if saliency.dtype == np.uint8 else saliency.astype(np.float32)
    if sal.size and (not np.isfinite(sal).all() or sal.min() < 0.0 or sal.max() > 1.0):
        raise ValueError(f"{name}: expected values in [0, 1] (or uint8 0..255), got {sal.min()}..{sal.max()}")
    return sal


def resolve_threshold(saliency: np.ndarray, threshold: Threshold) -> float:
    """The numeric threshold for a float ``[H, W]`` saliency map in ``[0, 1]``."""
    if threshold == "adaptive":
        return float(np.clip(2.0 * saliency.mean(), 0.1, 0.9))
    if threshold == "otsu":
        hist = np.bincount(np.clip(saliency * 255, 0, 255).astype(np.int64).ravel(), minlength=256)
        w0 = np.cumsum(hist)
        w1 = w0[-1] - w0
        mu = np.cumsum(hist * np.arange(256))
        m0 = mu / np.maximum(w0, 1)
        m1 = (mu[-1] - mu) / np.maximum(w1, 1)
        between = w0 * w1 * (m0 - m1) ** 2
        best = np.flatnonzero(between >= between.max() * (1 - 1e-9))  # a plateau: take its middle
        k = int(best[len(best) // 2])  # class 0 = bins <= k, so foreground starts at bin k + 1
        return float(np.clip((k + 1) / 255.0, 0.01, 0.99))
    return float(threshold)


def saliency_probabilities(saliency: np.ndarray, threshold: float) -> np.ndarray:
    """Two-label probabilities ``[2, H, W]`` (background, salient) from saliency ``[H, W]`` in [0, 1].

    The map is stretched piecewise linearly so that ``threshold`` maps to 0.5 (0 -> 0, 1 -> 1), then
    clipped to [0.02, 0.98] so the CRF can still overturn confident pixels.
    """
    t = float(np.clip(threshold, 1e-3, 1 - 1e-3))
    p = np.where(saliency < t, 0.5 * saliency / t, 0.5 + 0.5 * (saliency - t) / (1.0 - t))
    p = np.clip(p, 0.02, 0.98).astype(np.float32)
    return np.ascontiguousarray(np.stack([1.0 - p, p]))


def refine_saliency(
    image: np.ndarray,
    saliency: np.ndarray,
    threshold: Threshold = 0.5,
    crf: bool = True,
    crf_params: dict | None = None,
) -> np.ndarray:
    """One salient mask: threshold ``saliency`` and (``crf=True``) refine it with a two-label dense CRF.

    image: uint8 ``[H, W, 3]``; saliency: ``[H, W]`` in [0, 1] (or uint8). Returns bool ``[H, W]``.
    """
    image = check_image(image)
    sal = check_saliency(saliency, image.shape[:2])
    t = resolve_threshold(sal, threshold)
    if not crf:
        return sal >= t
    from sal_lightning.postprocess.crf import CRFSettings, binary_crf

    writable = np.require(image, requirements=["C", "W"])  # pydensecrf rejects read-only buffers
    fg = binary_crf(writable, saliency_probabilities(sal, t)[1], CRFSettings(**(crf_params or {})))
    return np.asarray(fg > 0.5)


def _erase(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``image`` with ``region`` filled by the mean colour of the pixels outside it."""
    out = image.copy()
    rest = ~region
    colour = image[rest].mean(0) if rest.any() else image.reshape(-1, 3).mean(0)
    out[region] = np.round(colour).astype(np.uint8)
    return out


def reference_mask(
    image: np.ndarray,
    saliency: np.ndarray | SaliencyFn | None,
    *,
    threshold: Threshold | None = None,
    crf: bool = True,
    crf_params: dict[str, float] | None = None,
    max_objects: int = 3,
    min_object_fraction: float = 0.01,
    method: SaliencyMethod = "ft-border",
) -> np.ndarray:
    """The reference mask H of one image.

    Args:
        image: uint8 ``[H, W, 3]`` RGB.
        saliency: a map ``[H, W]`` (float in [0, 1] or uint8), a callable image -> map (iterative
            erasing up to ``max_objects`` rounds), or ``None`` for the built-in method.
        threshold: a value in (0, 1), ``"adaptive"`` (twice the mean saliency, Achanta et al.,
            clipped to [0.1, 0.9]) or ``"otsu"``; ``None``: 0.5 for a map or a callable,
            ``"adaptive"`` for the built-in method.
        crf: refine the thresholded map with a two-label dense CRF (needs the ``crf`` extra).
        crf_params: keyword overrides for :class:`sal_lightning.postprocess.crf.CRFSettings`.
        max_objects: iterative-erasing rounds for callable sources (1 = a single pass).
        min_object_fraction: smallest new region (fraction of the image) that counts as an object.
        method: the built-in saliency method used when ``saliency`` is ``None``.

    Returns bool ``[H, W]``.
    """
    check_mask_settings(threshold, max_objects, min_object_fraction)
    image = check_image(image)
    if saliency is None:
        saliency = functools.partial(classical_saliency, method=method)
        default_threshold: Threshold = "adaptive"
    else:
        default_threshold = 0.5
    chosen = default_threshold if threshold is None else threshold
    refine = functools.partial(refine_saliency, threshold=chosen, crf=crf, crf_params=crf_params)
    if not callable(saliency):
        return refine(image, saliency)
    found = np.zeros(image.shape[:2], dtype=bool)
    current = image
    min_pixels = min_object_fraction * found.size
    for _ in range(max_objects):
        new = refine(current, saliency(current)) & ~found
        if new.sum() < max(min_pixels, 1):
            break
        found |= new
        if found.all():
            break
        current = _erase(image, found)
    return found
