"""Selection (SAL-Net Eq. 9): which proxies the selection loss trains on, for the pipeline and the CLI.

:class:`Selection` holds the settings (a threshold ``tau``, or ``keep``: the share of the proxies
to keep; hard, soft or score weights); :func:`select` turns a column of scores into weights with
them (:func:`~sal_lightning.losses.selection_weights`, the pure equation); :func:`select_scores`
does it for a ``scores.csv``. The oracle selection (as many proxies as a real selection keeps, the
best by their true quality, where ground truth exists) is :func:`select_best`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from sal_lightning.data.io import read_scores, write_scores
from sal_lightning.stages.checks import check_share

if not TYPE_CHECKING:  # losses.selection.WeightMode, read without importing torch
    WeightMode = Literal["hard", "soft", "score"]
else:
    from sal_lightning.losses.selection import WeightMode

PathLike = str | os.PathLike[str]
Rows = dict[str, dict[str, float]]
Column = Literal["sf", "sc"]


@dataclass(frozen=True)
class Selection:
    """Settings of Eq. 9.

    Attributes:
        tau: the threshold on the score (paper, on SF: 0.55 VGG16, 0.85 ResNet-101).
        keep: when set, the threshold that keeps this share of the proxies instead of ``tau``
            (useful when the scores live on another scale than the paper's).
        mode: ``"hard"`` (Eq. 9: weight 1 at or above the threshold, else 0), ``"soft"`` (a
            sigmoid around it) or ``"score"`` (the score itself as weight).
        temperature: width of the ``"soft"`` step, in score units.
    """

    tau: float = 0.85
    keep: float | None = None
    mode: WeightMode = "hard"
    temperature: float = 0.05

    def __post_init__(self) -> None:
        check_share("tau", self.tau)
        if self.keep is not None:
            check_share("keep", self.keep, low_open=True)
        if self.mode not in ("hard", "soft", "score"):
            raise ValueError(f"mode: expected 'hard', 'soft' or 'score', got {self.mode!r}")
        if not (isinstance(self.temperature, int | float) and self.temperature > 0):
            raise ValueError(f"temperature: expected a number > 0, got {self.temperature!r}")


@dataclass(frozen=True)
class SelectSettings(Selection):
    """The selections of a pipeline (its ``select`` section): the refined one on SF (P4, P5) with
    :class:`Selection`'s ``tau`` / ``keep``, and the coarse one on SC (P3) with ``tau_coarse`` /
    ``keep_coarse`` (the refined one's when both are unset); both with ``mode`` and ``temperature``.

    Attributes:
        tau_coarse: the threshold on SC (paper: 0.55 VGG16, 0.8 ResNet-101).
        keep_coarse: when set, the share of the proxies the coarse selection keeps.
    """

    tau_coarse: float | None = None
    keep_coarse: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tau_coarse is not None:
            check_share("tau_coarse", self.tau_coarse)
        if self.keep_coarse is not None:
            check_share("keep_coarse", self.keep_coarse, low_open=True)

    def coarse(self) -> Selection:
        """The coarse selection's settings."""
        if self.tau_coarse is None and self.keep_coarse is None:
            return Selection(self.tau, self.keep, self.mode, self.temperature)
        tau = self.tau if self.tau_coarse is None else self.tau_coarse
        return Selection(tau, self.keep_coarse, self.mode, self.temperature)

    def fine(self) -> Selection:
        """The refined selection's settings."""
        return Selection(self.tau, self.keep, self.mode, self.temperature)


def threshold_for(values: Sequence[float], tau: float, keep: float | None) -> float:
    """The selection threshold: the score that keeps the best ``keep`` share, else ``tau``.

    NaN scores are never kept; ties at the threshold are all kept.
    """
    if keep is None:
        return float(tau)
    if not 0 < keep <= 1:
        raise ValueError(f"keep: expected a share in (0, 1], got {keep}")
    finite = np.sort(np.array([v for v in values if not math.isnan(v)]))[::-1]
    if finite.size == 0:
        raise ValueError("scores: no finite score to select from")
    return float(finite[max(0, math.ceil(keep * finite.size) - 1)])


def select(values: Sequence[float], selection: Selection) -> tuple[list[float], float]:
    """Weights of ``values`` (NaN: weight 0) and the threshold used."""
    import torch

    from sal_lightning.losses.selection import selection_weights

    threshold = threshold_for(values, selection.tau, selection.keep)
    scores = torch.tensor(list(values), dtype=torch.float64)
    weights = selection_weights(scores, threshold, selection.mode, selection.temperature)
    return weights.tolist(), threshold


def select_rows(
    rows: Mapping[str, Mapping[str, float]], column: str, selection: Selection
) -> tuple[Rows, dict[str, Any]]:
    """``rows`` with ``weight`` from ``column`` (ids sorted), and a summary: the threshold, how
    many were selected (weight > 0) and of how many."""
    ids = sorted(rows)
    values = [rows[i].get(column, math.nan) for i in ids]
    if all(math.isnan(v) for v in values):
        raise ValueError(f"scores: column {column!r} is empty; run the step that fills it first")
    weights, threshold = select(values, selection)
    table = {i: {**rows[i], "weight": w} for i, w in zip(ids, weights, strict=True)}
    summary = {"tau": threshold, "selected": sum(w > 0 for w in weights), "of": len(ids)}
    return table, summary


def select_scores(
    scores: PathLike,
    column: Column = "sf",
    selection: Selection | None = None,
    out: PathLike | None = None,
) -> dict[str, Any]:
    """Fill the ``weight`` column of ``scores`` (or of a copy at ``out``) from ``column``.

    Args:
        scores: a ``scores.csv``.
        column: the score the weights follow: ``"sf"`` (refined selection, the paper's) or
            ``"sc"`` (coarse selection).
        selection: threshold or share, and the weight mode.
        out: write the table with its weights here (default: update ``scores`` in place).

    Returns the summary of :func:`select_rows`.
    """
    selection = selection or Selection()
    rows = read_scores(scores)
    if not rows:
        raise ValueError(f"{scores}: no rows to select from")
    table, summary = select_rows(rows, column, selection)
    config = {"step": "select", "score": column, **asdict(selection), "threshold": summary["tau"]}
    write_scores(Path(out) if out is not None else scores, table, config)
    return summary


def select_best(rows: Mapping[str, Mapping[str, float]], quality: Mapping[str, float], count: int) -> Rows:
    """``rows`` with weight 1 for the ``count`` ids of highest ``quality`` (ties broken by id), else 0:
    the oracle selection."""
    ids = sorted(rows)
    best = set(sorted(ids, key=lambda i: (-quality[i], i))[:count])
    return {i: {**rows[i], "weight": float(i in best)} for i in ids}
