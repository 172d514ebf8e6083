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
    rows = tau_sweep(scores, "sf", (0.0, 0.5, 0.95), truth)
    assert [r["selected"] for r in rows] == [3, 2, 0]  # NaN never selected
    assert rows[1]["mean_true_ac"] == pytest.approx(0.825)
    # a + b: per class TP 9, FP 1, FN 1 -> IoU 9 / 11 for both classes
    assert rows[1]["miou"] == pytest.approx(9 / 11)
    assert math.isnan(rows[2]["miou"])
    corr = score_correlations(scores, truth.ac, ("sf", "sc"))
    assert set(corr) == {"sf"} and corr["sf"]["n"] == 3
    x, y = np.array([0.9, 0.6, 0.2]), np.array([0.95, 0.7, 0.1])
    assert corr["sf"]["pearson"] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-6)
    assert corr["sf"]["spearman"] == pytest.approx(1.0, abs=1e-5)
