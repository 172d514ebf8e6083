"""Step 4: :class:`~sal_lightning.SALSegmenter` retrained on the proxies, one run per seed.

:data:`VARIANTS` are the rows of the paper's ablation (Table VI): which selection the weights come
from and whether the attention loss is on. Every variant runs the same ``max_steps`` (selecting
fewer images means more passes over them, not fewer updates; docs/design.md, "Equal steps for
every row"). :class:`Retrain` is the pipeline's step for one variant.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sal_lightning.data.layout import read_split, resolve_voc_root
from sal_lightning.stages.checks import (
    build_on_meta,
    check_at_least,
    check_crf,
    check_kwargs,
    check_split,
    model_classes,
)
from sal_lightning.stages.quality import has_ground_truth
from sal_lightning.stages.step import ARTEFACTS, Step, StepContext, Workdir, names
from sal_lightning.stages.trainer import (
    TrainerSettings,
    final_losses,
    make_trainer,
    save_checkpoint,
    seed_everything,
)

PathLike = str | os.PathLike[str]
MODEL = "sal_lightning.models.segmenter:SALSegmenter"
DATA = "sal_lightning.data.datamodules:VOCSegmentationDataModule"
Variant = Literal["P2", "P3", "P4", "P5", "oracle"]


@dataclass(frozen=True)
class VariantSpec:
    """One ablation row: the selection its weights come from and the attention switch."""

    selection: Literal["coarse", "fine", "oracle"] | None
    use_attention: bool
    what: str


#: the retraining variants of the paper's ablation (Table VI), and the oracle: an upper reference (P4's
#: weights given to the proxies in the order of their true per-image mIoU; not a maximum)
VARIANTS: dict[str, VariantSpec] = {
    "P2": VariantSpec(None, False, "retrain on all proxies"),
    "P3": VariantSpec("coarse", False, "coarse selection (SC)"),
    "P4": VariantSpec("fine", False, "refined selection (SF)"),
    "P5": VariantSpec("fine", True, "refined selection + attention loss"),
    "oracle": VariantSpec("oracle", False, "oracle selection: P4's weights by true quality"),
}
#: keyword arguments the retraining sets itself, from the variant and the pipeline's artefacts
MODEL_SET: tuple[str, ...] = ("use_selection", "use_attention")
DATA_SET: tuple[str, ...] = ("root", "train_split", "val_split", "proxies", "scores", "strong_ids")


@dataclass(frozen=True)
class RetrainSettings:
    """The retrainings of step 4 (the pipeline's ``retrain`` section).

    Attributes:
        variants: ablation rows to train (:data:`VARIANTS`).
        seeds: one run per seed and variant.
        max_steps: optimiser steps of every run (paper: 27k VGG16, 15k ResNet-101).
        model: :class:`~sal_lightning.SALSegmenter` arguments (the variant sets ``use_selection``
            and ``use_attention``).
        data: :class:`~sal_lightning.VOCSegmentationDataModule` arguments (the step sets the root,
            splits, proxies, scores and strong ids); its ``batch_size`` is per device, or the
            global batch with the trainer option ``batch_sizes: global``.
        strong_ids: a list file of ids trained on their ground truth with weight 1 (the
            semi-supervised setting of Table IX).
    """

    variants: tuple[Variant, ...] = ("P2", "P3", "P4", "P5")
    seeds: tuple[int, ...] = (0,)
    max_steps: int = 15000
    model: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    strong_ids: str | None = None

    def __post_init__(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise ValueError(f"variants: expected some of {sorted(VARIANTS)}, got {unknown}")
        if not self.seeds:
            raise ValueError("seeds: give at least one seed")
        check_at_least("max_steps", self.max_steps, minimum=1)
        check_kwargs(MODEL, self.model, argument="model", reserved=MODEL_SET)
        check_kwargs(DATA, self.data, argument="data", reserved=DATA_SET)

    @property
    def batch_size(self) -> int:
        """The training batch size of ``data`` (the data module's default when unset)."""
        if "batch_size" in self.data:
            return int(self.data["batch_size"])
        from sal_lightning.data.datamodules import VOCSegmentationDataModule

        for klass in VOCSegmentationDataModule.__mro__:  # the class that declares it
            init = vars(klass).get("__init__")
            parameter = None if init is None else inspect.signature(init).parameters.get("batch_size")
            if parameter is not None:
                return int(parameter.default)
        raise TypeError("VOCSegmentationDataModule declares no batch_size")

    def batch_sizes(self) -> dict[str, int]:
        """The training batch size by setting name (the pipeline checks it against the devices)."""
        return {"data.batch_size": self.batch_size}

    def check(self, root: str) -> None:
        """What needs the file system or builds objects: the strong ids' list, the network (on the
        meta device), dense CRF when asked for, and the data settings."""
        from sal_lightning.data.datamodules import VOCSegmentationDataModule

        if self.strong_ids is not None and not Path(self.strong_ids).is_file():
            raise FileNotFoundError(f"strong_ids: id list {self.strong_ids} not found")
        build_on_meta(MODEL, self.model, argument="model")
        if self.model.get("crf"):
            check_crf("model.crf")
        try:
            VOCSegmentationDataModule(root, **self.data)
        except (TypeError, ValueError) as err:
            raise ValueError(f"data: {err}") from err


def retrain(
    root: PathLike,
    proxies: PathLike,
    *,
    out: PathLike,
    scores: PathLike | None = None,
    use_attention: bool = True,
    settings: RetrainSettings | None = None,
    train_split: str = "train_aug",
    val_split: str = "val",
    resume: bool = False,
    trainer: TrainerSettings | None = None,
) -> dict[str, Any]:
    """Train :class:`SALSegmenter` on the proxies once per seed; writes ``<out>/seed<k>.ckpt``.

    ``scores``: a ``scores.csv`` whose ``weight`` column selects the proxies (``None``: all of
    them, ``use_selection=False``). With ``resume`` the seeds whose checkpoint exists are skipped.
    Returns ``{"seed<k>": {"steps", "images", "loss"}}`` of the runs done (``loss``: the last
    step's).
    """
    from sal_lightning.data.datamodules import VOCSegmentationDataModule
    from sal_lightning.models.segmenter import SALSegmenter

    settings = settings or RetrainSettings()
    batch = (trainer or TrainerSettings()).local_batch(settings.batch_size, "data.batch_size")
    folder = Path(out)
    result: dict[str, Any] = {}
    for seed in settings.seeds:
        ckpt = folder / f"seed{seed}.ckpt"
        if resume and ckpt.is_file():
            continue
        seed_everything(seed)
        model = SALSegmenter(
            **model_classes(root, settings.model),
            **{**settings.model, "use_selection": scores is not None, "use_attention": use_attention},
        )
        data = VOCSegmentationDataModule(
            str(root),
            **{
                **settings.data,
                "batch_size": batch,
                "train_split": train_split,
                "val_split": val_split,
                "proxies": str(proxies),
                "scores": None if scores is None else str(scores),
                "strong_ids": settings.strong_ids,
            },
        )
        loop = make_trainer(
            trainer, progress=f"seed {seed}", max_steps=settings.max_steps, limit_val_batches=0
        )
        loop.fit(model, datamodule=data)
        save_checkpoint(loop, ckpt)
        images = len(data.train_dataset) if data.train_dataset is not None else 0  # type: ignore[arg-type]
        loss = final_losses(loop).get("loss")
        result[f"seed{seed}"] = {"steps": loop.global_step, "images": images, "loss": loss}
    return result


def variant_runs(
    folder: PathLike, variants: Sequence[str], *, seeds: Sequence[int]
) -> dict[str, dict[str, Path]]:
    """``{variant: {"seed<k>": <folder>/<variant>/seed<k>.ckpt}}``: the checkpoints of a retraining."""
    return {v: {f"seed{s}": Path(folder) / v / f"seed{s}.ckpt" for s in seeds} for v in variants}


def describe(variant: str) -> str:
    """The ablation row's description (``P1``: the step 1 network)."""
    return "step 1 network (tags only)" if variant == "P1" else VARIANTS[variant].what


def selection_table(paths: Workdir, variant: str) -> Path | None:
    """The scores table whose ``weight`` column a variant trains with (``None``: every proxy,
    weight 1), in ``paths``."""
    tables = {"coarse": paths.coarse_selection, "fine": paths.scores, "oracle": paths.oracle_selection}
    selection = VARIANTS[variant].selection
    return None if selection is None else tables[selection]


@dataclass
class Retrain(Step):
    """Step 4: SALSegmenter on the proxies, one run per seed, the same ``max_steps`` for every variant
    (:data:`VARIANTS`: P2 all proxies, P3 coarse selection, P4 refined selection, P5 refined
    selection + attention loss, oracle), into ``retrain/<variant>/seed<k>.ckpt``."""

    kind = "retrain"
    root: str
    train_split: str
    val_split: str
    variant: str
    settings: RetrainSettings

    @property
    def name(self) -> str:
        return f"retrain-{self.variant}"

    def check(self) -> None:
        check_split(self.root, self.train_split, argument="train_split")
        check_split(self.root, self.val_split, argument="val_split")
        self.settings.check(self.root)
        if self.variant == "oracle" and not has_ground_truth(
            self.root, read_split(resolve_voc_root(self.root), self.train_split)
        ):
            raise ValueError(
                f"retrain.variants: 'oracle' ranks proxies by their true quality, but {self.train_split!r} "
                f"of {self.root} has ids without a ground-truth mask; remove 'oracle' from the variants"
            )

    def inputs(self) -> tuple[str, ...]:
        table = selection_table(ARTEFACTS, self.variant)
        return names((ARTEFACTS.proxies,) if table is None else (ARTEFACTS.proxies, table))

    def outputs(self) -> tuple[str, ...]:
        return names((ARTEFACTS.retrained(self.variant),))

    def run(self, ctx: StepContext) -> dict[str, Any]:
        paths = ctx.paths
        return retrain(
            self.root,
            paths.proxies,
            out=paths.retrained(self.variant),
            scores=selection_table(paths, self.variant),
            use_attention=VARIANTS[self.variant].use_attention,
            settings=self.settings,
            train_split=self.train_split,
            val_split=self.val_split,
            resume=not ctx.fresh,
            trainer=ctx.trainer,
        )
