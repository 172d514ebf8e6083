"""What a user looks at after scoring (SAL-Net Table IV and Fig. 9), where ground truth exists.

- :func:`tau_sweep` (Table IV): for each threshold, how many proxies ``score >= tau`` selects and,
  with ground truth (:func:`~sal_lightning.stages.quality.true_quality`), their mean true AC and
  the mIoU of the selected proxies;
- :func:`score_correlations` (Fig. 9): Pearson and Spearman correlation of SC and SF with the true
  AC (torchmetrics); :func:`plot_correlations` draws the scatter plots (matplotlib, Agg backend);
- :func:`selection_table`: the ``select`` step's selections beside the shares of the paper's Table IV;
- :func:`sweep_report`: all of it as ``report.md`` + ``report.json`` + ``correlations.png``
  (``sal-lightning score sweep``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sal_lightning._atomic import atomic_path, atomic_write_text
from sal_lightning.data.io import read_scores
from sal_lightning.data.layout import resolve_voc_root
from sal_lightning.scoring.metrics import Definition
from sal_lightning.stages.quality import TrueQuality, has_ground_truth, proxy_miou, true_quality
from sal_lightning.stages.select import PAPER_TAUS, paper_share

PathLike = str | os.PathLike[str]
SweepColumn = Literal["sf", "sc", "ac", "p"]
#: the thresholds of a sweep unless given (Table IV's range and finer steps)
DEFAULT_TAUS: tuple[float, ...] = (0.0, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def _column(scores: Mapping[str, Mapping[str, float]], column: str, ids: Sequence[str]) -> np.ndarray:
    return np.array([float(scores[i].get(column, math.nan)) for i in ids], dtype=np.float64)


def tau_sweep(
    scores: Mapping[str, Mapping[str, float]],
    column: str = "sf",
    *,
    taus: Sequence[float] = DEFAULT_TAUS,
    truth: TrueQuality | None = None,
) -> list[dict[str, float]]:
    """Table IV: one row per ``tau`` with ``tau``, ``selected`` (count), ``fraction`` and, with
    ``truth``, ``mean_true_ac`` and ``miou`` (the pooled mIoU of the selected proxies against the
    ground truth) and ``oracle_miou``: the pooled mIoU of as many proxies chosen by their per-image
    mIoU (:func:`proxy_miou`), an upper reference for a score at that count (not the maximum of the
    pooled mIoU: ranking by per-image mIoU does not maximise it).

    ``scores``: ``{id: {column: value}}`` as :func:`~sal_lightning.data.io.read_scores` returns;
    Scores of 0 and NaN are never selected (as in :func:`~sal_lightning.stages.select.select`).
    """
    from sal_lightning.models.metrics import iou_from_confusion, mean_iou

    ids = sorted(scores)
    values = _column(scores, column, ids)
    if np.isnan(values).all():
        raise ValueError(f"scores: column {column!r} is empty; run the step that fills it first")
    rows: list[dict[str, float]] = []
    ranked: list[str] = []
    if truth is not None:
        quality = proxy_miou(truth)
        ranked = sorted(quality, key=lambda i: (-quality[i], i))

    def pooled_miou(chosen: Sequence[str]) -> float:
        if not chosen:
            return math.nan
        return float(mean_iou(iou_from_confusion(truth.pooled(chosen))))  # type: ignore[union-attr]

    for tau in taus:
        chosen = [i for i, v in zip(ids, values, strict=True) if v >= tau and v > 0]  # 0: never selected
        row: dict[str, float] = {
            "tau": float(tau),
            "selected": float(len(chosen)),
            "fraction": len(chosen) / len(ids),
        }
        if truth is not None:
            known = [i for i in chosen if i in truth.ac]
            row["mean_true_ac"] = float(np.mean([truth.ac[i] for i in known])) if known else math.nan
            row["miou"] = pooled_miou(known)
            row["oracle_miou"] = pooled_miou(ranked[: len(known)])
        rows.append(row)
    return rows


def score_correlations(
    scores: Mapping[str, Mapping[str, float]],
    truth: Mapping[str, float],
    *,
    columns: Sequence[str] = ("sc", "sf"),
) -> dict[str, dict[str, float]]:
    """Fig. 9's numbers: ``{column: {"pearson", "spearman", "n"}}`` of each score column against the
    true AC, over ids with both values (columns without values are skipped)."""
    import torch
    from torchmetrics.functional import pearson_corrcoef, spearman_corrcoef

    out: dict[str, dict[str, float]] = {}
    for column in columns:
        ids = [i for i in sorted(scores) if i in truth and not math.isnan(scores[i].get(column, math.nan))]
        if len(ids) < 3:
            continue
        x = torch.tensor([scores[i][column] for i in ids], dtype=torch.float64)
        y = torch.tensor([truth[i] for i in ids], dtype=torch.float64)
        out[column] = {
            "pearson": float(pearson_corrcoef(x, y)),
            "spearman": float(spearman_corrcoef(x, y)),
            "n": float(len(ids)),
        }
    return out


def plot_correlations(
    scores: Mapping[str, Mapping[str, float]],
    truth: Mapping[str, float],
    *,
    path: PathLike,
    columns: Sequence[str] = ("sc", "sf"),
) -> Path:
    """Scatter plots of each score column against the true AC (Fig. 9) as a PNG; returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = score_correlations(scores, truth, columns=columns)
    shown = [c for c in columns if c in stats]
    if not shown:
        raise ValueError(f"scores: none of the columns {list(columns)} has values for ids with ground truth")
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 4.0), squeeze=False)
    for ax, column in zip(axes[0], shown, strict=True):
        ids = [i for i in sorted(scores) if i in truth and not math.isnan(scores[i].get(column, math.nan))]
        ax.scatter([truth[i] for i in ids], [scores[i][column] for i in ids], s=8, alpha=0.6)
        ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("true AC (ground truth)")
        ax.set_ylabel(column.upper())
        ax.set_title(
            f"{column.upper()}: r = {stats[column]['pearson']:.3f}, ρ = {stats[column]['spearman']:.3f}"
        )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(path)


def sweep_table(rows: Sequence[Mapping[str, float]]) -> str:
    """Markdown table of a :func:`tau_sweep`: shares and mIoU in percent, scores (tau, AC) in 0..1,
    the unit in each header (the one convention of every report of the library)."""
    if not rows:
        return ""
    columns = [
        ("tau", "tau", lambda v: f"{v:.2f}"),
        ("selected", "selected", lambda v: f"{int(v)}"),
        ("fraction", "selected (%)", lambda v: f"{100 * v:.1f}"),
        ("mean_true_ac", "mean true AC", lambda v: f"{v:.3f}"),
        ("miou", "mIoU of the selected (%)", lambda v: f"{100 * v:.1f}"),
        ("oracle_miou", "oracle mIoU at that count (%)", lambda v: f"{100 * v:.1f}"),
    ]
    shown = [c for c in columns if c[0] in rows[0]]
    lines = ["| " + " | ".join(header for _, header, _ in shown) + " |", "|" + "---|" * len(shown)]
    for row in rows:
        cells = ["-" if math.isnan(float(row[k])) else fmt(float(row[k])) for k, _, fmt in shown]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _paper_shares(column: str, summary: Mapping[str, Any]) -> str:
    if str(summary["rule"]).startswith("tau"):
        at, share = paper_share(column, float(summary["threshold"]))
        return f"{100 * share:.1f} ({column.upper()} >= {at:g})"
    return "; ".join(
        f"{100 * paper_share(column, tau)[1]:.1f} ({network}, {column.upper()} >= {tau:g})"
        for network, tau in PAPER_TAUS[column].items()
    )


def selection_table(summary: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown table of the ``select`` step's summary (``selection/summary.json``): per selection
    its rule, count, share, zero scores, total weight, mean true mIoU per image (where ground
    truth exists) and the share the paper's Table IV keeps."""
    names = {
        "sc": "P3: coarse (SC)",
        "sf": "P4, P5: refined (SF)",
        "oracle": "oracle: P4's weights by true quality",
    }
    lines = [
        "| selection | rule | threshold | selected | share (%) | zero scores | total weight | "
        "mean true mIoU per image (%) | paper share (%, Table IV) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    of = summary["sf"]["of"]
    for name in ("sc", "sf", "oracle"):
        if name not in summary:
            continue
        s = summary[name]
        truth = f"{100 * s['mean_true_miou']:.1f}" if "mean_true_miou" in s else "-"
        cells = (
            [s["rule"], f"{s['threshold']:.3f}", str(s["selected"]), f"{100 * s['selected'] / of:.1f}"]
            + [str(s["zeros"]), f"{s['weight']:.1f}", truth, _paper_shares(name, s)]
            if name != "oracle"
            else [
                "-",
                "-",
                str(s["selected"]),
                f"{100 * s['selected'] / of:.1f}",
                "-",
                f"{s['weight']:.1f}",
                truth,
                "-",
            ]
        )
        lines.append(f"| {names[name]} | " + " | ".join(cells) + " |")
    if "all" in summary:
        lines.append(
            f"| all proxies (P2) | - | - | {of} | 100.0 | - | {of:.1f} | "
            f"{100 * summary['all']['mean_true_miou']:.1f} | - |"
        )
    return "\n".join(lines)


def sweep_report(
    scores: PathLike,
    out: PathLike,
    *,
    root: PathLike | None = None,
    proxies: PathLike | None = None,
    column: SweepColumn = "sf",
    taus: Sequence[float] = DEFAULT_TAUS,
    definition: Definition = "fmeasure",
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``report.md``, ``report.json`` and (with ground truth) ``correlations.png`` to ``out``.

    Ground truth is used when ``root`` and ``proxies`` are given and every scored id has a
    ground-truth mask. Returns the report as a dict.

    Args:
        scores: the ``scores.csv`` to sweep.
        out: the folder of the report.
        root: the VOC root with the ground truth (for the true quality and the correlations).
        proxies: the folder of the scored proxies (with ``root``).
        column: the score the threshold applies to (``sf``, falling back to ``sc`` when empty).
        taus: the thresholds of the sweep.
        definition: the true AC: ``"fmeasure"`` (the F-measure against the ground truth's
            foreground, as the pipeline's report does) or ``"paper"`` (Eq. 3 as printed).
        progress: show a progress bar.
    """
    path, table = scores, read_scores(scores)
    if not table:
        raise ValueError(f"{path}: no scored images")
    if np.isnan(_column(table, column, sorted(table))).all() and column == "sf":
        column = "sc"
    truth = None
    if root is not None and proxies is not None:
        voc = resolve_voc_root(root)
        if has_ground_truth(voc, sorted(table)):
            truth = true_quality(
                voc, sorted(table), proxies=proxies, definition=definition, progress=progress
            )
    sweep = tau_sweep(table, column, taus=taus, truth=truth)
    report: dict[str, Any] = {
        "scores": str(path),
        "column": column,
        "images": len(table),
        "sweep": sweep,
    }
    folder = Path(out)
    lines = [
        f"# Scoring report\n\n{len(table)} proxies from `{path}`.\n",
        f"## Threshold sweep on {column}\n",
    ]
    lines.append(sweep_table(sweep) + "\n")
    if truth is not None:
        corr = score_correlations(table, truth.ac)
        report["correlations"] = corr
        lines.append("## Correlation with the true AC\n")
        lines.append("| score | Pearson | Spearman | n |\n|---|---|---|---|")
        for name, c in corr.items():
            lines.append(f"| {name.upper()} | {c['pearson']:.3f} | {c['spearman']:.3f} | {int(c['n'])} |")
        if corr:
            plot_correlations(table, truth.ac, path=folder / "correlations.png", columns=tuple(corr))
            lines.append("\n![correlations](correlations.png)\n")
    atomic_write_text(folder / "report.md", "\n".join(lines) + "\n")
    atomic_write_text(folder / "report.json", json.dumps(report, indent=2, default=float) + "\n")
    return report
