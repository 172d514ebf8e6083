"""Selection (SAL-Net Eq. 9): which proxies the selection loss trains on, for the pipeline and the CLI.

:class:`SelectSettings` holds the settings (a threshold ``tau``, or ``keep``: the share of the
proxies to keep; hard, soft or score weights; for SF and for SC), :meth:`SelectSettings.rule` the
rule of one column; :func:`select` turns a column of scores into weights with a rule;
:func:`select_rows` / :func:`select_scores` do it for a score table / a ``scores.csv``. The
oracle selection (P4's weights given to the proxies in the order of their true quality, where
ground truth exists) is :func:`select_best`; :class:`Select` is the pipeline's step.

The rules, the same everywhere:

- ``keep`` selects exactly the best ``ceil(keep * n)`` of the ``n`` proxies, ranked by score; equal
  scores are ranked by image id (ascending), so the count never depends on ties.
- A score of 0 or NaN (an empty proxy, a proxy without a tagged class, a missing score) is never
  selected, whatever ``tau`` or ``keep`` < 1 says (then fewer than ``ceil(keep * n)`` may be kept);
  ``keep: 1`` keeps every proxy with a score.
- Settings of which one would silence the other are refused at construction: ``tau`` with
  ``keep``, ``temperature`` without ``mode: soft``, ``tau`` or ``keep`` with ``mode: score``.
  Unset, ``tau`` is :data:`PAPER_TAU` and ``temperature`` 0.05.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np

from sal_lightning._atomic import atomic_write_text
from sal_lightning.data.io import read_scores, write_scores
from sal_lightning.stages.checks import check_share
from sal_lightning.stages.quality import has_ground_truth, proxy_miou, true_quality
from sal_lightning.stages.step import ARTEFACTS, Step, StepContext

if not TYPE_CHECKING:  # losses.selection.WeightMode, read without importing torch
    WeightMode = Literal["hard", "soft", "score"]
else:
    from sal_lightning.losses.selection import WeightMode

PathLike = str | os.PathLike[str]
Rows = dict[str, dict[str, float]]
Column = Literal["sf", "sc"]
#: the threshold when neither ``tau`` nor ``keep`` is set (the paper's on SF for ResNet-101)
PAPER_TAU = 0.85
#: the width of the ``"soft"`` step when ``temperature`` is unset
DEFAULT_TEMPERATURE = 0.05
#: the paper's training set (PASCAL VOC ``train_aug``)
PAPER_IMAGES = 10582
#: Table IV of the paper: threshold -> proxies selected of :data:`PAPER_IMAGES`, on SC and on SF
TABLE_IV: dict[str, dict[float, int]] = {
    "sc": {0.85: 2481, 0.8: 3638, 0.7: 5551, 0.55: 7535, 0.35: 9055, 0.0: 10490},
    "sf": {0.85: 3303, 0.8: 4362, 0.7: 5961, 0.55: 7586, 0.35: 8889, 0.0: 10392},
}
#: the paper's thresholds per network (Table IV): column -> {network: tau}
PAPER_TAUS: dict[str, dict[str, float]] = {
    "sc": {"ResNet-101": 0.8, "VGG16": 0.55},
    "sf": {"ResNet-101": 0.85, "VGG16": 0.55},
}


def paper_share(column: str, tau: float) -> tuple[float, float]:
    """The share of the proxies that the paper's Table IV selects with ``column >= tau``, at the
    table's threshold nearest to ``tau``: ``(that threshold, share)``."""
    table = TABLE_IV[column]
    nearest = min(table, key=lambda t: (abs(t - tau), -t))
    return nearest, table[nearest] / PAPER_IMAGES


class Rule(NamedTuple):
    """One selection's rule (of :meth:`SelectSettings.rule`): threshold or share, and the weights.

    Attributes:
        tau: the threshold on the score; unset: :data:`PAPER_TAU`, unless ``keep`` is set.
        keep: the share of the proxies to keep, the best by score.
        mode: ``"hard"``, ``"soft"`` or ``"score"`` (see :class:`SelectSettings`).
        temperature: width of the ``"soft"`` step (unset: :data:`DEFAULT_TEMPERATURE`).
    """

    tau: float | None = None
    keep: float | None = None
    mode: WeightMode = "hard"
    temperature: float | None = None

    @property
    def fixed_tau(self) -> float | None:
        """The threshold when it is fixed (``tau``, or :data:`PAPER_TAU` when unset); ``None``
        when ``keep`` decides it from the scores."""
        if self.keep is not None:
            return None
        return PAPER_TAU if self.tau is None else float(self.tau)

    def describe(self) -> str:
        """The rule in a few words: ``keep 0.6`` / ``tau 0.85``, and the mode."""
        rule = f"keep {self.keep:g}" if self.keep is not None else f"tau {self.fixed_tau:g}"
        if self.mode == "score":
            return "score as weight"
        return rule if self.mode == "hard" else f"{rule}, soft (temperature {self.width:g})"

    @property
    def width(self) -> float:
        """The ``"soft"`` step's width (``temperature``, or its default)."""
        return DEFAULT_TEMPERATURE if self.temperature is None else float(self.temperature)


def check_silenced(
    tau: float | None, keep: float | None, *, mode: str, temperature: float | None, suffix: str = ""
) -> None:
    """Raise ``ValueError`` when one setting of a selection would silence another that is set."""
    tau_name, keep_name = f"tau{suffix}", f"keep{suffix}"
    if tau is not None and keep is not None:
        raise ValueError(
            f"{tau_name} and {keep_name}: both are set ({tau_name} {tau}, {keep_name} {keep}), but only "
            f"one can decide the selection; set the other to null (--select.{tau_name} null or "
            f"--select.{keep_name} null over a pipeline configuration)"
        )
    if mode == "score" and (tau is not None or keep is not None):
        given = tau_name if tau is not None else keep_name
        raise ValueError(
            f"{given}: mode 'score' weighs every proxy by its score, so {given} would do nothing; "
            "unset it, or choose mode 'hard' or 'soft'"
        )
    if temperature is not None and mode != "soft":
        raise ValueError(
            f"temperature: only mode 'soft' uses it (mode is {mode!r}); unset it or set mode: soft"
        )


@dataclass(frozen=True)
class SelectSettings:
    """Settings of Eq. 9 (the pipeline's ``select`` section; see the module docstring for the
    rules): the refined selection on SF (P4, P5) with ``tau`` / ``keep``, and the coarse one on SC
    (P3) with ``tau_coarse`` / ``keep_coarse`` (the refined one's when both are unset); both with
    ``mode`` and ``temperature``.

    Attributes:
        tau: the threshold on SF (paper: 0.55 VGG16, 0.85 ResNet-101); unset: :data:`PAPER_TAU`,
            unless ``keep`` is set.
        keep: the share of the proxies to keep, the best by score, instead of a threshold (for
            scores on another scale than the paper's); not with ``tau``.
        mode: ``"hard"`` (Eq. 9: weight 1 for the selected proxies, else 0), ``"soft"`` (a sigmoid
            step around the threshold) or ``"score"`` (the score itself as weight: no threshold).
        temperature: width of the ``"soft"`` step, in score units (unset: 0.05); ``"soft"`` only.
        tau_coarse: the threshold on SC (paper: 0.55 VGG16, 0.8 ResNet-101); not with
            ``keep_coarse``.
        keep_coarse: the share of the proxies the coarse selection keeps.
        min_share: a selection that keeps fewer than this share of the proxies fails, before any
            retraining (0: never).
    """

    tau: float | None = None
    keep: float | None = None
    mode: WeightMode = "hard"
    temperature: float | None = None
    tau_coarse: float | None = None
    keep_coarse: float | None = None
    min_share: float = 0.05

    def __post_init__(self) -> None:
        for suffix in ("", "_coarse"):
            if getattr(self, f"tau{suffix}") is not None:
                check_share(f"tau{suffix}", getattr(self, f"tau{suffix}"))
            if getattr(self, f"keep{suffix}") is not None:
                check_share(f"keep{suffix}", getattr(self, f"keep{suffix}"), low_open=True)
        if self.mode not in ("hard", "soft", "score"):
            raise ValueError(f"mode: expected 'hard', 'soft' or 'score', got {self.mode!r}")
        if self.temperature is not None and not (
            isinstance(self.temperature, int | float) and self.temperature > 0
        ):
            raise ValueError(f"temperature: expected a number > 0, got {self.temperature!r}")
        check_silenced(self.tau, self.keep, mode=self.mode, temperature=self.temperature)
        check_silenced(self.tau_coarse, self.keep_coarse, mode=self.mode, temperature=None, suffix="_coarse")
        check_share("min_share", self.min_share)

    def rule(self, column: str) -> Rule:
        """The rule of the selection on ``column``: ``"sf"`` (refined) or ``"sc"`` (coarse)."""
        if column == "sc" and (self.tau_coarse is not None or self.keep_coarse is not None):
            return Rule(self.tau_coarse, self.keep_coarse, self.mode, self.temperature)
        return Rule(self.tau, self.keep, self.mode, self.temperature)


def ranking(values: Sequence[float], ids: Sequence[str] | None = None) -> list[int]:
    """Indices of the scores that are not NaN, best first; equal scores in the order of ``ids``
    (ascending; the index order without ids)."""
    keys: Sequence[Any] = range(len(values)) if ids is None else ids
    finite = [k for k, v in enumerate(values) if not math.isnan(v)]
    return sorted(finite, key=lambda k: (-values[k], keys[k]))


def kept_count(keep: float, n: int) -> int:
    """``ceil(keep * n)``, robust to the float error of the product (0.7 * 10 keeps 7)."""
    return math.ceil(round(keep * n, 9))


def select(
    values: Sequence[float], rule: Rule, *, ids: Sequence[str] | None = None
) -> tuple[list[float], float, int]:
    """Weights of ``values`` (ids break ties under ``keep``), the threshold and the number
    selected (the proxies at or above the threshold; for ``"score"`` those with weight > 0)."""
    v = np.asarray(values, dtype=np.float64)
    eligible = ~np.isnan(v) & ((v > 0) | (rule.keep == 1))  # keep 1: every proxy with a score
    if rule.mode == "score":
        weights = np.where(eligible, np.clip(np.nan_to_num(v), 0.0, None), 0.0)
        return weights.tolist(), 0.0, int((weights > 0).sum())
    chosen = np.zeros(len(v), dtype=bool)
    if rule.keep is not None:
        best = [k for k in ranking(values, ids) if eligible[k]][: kept_count(rule.keep, len(v))]
        chosen[best] = True
        threshold = float(v[best[-1]]) if best else math.nan
    else:
        threshold = float(rule.fixed_tau)  # type: ignore[arg-type]
        chosen = eligible & (np.nan_to_num(v, nan=-1.0) >= threshold)
    if rule.mode == "hard" or math.isnan(threshold):  # NaN: no score to keep
        weights = chosen.astype(np.float64)
    else:
        import torch

        from sal_lightning.losses.selection import selection_weights

        scores = torch.tensor(np.nan_to_num(v, nan=0.0))
        soft = selection_weights(scores, threshold, "soft", rule.width).numpy()
        weights = np.where(eligible, soft, 0.0)
    return weights.tolist(), threshold, int(chosen.sum())


def select_rows(
    rows: Mapping[str, Mapping[str, float]], column: str, *, rule: Rule
) -> tuple[Rows, dict[str, Any]]:
    """``rows`` with ``weight`` from ``column`` (ids sorted), and a summary: ``threshold``, how
    many were ``selected`` (at or above it) ``of`` how many, the total ``weight`` (what the loss
    sees; equal to ``selected`` for hard weights), ``zeros`` (scores of 0: never selected) and
    the ``rule``."""
    ids = sorted(rows)
    values = [float(rows[i].get(column, math.nan)) for i in ids]
    if all(math.isnan(v) for v in values):
        raise ValueError(f"scores: column {column!r} is empty; run the step that fills it first")
    weights, threshold, selected = select(values, rule, ids=ids)
    table = {i: {**rows[i], "weight": w} for i, w in zip(ids, weights, strict=True)}
    summary = {
        "threshold": threshold,
        "selected": selected,
        "of": len(ids),
        "weight": float(sum(weights)),
        "zeros": sum(v == 0 for v in values),
        "rule": rule.describe(),
    }
    return table, summary


def describe_summary(column: str, summary: Mapping[str, Any]) -> str:
    """One line: ``sf (keep 0.6): threshold 0.466 selects 240 of 400 (60.0%), 0 zero scores``."""
    share = summary["selected"] / summary["of"]
    line = (
        f"{column} ({summary['rule']}): threshold {summary['threshold']:.4g} selects {summary['selected']} "
        f"of {summary['of']} ({100 * share:.1f}%), {summary['zeros']} zero scores"
    )
    if not math.isclose(summary["weight"], summary["selected"]):
        line += f", total weight {summary['weight']:.1f}"
    return line


def check_kept(column: str, summary: Mapping[str, Any], *, rule: Rule, min_share: float) -> None:
    """Raise ``ValueError`` when a selection (a :func:`select_rows` summary) keeps fewer than
    ``min_share`` of the proxies, naming the share it keeps and the ``keep`` setting that gives the
    paper's Table IV share."""
    share = summary["selected"] / summary["of"]
    if share >= min_share:
        return
    which = "refined (P4, P5)" if column == "sf" else "coarse (P3)"
    if (summary["of"] - summary["zeros"]) / summary["of"] < min_share:  # no rule can keep more
        raise ValueError(
            f"select: the {which} selection keeps {summary['selected']} of {summary['of']} proxies: "
            f"{summary['zeros']} score 0 on {column.upper()} (empty), below min_share {min_share:g}; "
            "train step 1 longer (proxies: cam_steps, proxy_steps), check tags, saliency, or lower min_share"
        )
    tau = rule.fixed_tau if rule.fixed_tau is not None else PAPER_TAUS[column]["ResNet-101"]
    at, paper = paper_share(column, tau)
    name = "keep" if column == "sf" else "keep_coarse"
    raise ValueError(
        f"select: the {which} selection ({summary['rule']} on {column.upper()}) keeps {summary['selected']} "
        f"of {summary['of']} proxies ({100 * share:.1f}%; {summary['zeros']} score 0), below min_share "
        f"{min_share:g}; the paper's Table IV keeps {100 * paper:.1f}% with {column.upper()} >= {at:g}: "
        f"set `{name}: {paper:.2f}` (select: {{{name}: {paper:.2f}}}) to keep that share on any score "
        "scale, or lower min_share"
    )


def select_scores(
    scores: PathLike,
    column: Column = "sf",
    *,
    settings: SelectSettings | None = None,
    out: PathLike | None = None,
) -> dict[str, Any]:
    """Fill the ``weight`` column of ``scores`` (or of a copy at ``out``) from ``column``.

    Args:
        scores: a ``scores.csv``.
        column: the score the weights follow: ``"sf"`` (refined selection, the paper's, with
            ``tau`` / ``keep``) or ``"sc"`` (coarse selection, with ``tau_coarse`` /
            ``keep_coarse`` when one is set, else ``tau`` / ``keep``).
        settings: thresholds or shares, the weight mode, and the share below which the
            selection fails (``min_share``).
        out: write the table with its weights here (default: update ``scores`` in place).

    Returns the summary of :func:`select_rows`.
    """
    settings = settings or SelectSettings()
    rule = settings.rule(column)
    rows = read_scores(scores)
    if not rows:
        raise ValueError(f"{scores}: no rows to select from")
    table, summary = select_rows(rows, column, rule=rule)
    check_kept(column, summary, rule=rule, min_share=settings.min_share)
    config = {"step": "select", "score": column, **rule._asdict(), "threshold": summary["threshold"]}
    write_scores(Path(out) if out is not None else scores, table, config)
    return summary


def select_best(
    rows: Mapping[str, Mapping[str, float]], quality: Mapping[str, float], *, weights: Sequence[float]
) -> Rows:
    """The oracle selection: ``weights`` (another selection's, e.g. P4's) dealt out by true
    ``quality``: the largest weight to the best proxy, and so on (equal quality: by id). The same
    number of selected proxies for hard weights, the same total weight for soft and score weights.
    """
    ids = sorted(rows)
    if len(weights) != len(ids):
        raise ValueError(f"weights: expected one per proxy ({len(ids)}), got {len(weights)}")
    order = sorted(ids, key=lambda i: (-quality[i], i))
    dealt = dict(zip(order, sorted((float(w) for w in weights), reverse=True), strict=True))
    return {i: {**rows[i], "weight": dealt[i]} for i in ids}


def oracle_selection(
    rows: Mapping[str, Mapping[str, float]],
    quality: Mapping[str, float],
    *,
    p4: Mapping[str, Mapping[str, float]],
) -> tuple[Rows, dict[str, Any]]:
    """The oracle of a refined selection ``p4`` (rows with ``weight``): :func:`select_best` with its
    weights, and a summary: how many ``selected`` (weight > 0) and the total ``weight`` (P4's)."""
    ids = sorted(rows)
    table = select_best(rows, quality, weights=[p4[i]["weight"] for i in ids])
    weights = [table[i]["weight"] for i in ids]
    return table, {"selected": sum(w > 0 for w in weights), "weight": float(sum(weights))}


def mean_quality(table: Mapping[str, Mapping[str, float]], quality: Mapping[str, float]) -> float:
    """The mean of ``quality`` over a selection, weighted by its ``weight`` column (one measure for
    every selection: hard, soft or the oracle's)."""
    ids = sorted(table)
    weights = np.array([table[i]["weight"] for i in ids], dtype=np.float64)
    return float(weights @ np.array([quality[i] for i in ids]) / weights.sum())


@dataclass
class Select(Step):
    """Weights (Eq. 9) from SF into ``scores.csv`` (P4, P5) and from SC into ``selection/coarse.csv``
    (P3); a summary of both in ``selection/summary.json``. Where the split has ground truth, the
    oracle selection into ``selection/oracle.csv``: P4's weights given to the proxies in the order
    of their true per-image mIoU (:func:`select_best`).

    Fails before any retraining when a selection keeps fewer than ``min_share`` of the proxies."""

    kind = "select"
    reads = (ARTEFACTS.fine, ARTEFACTS.proxies)
    writes = (ARTEFACTS.scores, ARTEFACTS.scores_record, ARTEFACTS.selection)
    root: str
    split: str
    settings: SelectSettings

    def run(self, ctx: StepContext) -> dict[str, Any]:
        paths = ctx.paths
        rows = read_scores(paths.fine_scores)
        result: dict[str, Any] = {}
        tables: dict[str, Any] = {}
        for column in ("sf", "sc"):
            rule = self.settings.rule(column)
            tables[column], result[column] = select_rows(rows, column, rule=rule)
            check_kept(column, result[column], rule=rule, min_share=self.settings.min_share)
        ids = sorted(rows)
        if has_ground_truth(self.root, ids):
            quality = proxy_miou(true_quality(self.root, ids, proxies=paths.proxies, progress=False))
            tables["oracle"], result["oracle"] = oracle_selection(rows, quality, p4=tables["sf"])
            for name, table in tables.items():  # one measure for every selection
                result[name]["mean_true_miou"] = mean_quality(table, quality)
            result["all"] = {"of": len(ids), "mean_true_miou": float(np.mean(list(quality.values())))}
        where = {"sf": paths.scores, "sc": paths.coarse_selection, "oracle": paths.oracle_selection}
        for name, table in tables.items():
            note = {"step": "select", "score": name, **result[name], "mode": self.settings.mode}
            write_scores(where[name], table, note)
        atomic_write_text(paths.selection_summary, json.dumps(result, indent=2) + "\n")
        for name in ("sf", "sc"):
            print(f"  selection {describe_summary(name, result[name])}", flush=True)
        return result
