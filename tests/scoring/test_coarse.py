"""Coarse scores of a batch (Eq. 3-5) and the corruptions of known effect that test them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sal_lightning.scoring import mask_objectness
from sal_lightning.scoring.coarse import score_samples
from sal_lightning.scoring.corruption import corrupt_labels

IGNORE_INDEX = 255


def _paper_ac(ref: np.ndarray, fg: np.ndarray) -> float:
    """Eq. 3 as printed, by hand: prec = |H∩B|/|H|, rec = |H∩B|/|H∪B|."""
    both, union = (ref & fg).sum(), (ref | fg).sum()
    prec = both / ref.sum() if ref.sum() else 0.0
    rec = both / union if union else 0.0
    return 2 * prec * rec / (prec + rec) if prec + rec else 0.0


def test_score_samples_groups_sizes_and_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(0)
    samples = []
    for k, (h, w) in enumerate([(20, 24), (16, 16), (20, 24), (16, 16), (18, 10)]):
        proxy = np.zeros((h, w), dtype=np.uint8)
        proxy[2 : h - 3, 3 : w // 2 + k] = 1 + k
        proxy[0, :] = IGNORE_INDEX
        proxy[h - 2, 1:4] = 7  # a few pixels of an untagged class
        ref = np.zeros((h, w), dtype=bool)
        ref[4:h, 2 : w // 2] = True
        tags = np.zeros(20, dtype=np.float32)
        tags[k] = 1.0
        samples.append(
            {
                "id": f"i{k}",
                "image": torch.from_numpy(rng.integers(0, 255, (3, h, w), dtype=np.uint8)),
                "proxy": torch.from_numpy(proxy),
                "reference": torch.from_numpy(ref),
                "tags": torch.from_numpy(tags),
            }
        )
    out = score_samples(samples)
    assert out["id"] == [f"i{k}" for k in range(5)]
    for k, s in enumerate(samples):
        proxy, ref = s["proxy"].numpy(), s["reference"].numpy()
        fg = (proxy > 0) & (proxy != IGNORE_INDEX)
        f = float(mask_objectness(s["image"][None], s["proxy"][None].long())[0])
        assert float(out["ac"][k]) == pytest.approx(_paper_ac(ref, fg) * f**0.1, rel=1e-5)
        expected_cd = ((proxy == k + 1).sum()) / fg.sum()
        assert float(out["cd"][k]) == pytest.approx(expected_cd, rel=1e-6)
        assert float(out["sc"][k]) == pytest.approx(float(out["ac"][k]) * expected_cd, rel=1e-5)
    plain = score_samples(samples, objectness=None, definition="fmeasure")
    fg0 = (samples[0]["proxy"].numpy() > 0) & (samples[0]["proxy"].numpy() != IGNORE_INDEX)
    ref0 = samples[0]["reference"].numpy()
    f1 = 2 * (ref0 & fg0).sum() / (ref0.sum() + fg0.sum())
    assert float(plain["ac"][0]) == pytest.approx(f1, rel=1e-5)


def test_corruptions_have_the_intended_effect() -> None:
    rng = np.random.default_rng(0)
    labels = np.zeros((40, 40), dtype=np.uint8)
    labels[10:30, 8:28] = 3
    labels[9, 8:28] = IGNORE_INDEX
    assert np.array_equal(corrupt_labels(labels, "none", 0.0, rng), np.where(labels == 255, 0, labels))
    assert (corrupt_labels(labels, "erode", 0.2, rng) > 0).sum() < 400
    grown = corrupt_labels(labels, "dilate", 0.2, rng)
    assert (grown > 0).sum() > 400 and set(np.unique(grown)) == {0, 3}
    assert (corrupt_labels(labels, "drop", 1.0, rng) == 0).all()
    relabelled = corrupt_labels(labels, "relabel", 0.25, rng)
    other = (relabelled > 0) & (relabelled != 3)
    assert (relabelled > 0).sum() == 400 and abs(other.sum() - 100) <= 10
    shifted = corrupt_labels(labels, "shift", 0.25, rng)
    assert (shifted > 0).sum() <= 400 and ((shifted > 0) & (labels == 3)).sum() < 400  # moved
    with pytest.raises(ValueError, match="op"):
        corrupt_labels(labels, "smudge", 0.1, rng)  # type: ignore[arg-type]
