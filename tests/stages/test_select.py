"""Selection (Eq. 9): one function for the pipeline and the command line: tau or keep, hard or soft;
exact shares, zeros never selected, settings that would silence each other refused, the oracle."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from sal_lightning.data.io import read_scores, write_scores
from sal_lightning.stages.select import (
    TABLE_IV,
    Rule,
    SelectSettings,
    check_kept,
    kept_count,
    paper_share,
    select,
    select_best,
    select_rows,
    select_scores,
)


def test_keep_selects_exactly_its_share_ties_by_id() -> None:
    values = [0.5, 0.9, 0.5, 0.5, 0.1, 0.5]
    ids = ["f", "a", "b", "e", "c", "d"]
    weights, threshold, selected = select(values, Rule(keep=0.5), ids=ids)
    chosen = sorted(i for i, w in zip(ids, weights, strict=True) if w)
    assert chosen == ["a", "b", "d"] and selected == 3 and threshold == 0.5  # ties at 0.5: b, d before e, f
    assert [kept_count(k, n) for k, n in ((0.7, 10), (0.6, 160), (0.05, 400), (1.0, 3))] == [7, 96, 20, 3]


def test_zero_scores_are_never_selected_while_keep_is_below_one() -> None:
    """The demo's case: 66 of 160 proxies score 0, so the 60% quantile is 0; keep 0.6 must select the
    94 positive scores, not every proxy."""
    rng = np.random.default_rng(0)
    values = [0.0] * 66 + list(rng.uniform(0.05, 1.0, 94))
    ids = [f"{k:03d}" for k in range(160)]
    rows = {i: {"sc": v} for i, v in zip(ids, values, strict=True)}
    table, summary = select_rows(rows, "sc", rule=Rule(keep=0.6))
    assert summary["selected"] == 94 and summary["zeros"] == 66 and summary["of"] == 160
    assert all(table[i]["weight"] == (rows[i]["sc"] > 0) for i in ids)
    _, summary = select_rows(rows, "sc", rule=Rule(keep=0.3))
    assert summary["selected"] == 48 and summary["threshold"] == sorted(values)[-48]
    assert select(values, Rule(tau=0.0))[2] == 94  # tau 0: every positive score (Table IV keeps 10490)
    assert select(values, Rule(keep=1.0))[2] == 160  # keep 1: every proxy
    assert select([0.9, math.nan, 0.2], Rule(keep=1.0))[0] == [1.0, 0.0, 1.0]  # NaN: no score


def test_soft_and_score_weights_follow_the_rules() -> None:
    values, ids = [0.9, 0.0, 0.6, 0.3, math.nan], ["a", "b", "c", "d", "e"]
    soft, threshold, selected = select(values, Rule(keep=0.4, mode="soft", temperature=0.1), ids=ids)
    assert threshold == 0.6 and selected == 2 and soft[2] == pytest.approx(0.5)
    assert soft[1] == 0.0 and soft[4] == 0.0 and 0 < soft[3] < 0.5 < soft[0] < 1  # zero and NaN: 0
    score, _, selected = select(values, Rule(mode="score"), ids=ids)
    assert score == [0.9, 0.0, 0.6, 0.3, 0.0] and selected == 3
    hard, threshold, _ = select(values, Rule())  # unset tau: the paper's 0.85
    assert hard == [1.0, 0.0, 0.0, 0.0, 0.0] and threshold == 0.85


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"tau": 1.5}, r"tau: expected a number in \[0, 1\]"),
        ({"keep": 0.0}, r"keep: expected a number in \(0, 1\]"),
        ({"mode": "loud"}, "mode: expected 'hard', 'soft' or 'score'"),
        ({"temperature": 0.0, "mode": "soft"}, "temperature: expected a number > 0"),
        ({"tau": 0.8, "keep": 0.6}, r"tau and keep: both are set \(tau 0.8, keep 0.6\)"),
        ({"keep": 0.6, "mode": "score"}, "keep: mode 'score' weighs every proxy by its score"),
        ({"tau": 0.6, "mode": "score"}, "tau: mode 'score'"),
        ({"temperature": 0.1}, r"temperature: only mode 'soft' uses it \(mode is 'hard'\)"),
    ],
)
def test_bad_or_silenced_settings_name_the_settings(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SelectSettings(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"tau_coarse": 0.8, "keep_coarse": 0.3}, "tau_coarse and keep_coarse: both are set"),
        ({"keep_coarse": 0.3, "mode": "score"}, "keep_coarse: mode 'score'"),
        ({"min_share": 1.5}, r"min_share: expected a number in \[0, 1\]"),
    ],
)
def test_the_pipeline_section_refuses_silenced_pairs(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SelectSettings(**settings)  # type: ignore[arg-type]


def test_the_coarse_selection_falls_back_to_the_refined_one() -> None:
    assert SelectSettings(keep=0.6).rule("sc") == Rule(keep=0.6)
    assert SelectSettings(tau=0.85, tau_coarse=0.8).rule("sc") == Rule(0.8)
    assert SelectSettings(keep=0.6, keep_coarse=0.3).rule("sc") == Rule(keep=0.3)
    assert SelectSettings(keep=0.6, tau_coarse=0.8).rule("sc") == Rule(tau=0.8)
    assert SelectSettings(keep=0.6, tau_coarse=0.8).rule("sf") == Rule(keep=0.6)
    assert (
        SelectSettings().rule("sf").fixed_tau == 0.85
        and SelectSettings(keep=0.5).rule("sf").fixed_tau is None
    )


def test_select_scores_fills_the_weight_column(tmp_path) -> None:
    rows = {"a": {"sf": 0.9, "sc": 0.2}, "b": {"sf": 0.4, "sc": 0.8}, "c": {"sf": 0.6, "sc": 0.0}}
    write_scores(tmp_path / "scores.csv", rows)
    summary = select_scores(tmp_path / "scores.csv", "sc", settings=SelectSettings(tau=0.15, tau_coarse=0.5))
    assert summary == {"threshold": 0.5, "selected": 1, "of": 3, "weight": 1.0, "zeros": 1, "rule": "tau 0.5"}
    summary = select_scores(tmp_path / "scores.csv", "sc", settings=SelectSettings(tau=0.15))
    assert summary == {
        "threshold": 0.15,
        "selected": 2,
        "of": 3,
        "weight": 2.0,
        "zeros": 1,
        "rule": "tau 0.15",
    }
    weights = {i: r["weight"] for i, r in read_scores(tmp_path / "scores.csv").items()}
    assert weights == {"a": 1, "b": 1, "c": 0}
    write_scores(tmp_path / "zeros.csv", {"a": {"sf": 0.0}, "b": {"sf": 0.0}})
    for mode in ("hard", "soft"):
        settings = SelectSettings(keep=0.5, mode=mode, min_share=0.0)  # type: ignore[arg-type]
        summary = select_scores(tmp_path / "zeros.csv", "sf", settings=settings)
        assert summary["selected"] == 0 and summary["zeros"] == 2 and math.isnan(summary["threshold"])
    with pytest.raises(ValueError, match="keeps 0 of 2 proxies"):  # below min_share, as in the pipeline
        select_scores(tmp_path / "zeros.csv", "sf", settings=SelectSettings(keep=0.5))
    assert select_scores(tmp_path / "zeros.csv", "sf", settings=SelectSettings(keep=1.0))["selected"] == 2


def test_the_oracle_deals_out_the_same_weights_by_quality() -> None:
    rows = {i: {"sf": v} for i, v in zip("abcde", [0.9, 0.2, 0.7, 0.5, 0.0], strict=True)}
    quality = {"a": 0.1, "b": 0.9, "c": 0.9, "d": 0.5, "e": 0.7}
    for rule in (Rule(keep=0.6), Rule(keep=0.6, mode="soft"), Rule(mode="score")):
        table, summary = select_rows(rows, "sf", rule=rule)
        weights = [table[i]["weight"] for i in sorted(rows)]
        oracle = select_best(rows, quality, weights=weights)
        dealt = [oracle[i]["weight"] for i in sorted(rows)]
        assert sorted(dealt) == sorted(weights) and sum(dealt) == pytest.approx(summary["weight"])
        by_quality = sorted(rows, key=lambda i: (-quality[i], i))  # b, c tie: b first
        assert [oracle[i]["weight"] for i in by_quality] == sorted(weights, reverse=True)
    hard = select_best(rows, quality, weights=[1.0, 1.0, 0.0, 0.0, 0.0])
    assert [i for i in sorted(rows) if hard[i]["weight"]] == ["b", "c"]


def test_a_selection_below_min_share_names_keep_and_the_papers_share() -> None:
    rows = {f"{k:03d}": {"sf": 0.1 + 0.7 * k / 99} for k in range(100)}
    _, summary = select_rows(rows, "sf", rule=Rule(tau=0.85))
    assert summary["selected"] == 0
    with pytest.raises(ValueError) as caught:
        check_kept("sf", summary, rule=Rule(tau=0.85), min_share=0.05)
    message = str(caught.value)
    assert "keeps 0 of 100 proxies (0.0%" in message and "min_share 0.05" in message
    assert re.search(r"Table IV keeps 31\.2% with SF >= 0\.85: set `keep: 0\.31`", message)
    check_kept("sf", summary, rule=Rule(tau=0.85), min_share=0.0)  # min_share 0: never fails
    _, summary = select_rows(rows, "sf", rule=Rule(keep=0.04))
    with pytest.raises(ValueError, match=r"coarse \(P3\) selection \(keep 0.04 on SC\).*`keep_coarse: 0.34`"):
        check_kept("sc", {**summary, "rule": "keep 0.04"}, rule=Rule(keep=0.04), min_share=0.05)
    rows = {f"{k:03d}": {"sf": 0.9 if k < 3 else 0.0} for k in range(100)}  # 97 empty proxies
    _, summary = select_rows(rows, "sf", rule=Rule(keep=0.6))
    assert (summary["selected"], summary["zeros"]) == (3, 97)
    with pytest.raises(ValueError, match=r"keeps 3 of 100 proxies: 97 score 0 on SF \(empty\).*1 longer"):
        check_kept("sf", summary, rule=Rule(keep=0.6), min_share=0.05)


def test_table_iv_is_the_papers() -> None:
    """The counts of the paper's Table IV and text (3638 by SC >= 0.8, 3303 by SF >= 0.85 of 10,582)."""
    assert TABLE_IV["sc"][0.8] == 3638 and TABLE_IV["sf"][0.85] == 3303
    assert TABLE_IV["sc"][0.55] == 7535 and TABLE_IV["sf"][0.55] == 7586
    assert paper_share("sf", 0.85) == (0.85, pytest.approx(3303 / 10582))
    assert paper_share("sc", 0.6)[0] == 0.55  # the nearest column of the table
