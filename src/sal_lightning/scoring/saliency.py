"""Classical, dependency-light saliency for reference masks when no detector's maps are given.

SAL-Net builds its reference masks from a deep salient-object detector (DSS). No such model ships
with this library, so users normally bring their own maps (a folder of grayscale PNGs, or any
callable image -> saliency). When neither is given, :func:`classical_saliency` is the fallback:

- ``"ft-border"`` (default): the colour-contrast saliency of the *frequency-tuned* method
  (Achanta et al., CVPR 2009: Euclidean distance in CIE Lab between a Gaussian-blurred image and a
  background colour), with the background colour taken from the image border instead of the whole
  image mean (the *boundary prior* of Wei et al., ECCV 2012: objects rarely touch all four sides).
  The saliency of a pixel is its Lab distance to the *nearest* of the four border-side mean
  colours, so a background that changes from top to bottom still reads as background.
- ``"ft"``: the original frequency-tuned saliency (distance to the global mean colour).

All return float32 ``[H, W]`` maps scaled to ``[0, 1]`` (min-max per image; a flat image gives 0).
Only numpy and scipy are used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from scipy import ndimage

SaliencyMethod = Literal["ft-border", "ft"]
SALIENCY_METHODS: tuple[str, ...] = ("ft-border", "ft")

SaliencyFn = Callable[[np.ndarray], np.ndarray]
"""An image -> saliency callable: uint8 ``[H, W, 3]`` RGB in, float ``[H, W]`` in ``[0, 1]`` out."""


def check_image(image: object, name: str = "image") -> np.ndarray:
    """Return ``image`` if it is a uint8 ``[H, W, 3]`` array, else raise ``ValueError``."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"{name}: expected a uint8 RGB array [H, W, 3], got {got}")
    return image


def rgb_to_lab(image: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of an sRGB image.

    image: uint8 ``[H, W, 3]`` RGB. Returns float32 ``[H, W, 3]`` (L in 0..100).
    """
    rgb = check_image(image).astype(np.float32) / 255.0
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ],
        dtype=np.float32,
    )
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
    eps = 216.0 / 24389.0
    f = np.where(xyz > eps, np.cbrt(xyz), (24389.0 / 27.0 * xyz + 16.0) / 116.0)
    lab = np.stack(
        [116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], -1
    )
    return lab.astype(np.float32)


def _normalise(sal: np.ndarray) -> np.ndarray:
    lo, hi = float(sal.min()), float(sal.max())
    if hi - lo < 1e-8:
        return np.zeros(sal.shape, dtype=np.float32)
    return ((sal - lo) / (hi - lo)).astype(np.float32)


def frequency_tuned(image: np.ndarray, border: bool = True, blur_sigma: float = 1.0) -> np.ndarray:
    """Frequency-tuned colour-contrast saliency (Achanta et al. 2009), optionally border-referenced.

    image: uint8 ``[H, W, 3]``. Returns float32 ``[H, W]`` in ``[0, 1]``.
    ``border=False`` is the original method (distance to the mean Lab colour of the whole image);
    ``border=True`` measures the distance to the nearest of the four border-side mean colours
    (a band of 1/20 of the image size, at least 1 pixel).
    """
    lab = rgb_to_lab(image)
    blurred = ndimage.gaussian_filter(lab, sigma=(blur_sigma, blur_sigma, 0))
    if not border:
        ref = lab.reshape(-1, 3).mean(0)
        return _normalise(np.linalg.norm(blurred - ref, axis=-1))
    h, w = lab.shape[:2]
    bh, bw = max(1, h // 20), max(1, w // 20)
    sides = [lab[:bh], lab[-bh:], lab[:, :bw], lab[:, -bw:]]
    dists = [np.linalg.norm(blurred - side.reshape(-1, 3).mean(0), axis=-1) for side in sides]
    return _normalise(np.min(np.stack(dists), axis=0))


def classical_saliency(image: np.ndarray, method: SaliencyMethod = "ft-border") -> np.ndarray:
    """The built-in saliency map of ``image`` by ``method`` (see the module docstring).

    image: uint8 ``[H, W, 3]`` RGB. Returns float32 ``[H, W]`` in ``[0, 1]``.
    """
    if method == "ft-border":
        return frequency_tuned(image, border=True)
    if method == "ft":
        return frequency_tuned(image, border=False)
    raise ValueError(f"method: expected one of {SALIENCY_METHODS}, got {method!r}")
