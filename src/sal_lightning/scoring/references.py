"""Reference masks H (SAL-Net Sec. III-B1): binary salient-object masks built from saliency.

The coarse score compares each proxy annotation's foreground with a class-agnostic reference mask.
The paper takes DSS saliency maps, refines them with a dense CRF and finds several objects by
iterative erasing. Here the saliency comes from one of three sources (:data:`SaliencySource`):

- a folder of grayscale PNGs ``<folder>/<id>.png`` (0..255; what users of DSS, PoolNet and similar
  detectors have),
- any callable ``image uint8 [H, W, 3] -> saliency float [H, W] in [0, 1]``,
- ``None``: the built-in classical method :func:`~sal_lightning.scoring.saliency.classical_saliency`
  (``"ft-border"`` unless :attr:`ReferenceConfig.method` says otherwise).

A map becomes a mask by thresholding at :attr:`ReferenceConfig.threshold` and refining with a
two-label dense CRF whose unary is the saliency stretched so that the threshold maps to
probability 0.5 (:func:`saliency_probabilities`); without CRF the mask is ``saliency >= threshold``.
With a callable (built-in included) and ``max_objects > 1``, each found object is erased (filled
with the mean colour of the rest of the image) and the callable runs again; new regions covering at
least ``min_object_fraction`` of the image are added (:func:`reference_mask`).

Masks are written as grayscale PNGs (0 = background, 255 = salient) by :func:`build_references`,
which resumes (ids whose PNG exists are skipped) and runs images in worker processes.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import pickle
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from sal_lightning.data.io import read_gray_png, read_image, write_gray_png
from sal_lightning.data.layout import raise_if_missing, resolve_voc_root
from sal_lightning.scoring.saliency import SaliencyFn, SaliencyMethod, check_image, classical_saliency

PathLike = str | os.PathLike[str]
SaliencySource = PathLike | SaliencyFn | None
Threshold = float | Literal["adaptive", "otsu"]


@dataclass(frozen=True)
class ReferenceConfig:
    """How saliency becomes a reference mask.

    Attributes:
        threshold: a value in (0, 1), ``"adaptive"`` (twice the mean saliency, Achanta et al.,
            clipped to [0.1, 0.9]) or ``"otsu"``. ``None`` picks 0.5 for maps given by a folder or a
            callable and ``"adaptive"`` for the built-in method.
        crf: refine the thresholded map with a two-label dense CRF (needs the ``crf`` extra).
        crf_params: keyword overrides for :class:`sal_lightning.postprocess.crf.CRFParams`.
        max_objects: iterative-erasing rounds for callable sources (1 = a single pass).
        min_object_fraction: smallest new region (fraction of the image) that counts as an object.
        method: the built-in saliency method used when the source is ``None``.
    """

    threshold: Threshold | None = None
    crf: bool = True
    crf_params: dict[str, float] = field(default_factory=dict)
    max_objects: int = 3
    min_object_fraction: float = 0.01
    method: SaliencyMethod = "ft-border"

    def __post_init__(self) -> None:
        t = self.threshold
        if not (
            t is None or t in ("adaptive", "otsu") or (isinstance(t, int | float) and 0.0 < float(t) < 1.0)
        ):
            raise ValueError(f"threshold: expected a number in (0, 1), 'adaptive', 'otsu' or None, got {t!r}")
        if self.max_objects < 1:
            raise ValueError(f"max_objects: expected at least 1, got {self.max_objects}")
        if not 0.0 <= self.min_object_fraction < 1.0:
            raise ValueError(
                f"min_object_fraction: expected a fraction in [0, 1), got {self.min_object_fraction}"
            )


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
    from sal_lightning.postprocess.crf import CRFParams, binary_crf

    writable = np.require(image, requirements=["C", "W"])  # pydensecrf rejects read-only buffers
    fg = binary_crf(writable, saliency_probabilities(sal, t)[1], CRFParams(**(crf_params or {})))
    return np.asarray(fg > 0.5)


def _erase(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``image`` with ``region`` filled by the mean colour of the pixels outside it."""
    out = image.copy()
    rest = ~region
    colour = image[rest].mean(0) if rest.any() else image.reshape(-1, 3).mean(0)
    out[region] = np.round(colour).astype(np.uint8)
    return out


def reference_mask(
    image: np.ndarray, saliency: np.ndarray | SaliencyFn | None, config: ReferenceConfig | None = None
) -> np.ndarray:
    """The reference mask H of one image.

    image: uint8 ``[H, W, 3]`` RGB. ``saliency``: a map ``[H, W]`` (float in [0, 1] or uint8), a
    callable image -> map (iterative erasing up to ``config.max_objects`` rounds), or ``None`` for
    the built-in method. Returns bool ``[H, W]``.
    """
    config = config or ReferenceConfig()
    image = check_image(image)
    if saliency is None:
        saliency = functools.partial(classical_saliency, method=config.method)
        default_threshold: Threshold = "adaptive"
    else:
        default_threshold = 0.5
    threshold = default_threshold if config.threshold is None else config.threshold
    refine = functools.partial(
        refine_saliency, threshold=threshold, crf=config.crf, crf_params=config.crf_params
    )
    if not callable(saliency):
        return refine(image, saliency)
    found = np.zeros(image.shape[:2], dtype=bool)
    current = image
    min_pixels = config.min_object_fraction * found.size
    for _ in range(config.max_objects):
        new = refine(current, saliency(current)) & ~found
        if new.sum() < max(min_pixels, 1):
            break
        found |= new
        if found.all():
            break
        current = _erase(image, found)
    return found


def read_reference(path: PathLike) -> np.ndarray:
    """Read a reference-mask PNG as bool ``[H, W]`` (pixels > 127 are salient)."""
    return read_gray_png(path) > 127


def write_reference(path: PathLike, mask: np.ndarray) -> None:
    """Write a bool ``[H, W]`` reference mask as a 0/255 grayscale PNG (atomically)."""
    if mask.ndim != 2:
        raise ValueError(f"{path}: reference mask must be [H, W], got shape {mask.shape}")
    write_gray_png(path, np.where(mask, 255, 0).astype(np.uint8))


def _check_sources(images: Path, ids: Sequence[str], saliency: SaliencySource) -> None:
    raise_if_missing([images / f"{i}.jpg" for i in ids], "images", images)
    if saliency is not None and not callable(saliency):
        folder = Path(saliency)
        if not folder.is_dir():
            raise FileNotFoundError(f"saliency: folder {folder} not found")
        raise_if_missing([folder / f"{i}.png" for i in ids], "saliency maps", folder)


def load_saliency(saliency: SaliencySource, image_id: str) -> np.ndarray | SaliencyFn | None:
    """The saliency of ``image_id`` from a source: the folder's ``<id>.png`` map, else the source itself."""
    if saliency is not None and not callable(saliency):
        return read_gray_png(Path(saliency) / f"{image_id}.png")
    return saliency


def _reference_job(
    image_id: str, images: str, out_dir: str, saliency: SaliencySource, config: ReferenceConfig
) -> str:
    image = read_image(Path(images) / f"{image_id}.jpg")
    mask = reference_mask(image, load_saliency(saliency, image_id), config)
    write_reference(Path(out_dir) / f"{image_id}.png", mask)
    return image_id


def _picklable(value: object) -> bool:
    try:
        pickle.dumps(value)
    except (pickle.PicklingError, TypeError, AttributeError):
        return False
    return True


def build_references(
    root: PathLike,
    ids: Sequence[str],
    out_dir: PathLike,
    saliency: SaliencySource = None,
    config: ReferenceConfig | None = None,
    workers: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write the reference mask of every id to ``<out_dir>/<id>.png``; returns ``out_dir``.

    ``root`` is a VOC root (images ``JPEGImages/<id>.jpg``). ``saliency`` is a folder of
    ``<id>.png`` maps, a callable or ``None`` (built-in). Existing masks are kept unless
    ``overwrite`` (reruns resume). ``workers > 0`` runs that many processes (the callable must then
    be picklable: a module-level function or a ``functools.partial`` of one).
    """
    config = config or ReferenceConfig()
    images, out = resolve_voc_root(root) / "JPEGImages", Path(out_dir)
    _check_sources(images, ids, saliency)
    todo = [i for i in ids if overwrite or not (out / f"{i}.png").is_file()]
    out.mkdir(parents=True, exist_ok=True)
    if saliency is not None and callable(saliency) and workers > 0 and not _picklable(saliency):
        raise ValueError("saliency: a callable used with workers > 0 must be picklable (use workers=0)")
    job = functools.partial(
        _reference_job, images=str(images), out_dir=str(out), saliency=saliency, config=config
    )
    bar = tqdm(total=len(todo), desc="references", unit="img", disable=not progress)
    if workers > 0 and len(todo) > 1:
        context = multiprocessing.get_context("spawn")  # safe beside CUDA / DDP, like the CRF pool
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for _ in pool.map(job, todo, chunksize=max(1, len(todo) // (8 * workers))):
                bar.update()
    else:
        for image_id in todo:
            job(image_id)
            bar.update()
    bar.close()
    return out


def reference_config_dict(config: ReferenceConfig) -> dict[str, object]:
    """A JSON-friendly view of ``config`` (for score sidecars and manifests)."""
    return asdict(config)
