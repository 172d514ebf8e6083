"""Evaluation of retrained networks: the full inference (multi-scale, dense CRF) on a split, mIoU per run.

:func:`predict_labels` writes one label PNG per image with a checkpoint (a predict loop, sharded
under DDP); :func:`evaluate` does it for every run and scores the predictions against the ground
truth (:func:`~sal_lightning.stages.quality.label_quality`); :func:`summarise` gives the mean and
spread over seeds. :class:`Evaluate` is the pipeline's step.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sal_lightning._atomic import atomic_write_text
from sal_lightning.data.layout import read_split, resolve_voc_root
from sal_lightning.stages.checks import check_at_least, check_crf, check_positive, check_split
from sal_lightning.stages.quality import label_quality
from sal_lightning.stages.retrain import variant_runs
from sal_lightning.stages.step import ARTEFACTS, Step, StepContext, names
from sal_lightning.stages.trainer import TrainerSettings, make_trainer

PathLike = str | os.PathLike[str]
#: the settings of a prediction run that decide its figures, as the network ran them
INFERENCE: tuple[str, ...] = ("test_scales", "test_fuse", "test_flip", "refine_at_inference", "crf")
INFERENCE_FILE = "inference.json"


@dataclass(frozen=True)
class EvaluateSettings:
    """The test-time inference of an evaluation (the pipeline's ``evaluate`` section).

    Attributes:
        test_scales: input scales fused (the released code's 0.5, 0.75, 1.0).
        test_flip: also fuse mirrored inputs (neither the paper nor the release does).
        test_fuse: ``"mean"`` or ``"max"`` of the views' probabilities (the release: max).
        refine_at_inference: apply Eq. 11 at test time too (see ``docs/segmenter.md``).
        crf: refine with dense CRF (the paper's test setting).
        batch_size: images per predict step.
    """

    test_scales: tuple[float, ...] = (0.5, 0.75, 1.0)
    test_flip: bool = False
    test_fuse: Literal["mean", "max"] = "mean"
    refine_at_inference: bool = False
    crf: bool = True
    batch_size: int = 1

    def __post_init__(self) -> None:
        check_positive("test_scales", self.test_scales)
        check_at_least("batch_size", self.batch_size, minimum=1)
        if self.test_fuse not in ("mean", "max"):
            raise ValueError(f"test_fuse: expected 'mean' or 'max', got {self.test_fuse!r}")


def predict_labels(
    checkpoint: PathLike,
    root: PathLike,
    *,
    out: PathLike,
    split: str = "val",
    settings: EvaluateSettings | None = None,
    trainer: TrainerSettings | None = None,
) -> Path:
    """Write ``<out>/<id>.png`` for every image of ``split`` with a :class:`SALSegmenter` checkpoint."""
    from sal_lightning.callbacks.writers import SegmentationPredictionWriter
    from sal_lightning.data.datamodules import VOCSegmentationDataModule
    from sal_lightning.models.segmenter import SALSegmenter

    settings = settings or EvaluateSettings()
    model = SALSegmenter.load_from_checkpoint(
        str(checkpoint),
        map_location="cpu",
        test_scales=tuple(settings.test_scales),
        test_flip=settings.test_flip,
        test_fuse=settings.test_fuse,
        refine_at_inference=settings.refine_at_inference,
        crf=settings.crf,
    )
    data = VOCSegmentationDataModule(
        str(root), predict_split=split, eval_batch_size=settings.batch_size, num_workers=0
    )
    loop = make_trainer(trainer, callbacks=[SegmentationPredictionWriter(out)], progress=True)
    loop.predict(model, datamodule=data, return_predictions=False)
    used = {name: getattr(model, name) for name in INFERENCE}  # as the network ran them
    atomic_write_text(Path(out) / INFERENCE_FILE, json.dumps(used, indent=2) + "\n")
    return Path(out)


def describe_inference(used: Mapping[str, Any]) -> str:
    """The test-time inference of :data:`INFERENCE_FILE` in words: ``scales 0.5, 0.75, 1.0 fused
    by mean, no flip, dense CRF``."""
    scales = [float(s) for s in used["test_scales"]]
    text = ", ".join(f"{s:g}" for s in scales)
    views = f"scales {text} fused by {used['test_fuse']}" if len(scales) > 1 else f"single scale {text}"
    if used["test_flip"]:
        views += " with flipped copies" if len(scales) > 1 else ", fused with its flipped copy"
    else:
        views += ", no flip"
    refine = ", Eq. 11 applied" if used.get("refine_at_inference") else ""
    return f"{views}{refine}, {'dense CRF' if used['crf'] else 'no CRF'}"


def evaluate(
    root: PathLike,
    runs: Mapping[str, Mapping[str, PathLike]],
    *,
    out: PathLike,
    split: str = "val",
    settings: EvaluateSettings | None = None,
    resume: bool = False,
    trainer: TrainerSettings | None = None,
) -> dict[str, dict[str, float]]:
    """mIoU on ``split`` of every run: ``runs`` maps a variant to ``{"seed<k>": checkpoint}``.

    Predictions go to ``<out>/<variant>/<seed>/<id>.png``; with ``resume`` a run whose predictions
    all exist is scored without predicting again. Returns ``{variant: {seed: mIoU}}``; the inference
    each run used (its scales, fusion, flip, CRF: :data:`INFERENCE`) goes to
    ``<out>/<variant>/<seed>/inference.json`` and, for all runs, ``<out>/inference.json``.
    """
    ids = read_split(resolve_voc_root(root), split)
    results: dict[str, dict[str, float]] = {}
    inference: dict[str, dict[str, Any]] = {}
    for variant, seeds in runs.items():
        results[variant] = {}
        for seed, checkpoint in seeds.items():
            folder = Path(out) / variant / seed
            if not (resume and all((folder / f"{i}.png").is_file() for i in ids)):
                predict_labels(checkpoint, root, out=folder, split=split, settings=settings, trainer=trainer)
            results[variant][seed] = label_quality(folder, root, ids=ids).miou
            used = folder / INFERENCE_FILE
            inference.setdefault(variant, {})[seed] = json.loads(used.read_text()) if used.is_file() else {}
    atomic_write_text(Path(out) / INFERENCE_FILE, json.dumps(inference, indent=2) + "\n")
    return results


def summarise(results: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """``{variant: {"mean", "std", "min", "max", "runs"}}`` of the per-seed mIoUs."""
    summary = {}
    for variant, runs in results.items():
        values = np.array(list(runs.values()), dtype=np.float64)
        summary[variant] = {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
            "min": float(values.min()),
            "max": float(values.max()),
            "runs": int(values.size),
        }
    return summary


@dataclass
class Evaluate(Step):
    """P1..P5 on ``split`` with the ``evaluate`` section's inference (scales, flip, dense CRF): mIoU
    per run.

    P1 is the step 1 network (its predictions in ``step1/p1/proxies``); P2..P5 every
    ``retrain/<variant>/seed<k>.ckpt``. Predictions go to ``evaluation/<variant>/seed<k>/<id>.png``;
    the numbers to ``evaluation/results.json``.
    """

    kind = "evaluate"
    writes = (ARTEFACTS.evaluation,)
    root: str
    split: str
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    include_p1: bool
    settings: EvaluateSettings

    def inputs(self) -> tuple[str, ...]:
        folders = [ARTEFACTS.retrained(v) for v in self.variants]
        return names(folders + ([ARTEFACTS.step1] if self.include_p1 else []))

    def check(self) -> None:
        check_split(self.root, self.split, argument="val_split")
        if self.settings.crf:
            check_crf("evaluate.crf")

    def run(self, ctx: StepContext) -> dict[str, Any]:
        paths = ctx.paths
        results: dict[str, dict[str, float]] = {}
        if self.include_p1:
            if not paths.p1.is_dir():
                raise FileNotFoundError(
                    f"{paths.p1}: ProxyNet predictions missing; run step 'proxies' with val_split"
                )
            ids = read_split(resolve_voc_root(self.root), self.split)
            results["P1"] = {"seed0": label_quality(paths.p1, self.root, ids=ids).miou}
        results |= evaluate(
            self.root,
            variant_runs(paths.retrain, self.variants, seeds=self.seeds),
            out=paths.evaluation,
            split=self.split,
            settings=self.settings,
            resume=not ctx.fresh,
            trainer=ctx.trainer.with_progress(False),
        )
        atomic_write_text(paths.results, json.dumps(results, indent=2) + "\n")
        return summarise(results)
