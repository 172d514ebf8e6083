"""Evaluation of retrained networks: the full inference (multi-scale, dense CRF) on a split, mIoU per run.

:func:`predict_labels` writes one label PNG per image with a checkpoint (a predict loop, sharded
under DDP); :func:`evaluate` does it for every run and scores the predictions against the ground
truth (:func:`~sal_lightning.stages.quality.label_quality`); :func:`summarise` gives the mean and
spread over seeds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sal_lightning.data.layout import read_split, resolve_voc_root
from sal_lightning.stages.checks import check_at_least, check_positive
from sal_lightning.stages.quality import label_quality
from sal_lightning.stages.trainer import TrainerOptions, make_trainer

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class EvaluateSettings:
    """The test-time inference of an evaluation (the pipeline's ``evaluate`` section).

    Attributes:
        test_scales: input scales fused (the released code's 0.5, 0.75, 1.0).
        test_flip: also fuse mirrored inputs (neither the paper nor the release does).
        refine_at_inference: apply Eq. 11 at test time too (see ``docs/segmenter.md``).
        crf: refine with dense CRF (the paper's test setting).
        batch_size: images per predict step.
    """

    test_scales: tuple[float, ...] = (0.5, 0.75, 1.0)
    test_flip: bool = False
    refine_at_inference: bool = False
    crf: bool = True
    batch_size: int = 1

    def __post_init__(self) -> None:
        check_positive("test_scales", self.test_scales)
        check_at_least("batch_size", self.batch_size, 1)


def predict_labels(
    checkpoint: PathLike,
    root: PathLike,
    out: PathLike,
    split: str = "val",
    settings: EvaluateSettings | None = None,
    trainer: TrainerOptions | None = None,
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
        refine_at_inference=settings.refine_at_inference,
        crf=settings.crf,
    )
    data = VOCSegmentationDataModule(
        str(root), predict_split=split, eval_batch_size=settings.batch_size, num_workers=0
    )
    loop = make_trainer(trainer, callbacks=[SegmentationPredictionWriter(out)], progress=True)
    loop.predict(model, datamodule=data, return_predictions=False)
    return Path(out)


def evaluate(
    root: PathLike,
    runs: Mapping[str, Mapping[str, PathLike]],
    out: PathLike,
    split: str = "val",
    settings: EvaluateSettings | None = None,
    resume: bool = False,
    trainer: TrainerOptions | None = None,
) -> dict[str, dict[str, float]]:
    """mIoU on ``split`` of every run: ``runs`` maps a variant to ``{"seed<k>": checkpoint}``.

    Predictions go to ``<out>/<variant>/<seed>/<id>.png``; with ``resume`` a run whose predictions
    all exist is scored without predicting again. Returns ``{variant: {seed: mIoU}}``.
    """
    ids = read_split(resolve_voc_root(root), split)
    results: dict[str, dict[str, float]] = {}
    for variant, seeds in runs.items():
        results[variant] = {}
        for seed, checkpoint in seeds.items():
            folder = Path(out) / variant / seed
            if not (resume and all((folder / f"{i}.png").is_file() for i in ids)):
                predict_labels(checkpoint, root, folder, split, settings, trainer)
            results[variant][seed] = label_quality(folder, root, ids).miou
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
