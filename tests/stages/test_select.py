"""Selection (Eq. 9): one function for the pipeline and the command line: tau or keep, hard or soft."""

from __future__ import annotations

import math

import pytest

from sal_lightning.data.io import read_scores, write_scores
from sal_lightning.stages.select import (
    Selection,
    SelectSettings,
    select,
    select_best,
    select_scores,
    threshold_for,
)


def test_threshold_for_keep_share_and_fixed_tau() -> None:
    values = [0.9, 0.1, math.nan, 0.5, 0.7]
    assert threshold_for(values, 0.85, None) == 0.85
    assert threshold_for(values, 0.85, 0.5) == 0.7  # the best 2 of 4 finite scores
    assert threshold_for(values, 0.85, 1.0) == 0.1
    with pytest.raises(ValueError, match="keep"):
        threshold_for(values, 0.85, 0.0)


def test_select_hard_soft_and_missing_scores() -> None:
    weights, threshold = select([0.9, 0.1, math.nan, 0.5], Selection(tau=0.5))
    assert weights == [1.0, 0.0, 0.0, 1.0] and threshold == 0.5
    soft, _ = select([0.5, 0.9], Selection(tau=0.5, mode="soft", temperature=0.1))
    assert soft[0] == pytest.approx(0.5) and 0.98 < soft[1] < 1.0
    kept, threshold = select([0.9, 0.1, 0.5, 0.7], Selection(keep=0.5))
    assert kept == [1.0, 0.0, 0.0, 1.0] and threshold == 0.7


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"tau": 1.5}, r"tau: expected a number in \[0, 1\]"),
        ({"keep": 0.0}, r"keep: expected a number in \(0, 1\]"),
        ({"mode": "loud"}, "mode: expected 'hard', 'soft' or 'score'"),
        ({"temperature": 0.0}, "temperature: expected a number > 0"),
    ],
)
def test_bad_settings_name_the_setting(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Selection(**settings)  # type: ignore[arg-type]


def test_the_coarse_selection_falls_back_to_the_refined_one() -> None:
    assert SelectSettings(tau=0.8, keep=0.6).coarse() == Selection(0.8, 0.6)
    assert SelectSettings(tau=0.85, tau_coarse=0.8).coarse() == Selection(0.8)
    assert SelectSettings(tau=0.85, keep_coarse=0.3).coarse() == Selection(0.85, 0.3)


def test_select_scores_fills_the_weight_column_and_the_oracle_keeps_a_count(tmp_path) -> None:
    rows = {"a": {"sf": 0.9, "sc": 0.2}, "b": {"sf": 0.4, "sc": 0.8}, "c": {"sf": 0.6, "sc": 0.5}}
    write_scores(tmp_path / "scores.csv", rows)
    summary = select_scores(tmp_path / "scores.csv", "sc", Selection(tau=0.5))
    assert summary == {"tau": 0.5, "selected": 2, "of": 3}
    assert {i: r["weight"] for i, r in read_scores(tmp_path / "scores.csv").items()} == {
        "a": 0,
        "b": 1,
        "c": 1,
    }
    best = select_best(rows, {"a": 1.0, "b": 1.0, "c": 0.2}, 1)  # a tie broken by id
    assert [i for i, r in best.items() if r["weight"]] == ["a"]
