"""The pipeline's report: ``report.md`` with the paper's kinds of evidence, and ``figures/``.

- the ablation (Table VI): P1..P5 mIoU on the evaluation split, mean and spread over seeds;
- the proxies' quality against the ground truth (where it exists);
- the scorer's correlations with the true AC (Fig. 9) and their scatter plots;
- the threshold sweep (Table IV) and its plot;
- prediction overlays: image, ground truth, P2 and P5 for a few evaluation images.

:func:`write_report` writes it from a pipeline's workdir (the ``report`` step).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sal_lightning._atomic import atomic_path, atomic_write_text
from sal_lightning._versions import library_versions
from sal_lightning.data.classes import CLASSES_FILE, palette
from sal_lightning.data.io import read_image, read_label_png, read_scores
from sal_lightning.data.layout import find_gt_mask, read_split, resolve_voc_root, root_classes
from sal_lightning.data.voc import IGNORE_INDEX
from sal_lightning.stages.checks import check_at_least, check_share
from sal_lightning.stages.evaluate import describe_inference, summarise
from sal_lightning.stages.quality import TrueQuality, has_ground_truth, true_quality
from sal_lightning.stages.retrain import describe
from sal_lightning.stages.step import ARTEFACTS, Step, StepContext, Workdir
from sal_lightning.stages.sweep import (
    DEFAULT_TAUS,
    plot_correlations,
    score_correlations,
    selection_table,
    sweep_table,
    tau_sweep,
)

PathLike = str | os.PathLike[str]
#: Table VI of the paper (ResNet-101, VOC 2012 val, multi-scale + CRF), for reference
PAPER_TABLE_VI: dict[str, float] = {"P1": 61.4, "P2": 62.2, "P3": 64.9, "P4": 65.8, "P5": 66.1}
#: Fig. 9 of the paper: correlation of the scores with the true AC
PAPER_CORRELATIONS: dict[str, float] = {"sc": 0.701, "sf": 0.736}


@dataclass(frozen=True)
class ReportSettings:
    """What the report shows (the pipeline's ``report`` section).

    Attributes:
        overlays: evaluation images shown with their predictions.
        taus: thresholds of the sweep (Table IV).
    """

    overlays: int = 4
    taus: tuple[float, ...] = DEFAULT_TAUS

    def __post_init__(self) -> None:
        check_at_least("overlays", self.overlays, minimum=0)
        for tau in self.taus:
            check_share("taus", tau)


def ablation_table(
    summary: Mapping[str, Mapping[str, float]], runs: Mapping[str, Mapping[str, float]]
) -> str:
    """Markdown table of the ablation: one row per variant, mIoU in percent (mean ± std over seeds)."""
    lines = [
        "| row | what | val mIoU (%) | seeds | per seed | paper (Table VI) |",
        "|---|---|---|---|---|---|",
    ]
    for variant, s in summary.items():
        spread = f" ± {100 * s['std']:.1f}" if s["runs"] > 1 else ""
        per_seed = ", ".join(f"{100 * v:.1f}" for v in runs[variant].values())
        paper = f"{PAPER_TABLE_VI[variant]:.1f}" if variant in PAPER_TABLE_VI else "-"  # oracle: none
        lines.append(
            f"| {variant} | {describe(variant)} | {100 * s['mean']:.1f}{spread} | "
            f"{int(s['runs'])} | {per_seed} | {paper} |"
        )
    return "\n".join(lines)


def verdict(summary: Mapping[str, Mapping[str, float]]) -> str:
    """A plain sentence per variant: does it improve on P2 by more than the seeds' spread?"""
    if "P2" not in summary:
        return "P2 was not run, so no variant can be compared with training on all proxies."
    base = summary["P2"]
    sentences = []
    for variant in ("P3", "P4", "P5", "oracle"):
        if variant not in summary:
            continue
        s = summary[variant]
        delta = 100 * (s["mean"] - base["mean"])
        noise = 100 * max(s["std"], base["std"])
        if s["runs"] < 2 or base["runs"] < 2:
            sentences.append(
                f"{variant} ({describe(variant)}) against P2: {delta:+.1f} points from one seed, "
                "no spread to judge by (run several seeds: retrain.seeds)."
            )
            continue
        if abs(delta) <= noise:
            word = "is within the seeds' spread of"
        else:
            word = "improves on" if delta > 0 else "does not improve on"
        sentences.append(
            f"{variant} ({describe(variant)}) {word} P2: {delta:+.1f} points (largest seed std {noise:.1f})."
        )
    return " ".join(sentences)


def _synthetic_note(voc: Path) -> str:
    marker = voc / "synthetic.json"
    if not marker.is_file():
        return ""
    params = json.loads(marker.read_text())
    difficulty = params.get("difficulty", "clean")
    return f"; built-in synthetic data, difficulty {difficulty}, seed {params.get('seed')}"


def measured_with(runs: Mapping[str, Mapping[str, float]]) -> str:
    """The sentence that makes the table's figures reproducible: library versions and seeds."""
    versions = library_versions()
    seeds = sorted({seed for per_seed in runs.values() for seed in per_seed})
    names = ("sal-lightning", "torch", "lightning", "segmentation-models-pytorch", "torch threads")
    listed = ", ".join(f"{name} {versions[name]}" for name in names if name in versions)
    return (
        f"Measured with {listed}, Python {versions['python']}; mean ± standard deviation over "
        f"{len(seeds)} seed(s) ({', '.join(seeds)}). Another release of torch or another seed moves "
        "these figures: compare rows only beyond the spread."
    )


def classes_line(voc: Path) -> str:
    """The report's sentence naming the root's classes (its ``classes.txt``, else VOC's)."""
    classes = root_classes(voc)
    where = f"`{CLASSES_FILE}`" if (voc / CLASSES_FILE).is_file() else f"VOC's (no `{CLASSES_FILE}`)"
    return f"Classes: {len(classes) - 1} foreground classes, {where}: {', '.join(classes[1:])}.\n"


def plot_overlays(root: str, ids: Sequence[str], *, columns: Mapping[str, Path], path: Path) -> Path:
    """A grid: one row per image (image, ground truth, then each prediction folder in ``columns``),
    with a legend of the colours and names of the classes shown (the root's class list and
    palette: VOC's without a ``classes.txt``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    voc = resolve_voc_root(root)
    classes = root_classes(voc)
    colours = palette(len(classes))
    titles = ["image", "ground truth", *columns]
    rows = []
    for image_id in ids:
        gt = find_gt_mask(voc, image_id)
        image = read_image(voc / "JPEGImages" / f"{image_id}.jpg")
        truth = read_label_png(gt, len(classes)) if gt is not None else None
        preds = [read_label_png(folder / f"{image_id}.png", len(classes)) for folder in columns.values()]
        rows.append((image, truth, preds))
    shown = sorted(
        {int(v) for _, truth, preds in rows for m in [truth, *preds] if m is not None for v in np.unique(m)}
    )
    names = {**dict(enumerate(classes)), IGNORE_INDEX: "void / ignored"}
    handles = [
        Patch(facecolor=colours[label] / 255.0, edgecolor="0.5", label=names.get(label, str(label)))
        for label in shown
    ]
    legend_height = 0.3 + 0.22 * math.ceil(len(handles) / 5)
    height = 2.0 * len(ids) + legend_height
    fig, axes = plt.subplots(len(ids), len(titles), figsize=(2.0 * len(titles), height), squeeze=False)
    for row, (image, truth, preds) in enumerate(rows):
        panels = [image, colours[truth] if truth is not None else np.zeros_like(image)]
        panels += [colours[pred] for pred in preds]
        for ax, panel, title in zip(axes[row], panels, titles, strict=True):
            ax.imshow(panel)
            ax.set_axis_off()
            if row == 0:
                ax.set_title(title, fontsize=9)
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, legend_height / height, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def plot_sweep(sweeps: Mapping[str, Sequence[Mapping[str, float]]], path: Path) -> Path:
    """Selected share and (with ground truth) proxy mIoU of the selected set against tau."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.6))
    for column, rows in sweeps.items():
        taus = [r["tau"] for r in rows]
        axes[0].plot(taus, [100 * r["fraction"] for r in rows], marker="o", label=column.upper())
        if rows and "miou" in rows[0]:
            axes[1].plot(taus, [100 * r["miou"] for r in rows], marker="o", label=column.upper())
            oracle = [100 * r["oracle_miou"] for r in rows]
            axes[1].plot(taus, oracle, linestyle="--", label=f"oracle at {column.upper()}'s count")
    axes[0].set_xlabel("tau")
    axes[0].set_ylabel("proxies selected (%)")
    axes[1].set_xlabel("tau")
    axes[1].set_ylabel("mIoU of the selected proxies (%)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def inference_line(inference: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """The evaluation's inference as it ran (``evaluation/inference.json``): one description when
    every run used the same, else one per variant."""
    described = {
        variant: sorted({describe_inference(used) for used in seeds.values() if used})
        for variant, seeds in inference.items()
    }
    texts = sorted({text for found in described.values() for text in found})
    if not texts:
        return "Evaluation: inference settings not recorded."
    if len(texts) == 1:
        return f"Evaluation: {texts[0]}."
    return "Evaluation: " + "; ".join(f"{v}: {' / '.join(t)}" for v, t in described.items() if t) + "."


def _ablation(runs: Mapping[str, Mapping[str, float]], inference: Mapping[str, Any]) -> list[str]:
    summary = summarise(runs)
    return [
        "## Ablation (Table VI)\n",
        "Every retraining (P2..P5) runs the same number of steps, so the rows compare label quality,",
        f"not training length. {inference_line(inference)} P1: step 1's own predictions.\n",
        ablation_table(summary, runs) + "\n",
        verdict(summary) + "\n",
        measured_with(runs) + "\n",
    ]


def _step1(quality: Mapping[str, Any]) -> list[str]:
    lines = [
        "## Proxy annotations (step 1) against the ground truth\n",
        "| labels | mIoU (%) | precision (%) | coverage (%) |",
        "|---|---|---|---|",
    ]
    for name in ("seeds", "proxies"):
        if name in quality:
            q = quality[name]
            lines.append(
                f"| {name} | {100 * q['miou']:.1f} | {100 * q['precision']:.1f} | {100 * q['coverage']:.1f} |"
            )
    return [*lines, ""]


def scorer_line(trained: Mapping[str, Any]) -> str:
    """The fine scorer as it was trained (``scorer/scorer.json``), in one sentence."""
    if not trained:
        return "Fine scorer: not recorded."
    return (
        f"Fine scorer: method `{trained['method']}` ({trained['network']}), {trained['max_epochs']} epochs, "
        f"batch {trained['batch_size']}, {trained['samples']} training samples."
    )


def _selection(summary: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return [
        "## Selection (Eq. 9) and the paper's Table IV\n",
        "Each selection's share of the proxies beside the share the paper keeps on VOC (10,582 proxies);",
        "true quality: each proxy's mIoU against its ground truth, averaged with the selection's weights.\n",
        selection_table(summary) + "\n",
    ]


def _scorer(
    scores: Mapping[str, Mapping[str, float]], truth: TrueQuality, figures: Path, trained: Mapping[str, Any]
) -> tuple[list[str], Any]:
    corr = score_correlations(scores, truth.ac)
    lines = [
        "## Scorer quality (Fig. 9): correlation with the true AC\n",
        f"{scorer_line(trained)} True AC: the F-measure of each proxy's foreground against the ground "
        "truth's.\n",
        "| score | Pearson | Spearman | images | paper (Pearson) |",
        "|---|---|---|---|---|",
    ]
    for column, c in corr.items():
        lines.append(
            f"| {column.upper()} | {c['pearson']:.3f} | {c['spearman']:.3f} | {int(c['n'])} | "
            f"{PAPER_CORRELATIONS.get(column, math.nan):.3f} |"
        )
    if corr:
        plot_correlations(scores, truth.ac, path=figures / "correlations.png", columns=tuple(corr))
        lines.append("\n![SC and SF against the true AC](figures/correlations.png)\n")
    return lines, corr


def _json(path: Path) -> Any:
    """A JSON artefact of an earlier step, or ``{}`` where it does not exist (older workdirs)."""
    return json.loads(path.read_text()) if path.is_file() else {}


def write_report(
    workdir: PathLike,
    root: PathLike,
    *,
    split: str = "train_aug",
    val_split: str = "val",
    settings: ReportSettings | None = None,
) -> dict[str, Any]:
    """Write ``report.md``, ``report.json`` and ``figures/`` into a pipeline's ``workdir`` from its
    ``evaluation/results.json``, ``scores.csv``, ``step1/proxies`` (the proxies of ``split``) and
    ``step1/proxies.json``; returns the ablation's mean mIoU per variant."""
    settings = settings or ReportSettings()
    paths, voc = Workdir(Path(workdir)), resolve_voc_root(root)
    figures = paths.figures
    runs: dict[str, dict[str, float]] = json.loads(paths.results.read_text())
    inference, selected, trained = (
        _json(path) for path in (paths.inference, paths.selection_summary, paths.scorer_record)
    )
    summary = summarise(runs)
    report: dict[str, Any] = {"ablation": summary, "runs": runs, "classes": list(root_classes(voc))}
    lines = [
        "# SAL-Net pipeline report\n",
        f"Data: `{root}` (proxies for split `{split}`, evaluation on `{val_split}`){_synthetic_note(voc)}.\n",
        classes_line(voc),
        *_ablation(runs, inference),
    ]
    quality = _json(paths.step1_report)
    if "proxies" in quality:
        report["proxies"] = {k: quality[k] for k in ("seeds", "proxies") if k in quality}
        lines += _step1(quality)
    scores = read_scores(paths.scores)
    ids = read_split(voc, split)
    truth = None
    if has_ground_truth(voc, ids):  # true AC: F-measure of the proxy's foreground against the GT's
        truth = true_quality(voc, ids, proxies=paths.proxies, definition="fmeasure", progress=False)
        scorer_lines, report["correlations"] = _scorer(scores, truth, figures, trained)
        lines += scorer_lines
    if selected:
        report["selection"] = selected
        lines += _selection(selected)
    sweeps = {c: tau_sweep(scores, c, taus=settings.taus, truth=truth) for c in ("sc", "sf")}
    report["sweep"] = sweeps
    lines += ["## Threshold sweep (Table IV) on SF\n", sweep_table(sweeps["sf"]) + "\n"]
    plot_sweep(sweeps, figures / "tau_sweep.png")
    lines.append("![threshold sweep](figures/tau_sweep.png)\n")
    shown = read_split(voc, val_split)[: settings.overlays]
    columns: dict[str, Path] = {
        v: paths.evaluation / v / next(iter(runs[v])) for v in ("P2", "P5") if v in runs
    }
    if shown and columns:
        plot_overlays(str(root), shown, columns=columns, path=figures / "overlays.png")
        lines.append("## Predictions\n\n![image, ground truth, P2 and P5](figures/overlays.png)\n")
    atomic_write_text(paths.report, "\n".join(lines))
    atomic_write_text(paths.report_data, json.dumps(report, indent=2, default=float) + "\n")
    return {k: v["mean"] for k, v in summary.items()}


@dataclass
class Report(Step):
    """``report.md`` and ``figures/`` from the evaluation, the scores and the proxies."""

    kind = "report"
    reads = (ARTEFACTS.evaluation, ARTEFACTS.scores, ARTEFACTS.proxies)
    writes = (ARTEFACTS.report, ARTEFACTS.report_data, ARTEFACTS.figures)
    root: str
    split: str
    val_split: str
    settings: ReportSettings

    def run(self, ctx: StepContext) -> dict[str, Any]:
        return write_report(
            ctx.workdir, self.root, split=self.split, val_split=self.val_split, settings=self.settings
        )
