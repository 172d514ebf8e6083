"""Default mask objectness F(B): boundary edge alignment, in (0, 1]."""

from __future__ import annotations

import pytest
import torch

from sal_lightning.scoring import boundary_accuracy, mask_objectness
from sal_lightning.scoring.objectness import boundary_band, gradient_magnitude


def _square_scene() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    image = 0.3 + 0.02 * torch.rand(1, 3, 48, 48, generator=g)  # flat, slightly noisy background
    image[:, :, 12:36, 12:36] += 0.5  # a bright square object
    return image


def test_aligned_boundary_beats_shifted_and_random_ones() -> None:
    image = _square_scene().expand(3, -1, -1, -1)
    masks = torch.zeros(3, 48, 48, dtype=torch.long)
    masks[0, 12:36, 12:36] = 1  # on the object
    masks[1, 2:26, 22:46] = 1  # shifted: half its boundary crosses flat background
    masks[2] = (torch.rand(48, 48, generator=torch.Generator().manual_seed(1)) < 0.5).long()  # noise
    f = mask_objectness(image, masks)
    assert 0.8 < f[0].item() <= 1.0
    assert f[0] > f[1] > 0 and f[0] > f[2] > 0
    # through Eq. 3 the objectness term only nudges the score (b = 0.1)
    ac = boundary_accuracy(masks[:1] > 0, masks[:1], f[:1])
    assert 0.98 < ac.item() <= 1.0


def test_ratio_written_out() -> None:
    image = _square_scene()
    mask = torch.zeros(1, 48, 48, dtype=torch.bool)
    mask[0, 5:20, 5:30] = True
    grad = gradient_magnitude(image)[0]
    band = boundary_band(mask)[0]
    ratio = grad[band].mean() / grad.mean()
    assert mask_objectness(image, mask).item() == pytest.approx((ratio / (1 + ratio)).item(), rel=1e-5)
    # the band straddles the boundary: 2 pixels wide, and the image border is not boundary
    assert band[10, 3:7].tolist() == [False, True, True, False]
    assert not boundary_band(torch.ones(1, 6, 6, dtype=torch.bool)).any()


def test_scale_invariance_uint8_float_normalised() -> None:
    image = _square_scene()
    mask = torch.zeros(1, 48, 48, dtype=torch.long)
    mask[0, 10:30, 14:40] = 3
    f = mask_objectness(image, mask)
    as_uint8 = mask_objectness((image * 255).round().to(torch.uint8), mask)
    normalised = mask_objectness((image - 0.45) / 0.225, mask)
    assert as_uint8.item() == pytest.approx(f.item(), abs=0.01)
    assert normalised.item() == pytest.approx(f.item(), rel=1e-4)


def test_degenerate_cases() -> None:
    image = _square_scene().expand(3, -1, -1, -1)
    masks = torch.zeros(3, 48, 48, dtype=torch.long)
    masks[1] = 1  # full mask: no boundary
    masks[2] = 255  # all ignored: no foreground
    assert torch.allclose(mask_objectness(image, masks, eps=1e-3), torch.full((3,), 1e-3))
    flat = torch.zeros(1, 3, 16, 16)
    square = torch.zeros(1, 16, 16, dtype=torch.long)
    square[0, 4:10, 4:10] = 1
    assert mask_objectness(flat, square).item() == pytest.approx(0.5)  # no evidence either way


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"image: expected shape \[B, 3, H, W\]"):
        mask_objectness(torch.zeros(1, 1, 8, 8), torch.zeros(1, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"mask: expected shape \[B, H, W\]"):
        mask_objectness(torch.zeros(1, 3, 8, 8), torch.zeros(1, 8, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="mask: expected a bool or integer mask"):
        mask_objectness(torch.zeros(1, 3, 8, 8), torch.zeros(1, 8, 8))
