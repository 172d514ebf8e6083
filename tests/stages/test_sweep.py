"""Tau sweeps and correlations with the true AC (Table IV, Fig. 9), by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sal_lightning.stages.quality import TrueQuality
from sal_lightning.stages.sweep import score_correlations, tau_sweep


def test_tau_sweep_and_correlations_by_hand() -> None:
    scores = {"a": {"sf": 0.9}, "b": {"sf": 0.6}, "c": {"sf": 0.2}, "d": {"sf": math.nan}}
    confusion = {
        "a": torch.tensor([[5, 0], [0, 5]]),
        "b": torch.tensor([[4, 1], [1, 4]]),
        "c": torch.tensor([[0, 5], [5, 0]]),
        "d": torch.tensor([[5, 0], [0, 5]]),
    }
    truth = TrueQuality({"a": 0.95, "b": 0.7, "c": 0.1, "d": 0.9}, confusion)
    rows = tau_sweep(scores, "sf", taus=(0.0, 0.5, 0.95), truth=truth)
    assert [r["selected"] for r in rows] == [3, 2, 0]  # NaN never selected
    assert rows[1]["mean_true_ac"] == pytest.approx(0.825)
    # a + b: per class TP 9, FP 1, FN 1 -> IoU 9 / 11 for both classes
    assert rows[1]["miou"] == pytest.approx(9 / 11)
    assert math.isnan(rows[2]["miou"])
    corr = score_correlations(scores, truth.ac, columns=("sf", "sc"))
    assert set(corr) == {"sf"} and corr["sf"]["n"] == 3
    x, y = np.array([0.9, 0.6, 0.2]), np.array([0.95, 0.7, 0.1])
    assert corr["sf"]["pearson"] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-6)
    assert corr["sf"]["spearman"] == pytest.approx(1.0, abs=1e-5)


def test_a_zero_score_is_never_selected_by_the_sweep() -> None:
    scores = {"a": {"sc": 0.0}, "b": {"sc": 0.4}, "c": {"sc": 0.0}}
    assert [r["selected"] for r in tau_sweep(scores, "sc", taus=(0.0, 0.5))] == [1, 0]


def test_the_oracle_ranks_by_per_image_miou_on_generated_proxies(synthetic_voc, tmp_path) -> None:
    """Proxies of known quality: ``proxy_miou`` is each proxy's mIoU over the classes in its ground
    truth or itself (void ignored), as computed here independently, and the oracle's hard selection
    is exactly the best proxies by it."""
    from sal_lightning.data.io import read_label_png
    from sal_lightning.data.layout import find_gt_mask, read_split
    from sal_lightning.stages.corrupt import make_corrupted_proxies
    from sal_lightning.stages.quality import proxy_miou, true_quality
    from sal_lightning.stages.select import select_best

    ids = read_split(synthetic_voc, "train")
    make_corrupted_proxies(synthetic_voc, tmp_path / "p", split=ids, seed=1, progress=False)
    measured = proxy_miou(true_quality(synthetic_voc, ids, proxies=tmp_path / "p", progress=False))
    for image_id in ids:
        gt = read_label_png(find_gt_mask(synthetic_voc, image_id))
        proxy = read_label_png(tmp_path / "p" / f"{image_id}.png")
        valid = gt != 255
        g, p = gt[valid], np.where(proxy[valid] == 255, 0, proxy[valid])
        ious = [((g == c) & (p == c)).sum() / ((g == c) | (p == c)).sum() for c in np.union1d(g, p)]
        assert measured[image_id] == pytest.approx(float(np.mean(ious)), abs=1e-9)
    assert len(set(measured.values())) > len(ids) // 2  # the corruptions spread the quality
    rows = {i: {"sf": 0.5} for i in ids}
    oracle = select_best(rows, measured, weights=[1.0] * 5 + [0.0] * (len(ids) - 5))
    chosen = [measured[i] for i in ids if oracle[i]["weight"]]
    rest = [measured[i] for i in ids if not oracle[i]["weight"]]
    assert len(chosen) == 5 and min(chosen) >= max(rest)
