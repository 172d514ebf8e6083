"""The scorer's training set, the sampling itself: degraded masks, cut-paste composites, placements."""

from __future__ import annotations

import numpy as np
import pytest

from sal_lightning.scoring.synthesis import ProxyRecord, background_place, cut_paste, degrade_mask


def test_degrade_mask_ops() -> None:
    rng = np.random.default_rng(0)
    mask = np.zeros((40, 40), dtype=bool)
    mask[10:30, 10:30] = True
    eroded = degrade_mask(mask, "erode", 0.1, rng)  # radius round(0.1 * 20) = 2
    dilated = degrade_mask(mask, "dilate", 0.1, rng)
    assert eroded.sum() == 16 * 16 and (eroded <= mask).all()
    assert (dilated >= mask).all() and dilated.sum() > mask.sum()
    erased = degrade_mask(mask, "erase", 0.5, rng)
    assert (erased <= mask).all() and abs(erased.sum() - 200) <= 25
    with pytest.raises(ValueError, match="op"):
        degrade_mask(mask, "blur", 0.1, rng)  # type: ignore[arg-type]


def _record(image_id: str, size: tuple[int, int], box: tuple[int, int, int, int], colour: int) -> ProxyRecord:
    image = np.random.default_rng(colour).integers(0, 255, (*size, 3), dtype=np.uint8)
    fg = np.zeros(size, dtype=bool)
    y0, y1, x0, x1 = box
    fg[y0:y1, x0:x1] = True
    fg[y0, x0] = False  # not a plain rectangle: a flip or transpose would show
    image[fg] = colour
    return ProxyRecord(image_id, image, fg, fg.copy(), ac=1.0)


def test_cut_paste_keeps_pixels_mask_and_reference_aligned() -> None:
    donor = _record("d", (30, 40), (5, 15, 20, 32), 200)
    receiver = _record("r", (36, 36), (20, 30, 2, 12), 40)
    comp = cut_paste(donor, receiver, 1.0, 3, left=17)
    ys, xs = np.nonzero(donor.foreground)
    dy, dx = 3 - ys.min(), 17 - xs.min()
    expected = np.zeros_like(comp.pasted)
    expected[ys + dy, xs + dx] = True
    assert np.array_equal(comp.pasted, expected)
    assert np.array_equal(comp.image[ys + dy, xs + dx], donor.image[ys, xs])  # pixels moved with the mask
    assert np.array_equal(comp.image[~comp.pasted], receiver.image[~comp.pasted])
    assert np.array_equal(comp.mask, receiver.foreground | expected)
    assert np.array_equal(comp.reference, receiver.reference | expected)
    smaller = cut_paste(donor, receiver, 0.5, 0, left=0)
    assert smaller.pasted.sum() < donor.foreground.sum() / 2
    assert (np.any(smaller.image != receiver.image, axis=-1) <= smaller.pasted).all()
    with pytest.raises(ValueError, match="does not fit"):
        cut_paste(donor, receiver, 1.0, 30, left=30)


def test_background_place_avoids_the_foreground() -> None:
    rng = np.random.default_rng(0)
    fg = np.zeros((40, 40), dtype=bool)
    fg[:, :30] = True  # only a 40 x 10 strip of background on the right
    for _ in range(20):
        top, left = background_place(fg, (8, 8), 200, rng)
        assert not fg[top : top + 8, left : left + 8].any()
    # no free place: the least covered of the tries, still inside the image
    top, left = background_place(np.ones((10, 10), dtype=bool), (4, 4), 5, rng)
    assert 0 <= top <= 6 and 0 <= left <= 6
    with pytest.raises(ValueError, match="does not fit"):
        background_place(fg, (41, 8), 3, rng)
