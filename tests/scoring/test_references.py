"""Reference masks: built-in saliency, binarisation + two-label CRF, iterative erasing, PNG output."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sal_lightning.scoring.references import (
    reference_mask,
    refine_saliency,
    resolve_threshold,
    saliency_probabilities,
)
from sal_lightning.scoring.saliency import classical_saliency, rgb_to_lab


def _scene(size: int = 48) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A grey image with a red square (left) and a blue square (right); returns image, red, blue masks."""
    image = np.full((size, size, 3), 120, dtype=np.uint8)
    red = np.zeros((size, size), dtype=bool)
    blue = np.zeros((size, size), dtype=bool)
    red[14:30, 4:20] = True
    blue[18:34, 28:44] = True
    image[red] = (220, 30, 30)
    image[blue] = (30, 40, 210)
    return image, red, blue


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_lab_matches_opencv() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    expected = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    assert np.abs(rgb_to_lab(rgb) - expected).max() < 0.5


@pytest.mark.parametrize("method", ["ft-border", "ft"])
def test_builtin_saliency_is_a_unit_map_that_finds_the_objects(method: str) -> None:
    image, red, blue = _scene()
    sal = classical_saliency(image, method)  # type: ignore[arg-type]
    assert sal.shape == red.shape and sal.dtype == np.float32
    assert sal.min() >= 0.0 and sal.max() <= 1.0
    objects = red | blue
    assert sal[objects].mean() > sal[~objects].mean() + 0.1
    assert classical_saliency(np.full((8, 8, 3), 7, np.uint8), method).max() == 0.0  # flat image
    with pytest.raises(ValueError, match="image"):
        classical_saliency(image.astype(np.float32), method)  # type: ignore[arg-type]


def test_threshold_maps_to_one_half_and_thresholds_resolve() -> None:
    sal = np.array([[0.0, 0.2, 0.4, 0.7, 1.0]], dtype=np.float32)
    probs = saliency_probabilities(sal, 0.4)
    assert probs.shape == (2, 1, 5) and np.allclose(probs.sum(0), 1.0)
    assert probs[1, 0, 2] == pytest.approx(0.5) and probs[1, 0, 1] == pytest.approx(0.25)
    assert probs[1, 0, 0] == pytest.approx(0.02) and probs[1, 0, 4] == pytest.approx(0.98)
    assert resolve_threshold(sal / 2, "adaptive") == pytest.approx(sal.mean())  # twice the mean saliency
    assert resolve_threshold(sal, "adaptive") == pytest.approx(0.9)  # clipped to [0.1, 0.9]
    bimodal = np.r_[np.full(50, 0.1), np.full(50, 0.8)].astype(np.float32).reshape(10, 10)
    assert 0.1 < resolve_threshold(bimodal, "otsu") < 0.8
    image, red, _ = _scene()
    with pytest.raises(ValueError, match="threshold"):
        reference_mask(image, red.astype(np.float32), threshold=1.5)
    with pytest.raises(ValueError, match="max_objects"):
        reference_mask(image, red.astype(np.float32), max_objects=0)


def test_crf_cleans_a_noisy_saliency_map() -> None:
    image, red, _ = _scene()
    rng = np.random.default_rng(0)
    sal = np.clip(red * 0.75 + 0.15 + rng.normal(0, 0.22, red.shape), 0, 1).astype(np.float32)
    plain = refine_saliency(image, sal, 0.5, crf=False)
    refined = refine_saliency(image, sal, 0.5, crf=True)
    assert refined.dtype == bool and refined.shape == red.shape
    assert _iou(refined, red) > _iou(plain, red) + 0.1
    assert _iou(refined, red) > 0.9
    with pytest.raises(ValueError, match="saliency"):
        refine_saliency(image, sal[:10], 0.5)


def _red_only(image: np.ndarray) -> np.ndarray:
    """A 'detector' that only ever sees the most saturated red or blue thing, red first."""
    img = image.astype(np.float32)
    red = (img[..., 0] - img[..., 1:].max(-1)) / 255.0
    if red.max() > 0.3:
        return np.clip(red, 0, 1)
    return np.clip((img[..., 2] - img[..., :2].max(-1)) / 255.0, 0, 1)


def test_iterative_erasing_finds_a_second_object() -> None:
    image, red, blue = _scene()
    single = reference_mask(image, _red_only, max_objects=1, crf=False, threshold=0.3)
    multi = reference_mask(image, _red_only, max_objects=3, crf=False, threshold=0.3)
    assert _iou(single, red) > 0.95 and not (single & blue).any()
    assert _iou(multi, red | blue) > 0.95
    # a map (not a callable) cannot be re-run: a single pass
    once = reference_mask(image, _red_only(image), max_objects=3, crf=False, threshold=0.3)
    assert np.array_equal(once, single)
    # the built-in method is a callable too
    builtin = reference_mask(image, None)
    assert _iou(builtin, red | blue) > 0.8
