"""DSRG region growing on crafted grids, against scipy's connected components, and CAM seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from sal_lightning.losses import flood_fill, grow_seeds, normalize_cams, seeds_from_cams

I = 255  # ignore


def _probs(fg: list[list[float]]) -> torch.Tensor:
    """Background + one foreground class with the given foreground probabilities, [1, 2, H, W]."""
    p = torch.tensor(fg, dtype=torch.float32)
    return torch.stack([1 - p, p])[None]


def test_growth_follows_8_connectivity_including_diagonals() -> None:
    probs = _probs(
        [
            [0.5, 0.0, 0.0, 0.0, 0.9],
            [0.0, 0.9, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.9, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.9],
        ]
    )
    seeds = torch.full((1, 5, 5), I)
    seeds[0, 0, 0] = 1  # the seed itself is not confident: it still anchors its region
    grown = grow_seeds(probs, seeds, torch.tensor([[1.0]]), bg_threshold=1.0)
    expected = torch.full((5, 5), I)
    expected[0, 0] = expected[1, 1] = expected[2, 2] = 1  # diagonal chain from the seed
    assert torch.equal(grown[0], expected)  # (0, 4) and (4, 4) are confident but not connected


def test_thresholds_fg_085_bg_099() -> None:
    probs = _probs([[0.84, 0.86, 0.5], [0.5, 0.5, 0.5], [0.02, 0.005, 0.5]])
    seeds = torch.full((1, 3, 3), I)
    seeds[0, 0, 0] = 1  # fg seed next to 0.86 (joins, p > 0.85)
    seeds[0, 1, 0] = 1
    seeds[0, 2, 0] = 0  # bg seed: bg p = 0.98 at the seed itself, 0.995 at (2, 1)
    grown = grow_seeds(probs, seeds, torch.tensor([[1.0]]))
    assert grown[0, 0, 1] == 1
    assert grown[0, 2, 1] == 0
    assert (grown[0, :, 2] == I).all() and grown[0, 1, 1] == I
    probs_below = _probs([[0.84, 0.85, 0.5], [0.5, 0.5, 0.5], [0.02, 0.011, 0.5]])
    grown = grow_seeds(probs_below, seeds, torch.tensor([[1.0]]))
    assert torch.equal(grown, seeds)  # 0.85 and bg 0.989 are not above their thresholds


def test_growth_restarts_from_the_original_seeds() -> None:
    seeds = torch.full((1, 4, 4), I)
    seeds[0, 0, 0] = 1
    tags = torch.tensor([[1.0]])
    wide = grow_seeds(_probs([[0.9] * 4] * 4), seeds, tags)
    assert (wide == 1).all()
    # the next iteration sees a network that is confident nowhere: only the seeds remain
    narrow = grow_seeds(_probs([[0.5] * 4] * 4), seeds, tags)
    assert torch.equal(narrow, seeds)


def test_untagged_classes_never_grow_and_argmax_is_restricted() -> None:
    probs = torch.zeros(1, 3, 3, 3)
    probs[0, 0] = 0.02
    probs[0, 1] = 0.08
    probs[0, 2] = 0.90  # the untagged class 2 is the most confident everywhere
    probs[0, 1, 2, 2], probs[0, 2, 2, 2] = 0.9, 0.08
    seeds = torch.full((1, 3, 3), I)
    seeds[0, 0, 0] = 2  # a seed of the untagged class stays a seed but does not grow
    seeds[0, 1, 1] = 1
    grown = grow_seeds(probs, seeds, torch.tensor([[1.0, 0.0]]))
    expected = torch.full((3, 3), I)
    expected[0, 0], expected[1, 1], expected[2, 2] = 2, 1, 1
    assert torch.equal(grown[0], expected)


def test_a_seed_of_another_class_keeps_its_label_and_blocks_growth() -> None:
    probs = _probs([[0.95, 0.95, 0.95]])
    seeds = torch.tensor([[[1, 0, I]]])
    grown = grow_seeds(probs, seeds, torch.tensor([[1.0]]))
    # the bg seed stays bg though the network says class 1, and class 1 cannot grow through it
    assert grown.tolist() == [[[1, 0, I]]]


def _scipy_reference(probs: np.ndarray, seeds: np.ndarray, tags: np.ndarray) -> np.ndarray:
    """DSRG growth with scipy.ndimage.label, one image and class at a time."""
    out = np.full(seeds.shape, I, dtype=np.int64)
    for b in range(probs.shape[0]):
        allowed = [0, *(np.flatnonzero(tags[b] > 0.5) + 1)]
        restricted = np.full_like(probs[b], -1.0)
        restricted[allowed] = probs[b, allowed]
        best_c, best_p = restricted.argmax(0), restricted.max(0)
        seeded = seeds[b] != I
        for c in allowed:
            cand = ((best_c == c) & (best_p > (0.99 if c == 0 else 0.85)) & ~seeded) | (seeds[b] == c)
            comp, _ = ndimage.label(cand, structure=np.ones((3, 3)))
            keep = np.setdiff1d(np.unique(comp[seeds[b] == c]), [0])
            out[b][np.isin(comp, keep) & (comp > 0)] = c
        out[b][seeded] = seeds[b][seeded]
    return out


def test_growth_matches_scipy_connected_components_on_random_maps() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 6, 24, 20, generator=gen) * 4
    probs = logits.softmax(1)
    tags = (torch.rand(4, 5, generator=gen) < 0.5).float()
    seeds = torch.full((4, 24, 20), I)
    pick = torch.rand(4, 24, 20, generator=gen) < 0.03
    seeds[pick] = torch.randint(0, 6, (int(pick.sum()),), generator=gen)
    grown = grow_seeds(probs, seeds, tags)
    expected = _scipy_reference(probs.numpy(), seeds.numpy(), tags.numpy())
    assert (grown.numpy() != seeds.numpy()).any()  # something grew
    np.testing.assert_array_equal(grown.numpy(), expected)


def test_flood_fill_follows_a_long_spiral() -> None:
    allowed = np.zeros((9, 9), dtype=bool)
    allowed[0, :] = allowed[:, 8] = allowed[8, :] = allowed[2:, 0] = allowed[2, :7] = True
    allowed[2:7, 6] = allowed[6, 2:7] = allowed[4:7, 2] = True
    sources = np.zeros_like(allowed)
    sources[4, 2] = True
    filled = flood_fill(torch.from_numpy(sources)[None], torch.from_numpy(allowed)[None])[0].numpy()
    comp, _ = ndimage.label(allowed, structure=np.ones((3, 3)))
    np.testing.assert_array_equal(filled, comp == comp[4, 2])


def test_grow_seeds_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="tags"):
        grow_seeds(torch.rand(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long), torch.ones(1, 3))
    with pytest.raises(ValueError, match="seeds"):
        grow_seeds(torch.rand(1, 3, 4, 4), torch.full((1, 4, 4), 9), torch.ones(1, 2))
    with pytest.raises(ValueError, match="fg_threshold"):
        grow_seeds(torch.rand(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long), torch.ones(1, 2), 1.5)


def _crafted_cams() -> tuple[torch.Tensor, torch.Tensor]:
    cams = torch.zeros(1, 3, 4, 6)
    cams[0, 0, 0, 0:3] = torch.tensor([10.0, 3.0, 1.9])  # class 0: peak 10, threshold 2
    cams[0, 1, 0, 2:5] = torch.tensor([0.5, 0.5, 0.09])  # class 1: peak 0.5, threshold 0.1
    cams[0, 2, 3, :] = 100.0  # untagged class: no seeds whatever its CAM
    return cams, torch.tensor([[1.0, 1.0, 0.0]])


def test_seeds_from_cams_with_saliency() -> None:
    cams, tags = _crafted_cams()
    saliency = torch.full((1, 4, 6), 0.5)
    saliency[0, 2:, :] = 0.05  # background by saliency (< 0.06)
    saliency[0, 2, 0] = 0.06  # not below the threshold
    saliency[0, 0, 0] = 0.0  # low saliency under a foreground seed: conflict
    seeds = seeds_from_cams(cams, tags, saliency)
    expected = torch.full((4, 6), I)
    expected[0, 0] = I  # class 0 (10 > 2) and background (saliency 0): conflict
    expected[0, 1] = 1  # 3 > 0.2 x 10
    expected[0, 2] = 2  # class 0 has 1.9 (below 2), class 1 has 0.5 (above 0.2 x 0.5)
    expected[0, 3] = 2  # 0.5 > 0.1; (0, 4) with 0.09 is below
    expected[2:, :] = 0  # saliency 0.05 < 0.06, whatever the untagged class's CAM says
    expected[2, 0] = I  # saliency 0.06 is not below 0.06
    assert torch.equal(seeds[0], expected)


def test_seeds_from_cams_conflicting_classes_are_ignored() -> None:
    cams, tags = _crafted_cams()
    cams[0, 0, 0, 2] = 5.0  # now both classes claim (0, 2)
    seeds = seeds_from_cams(cams, tags, torch.full((1, 4, 6), 0.5))
    assert seeds[0, 0, 2] == I and seeds[0, 0, 1] == 1 and seeds[0, 0, 3] == 2


def test_seeds_from_cams_without_saliency_use_the_lowest_cam() -> None:
    cams = torch.zeros(1, 2, 4, 5)
    cams[0, 0] = torch.arange(20, dtype=torch.float32).view(4, 5)  # 0..19
    tags = torch.tensor([[1.0, 0.0]])
    seeds = seeds_from_cams(cams, tags, bg_quantile=0.25, fg_ratio=0.5)
    flat = seeds[0].flatten()
    strength = torch.arange(20) / 19
    cut = torch.quantile(strength, 0.25)
    assert torch.equal(flat == 0, strength <= cut)  # the lowest quarter (pixels 0..4)
    assert torch.equal(flat == 1, strength > 0.5)  # CAM > 0.5 x max
    assert ((flat == I) == ((strength > cut) & (strength <= 0.5))).all()


def test_normalize_cams_and_argument_checks() -> None:
    cams, tags = _crafted_cams()
    norm = normalize_cams(cams, tags)
    assert norm[0, 0].max() == 1.0 and norm[0, 1].max() == 1.0 and norm[0, 2].abs().sum() == 0
    with pytest.raises(ValueError, match="saliency"):
        seeds_from_cams(cams, tags, torch.full((1, 4, 6), 200.0))
    with pytest.raises(ValueError, match="fg_ratio"):
        seeds_from_cams(cams, tags, fg_ratio=2.0)
    with pytest.raises(ValueError, match="tags"):
        seeds_from_cams(cams, torch.ones(1, 2))
