"""The fine scorer, trained on the proxies it will score (SAL-Net Sec. III-B2).

Two scorers, one entry point (:func:`train_scorer`, settings :class:`ScorerSettings`):

- ``method="regression"`` (the paper's): :class:`~sal_lightning.models.MaskScorer` (Table I)
  regresses AC (Eq. 6) on a training set synthesised from the proxies
  (:func:`~sal_lightning.stages.trainset.build_scorer_training_set`); :func:`train_mask_scorer`
  trains it on any sample folder;
- ``method="reference"`` (this library's): :class:`~sal_lightning.models.ReferenceNet` learns the
  foreground from the pixels where the proxies and their reference masks agree
  (:func:`train_reference_net`).

:func:`load_scorer` reads either kind back from its checkpoint. Beside the checkpoints,
``training.json`` holds the steps and the last step's loss of the training.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sal_lightning._atomic import atomic_write_text
from sal_lightning.data.layout import resolve_ids
from sal_lightning.scoring.synthesis import SynthesisConfig
from sal_lightning.stages.checks import build_on_meta, check_at_least, check_kwargs, resolve
from sal_lightning.stages.trainer import TrainerOptions, final_losses, make_trainer, seed_everything

if not TYPE_CHECKING:  # annotations only, read without importing Lightning (sal_lightning._lazy)
    MaskScorer = ReferenceNet = Any
else:
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch.utils.data import DataLoader

    from sal_lightning.data.datamodules import MaskScorerDataModule
    from sal_lightning.models.reference_net import ReferenceNet
    from sal_lightning.models.scorer import MaskScorer

PathLike = str | os.PathLike[str]
ScorerMethod = Literal["regression", "reference"]
#: each method's network (imported when used), and its epochs and batch size when unset
SCORERS: dict[str, tuple[str, int, int]] = {
    "regression": ("sal_lightning.models.scorer:MaskScorer", 50, 8),
    "reference": ("sal_lightning.models.reference_net:ReferenceNet", 10, 16),
}
#: the file beside a scorer's checkpoints with its training's steps and final losses
TRAINING_FILE = "training.json"


@dataclass(frozen=True)
class ScorerSettings:
    """How the fine scorer is trained on the proxies it will score.

    Attributes:
        method: ``"regression"`` (the paper's :class:`~sal_lightning.models.MaskScorer`, Table I,
            on a synthesised training set) or ``"reference"`` (this library's
            :class:`~sal_lightning.models.ReferenceNet` on the proxy / reference agreement).
        model: arguments of the method's network (``input_size``, ``lr``, ``arch``...).
        synthesis: the regression training set's thresholds and shares (``"regression"`` only).
        max_epochs: epochs (unset: 50 for regression, the paper's; 10 for reference).
        batch_size: batch size (unset: 8 for regression, the paper's; 16 for reference).
        seed: seed of the training set and of the network's initial weights.
    """

    method: ScorerMethod = "regression"
    model: dict[str, Any] = field(default_factory=dict)
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    max_epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in SCORERS:
            raise ValueError(f"method: expected 'regression' or 'reference', got {self.method!r}")
        for name in ("max_epochs", "batch_size"):
            if getattr(self, name) is not None:
                check_at_least(name, getattr(self, name), 1)
        check_at_least("seed", self.seed, 0)
        check_kwargs(SCORERS[self.method][0], self.model, "model")
        if self.method == "reference" and self.synthesis != SynthesisConfig():
            raise ValueError(
                "synthesis: only method 'regression' synthesises a training set, so these settings "
                "would do nothing with method 'reference'; remove them or set method: regression"
            )

    @property
    def network(self) -> type[MaskScorer] | type[ReferenceNet]:
        """The method's LightningModule class."""
        return resolve(SCORERS[self.method][0])  # type: ignore[no-any-return]

    @property
    def epochs(self) -> int:
        """``max_epochs``, or the method's default."""
        return self.max_epochs or SCORERS[self.method][1]

    @property
    def batch(self) -> int:
        """``batch_size``, or the method's default."""
        return self.batch_size or SCORERS[self.method][2]

    def batch_sizes(self) -> dict[str, int]:
        """The training batch size by setting name (the pipeline checks it against the devices)."""
        return {"batch_size": self.batch}

    def check(self) -> None:
        """Build the network on the meta device: a bad ``model`` setting fails now."""
        build_on_meta(self.network, self.model, "model")


def _fit(
    model: MaskScorer | ReferenceNet,
    data: MaskScorerDataModule | DataLoader[Any],
    checkpoint: ModelCheckpoint,
    trainer: TrainerOptions | None,
    epochs: int,
) -> None:
    from sal_lightning.data.datamodules import MaskScorerDataModule

    # not deterministic=True: adaptive average pooling has no deterministic CUDA backward
    loop = make_trainer(
        trainer, callbacks=[checkpoint], progress=True, max_epochs=epochs, enable_checkpointing=True
    )
    if isinstance(data, MaskScorerDataModule):
        loop.fit(model, datamodule=data)
    else:
        loop.fit(model, data)
    if loop.is_global_zero and checkpoint.dirpath is not None:
        summary = {"steps": loop.global_step, **final_losses(loop)}
        atomic_write_text(Path(checkpoint.dirpath) / TRAINING_FILE, json.dumps(summary, indent=2) + "\n")
    loop.strategy.barrier("scorer-training-summary")


def train_mask_scorer(
    samples: PathLike,
    out: PathLike,
    model: MaskScorer | None = None,
    max_epochs: int = 50,
    batch_size: int = 8,
    val_fraction: float = 0.1,
    num_workers: int = 0,
    seed: int = 0,
    trainer: TrainerOptions | None = None,
) -> Path:
    """Fit a :class:`MaskScorer` (paper: lr 1e-5, batch 8, 50 epochs) on a sample folder.

    Checkpoints go to ``out``; returns the best one by ``val/loss`` (the last one when there is
    no validation split). ``batch_size`` is per device, or global with
    ``trainer.batch_sizes="global"``.

    Args:
        samples: the sample folder (``sal-lightning score trainset`` writes one).
        out: the folder of the checkpoints.
        model: the network (default: the paper's :class:`MaskScorer`).
        max_epochs: epochs (paper: 50).
        batch_size: samples per step (paper: 8).
        val_fraction: share of the images whose samples validate (0: no validation).
        num_workers: DataLoader worker processes.
        seed: seed of the split and of the shuffling.
        trainer: Lightning settings (``devices=N`` trains on N processes).
    """
    from lightning.pytorch.callbacks import ModelCheckpoint

    from sal_lightning.data.datamodules import MaskScorerDataModule
    from sal_lightning.models.scorer import MaskScorer

    seed_everything(seed)
    model = model or MaskScorer()
    data = MaskScorerDataModule(
        samples=str(samples),
        input_size=int(model.hparams["input_size"]),
        val_fraction=val_fraction,
        seed=seed,
        batch_size=(trainer or TrainerOptions()).local_batch(batch_size, "batch_size"),
        num_workers=num_workers,
    )
    monitor = "val/loss" if val_fraction > 0 else None
    checkpoint = ModelCheckpoint(
        dirpath=str(out), filename="scorer-{epoch:02d}", monitor=monitor, save_last=True
    )
    _fit(model, data, checkpoint, trainer, max_epochs)
    return Path(checkpoint.best_model_path or checkpoint.last_model_path)


def train_reference_net(
    root: PathLike,
    proxies: PathLike,
    references: PathLike,
    out: PathLike,
    split: str | Sequence[str] | None = None,
    model: ReferenceNet | None = None,
    max_epochs: int = 10,
    batch_size: int = 16,
    num_workers: int = 0,
    seed: int = 0,
    trainer: TrainerOptions | None = None,
) -> Path:
    """Fit a :class:`ReferenceNet` on the agreement of the proxies and their reference masks; returns
    the checkpoint written to ``out`` (``last.ckpt``)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from sal_lightning.data.datamodules import make_loader
    from sal_lightning.data.proxy_data import AgreementDataset
    from sal_lightning.models.reference_net import ReferenceNet

    seed_everything(seed)
    model = model or ReferenceNet()
    ids = resolve_ids(root, split, proxies)
    dataset = AgreementDataset(root, ids, proxies, references, int(model.hparams["input_size"]), hflip=True)
    checkpoint = ModelCheckpoint(dirpath=str(out), save_last=True, save_top_k=0)
    batch = (trainer or TrainerOptions()).local_batch(batch_size, "batch_size")
    loader = make_loader(dataset, batch, train=True, num_workers=num_workers, drop_last=False)
    _fit(model, loader, checkpoint, trainer, max_epochs)
    return Path(checkpoint.last_model_path)


def train_scorer(
    root: PathLike,
    proxies: PathLike,
    references: PathLike,
    workdir: PathLike,
    split: str | Sequence[str] | None = None,
    settings: ScorerSettings | None = None,
    scores: PathLike | None = None,
    trainer: TrainerOptions | None = None,
) -> tuple[Path, int]:
    """Train a fine scorer on the proxies it will score (the paper's procedure).

    Returns its checkpoint (in ``workdir/checkpoints``) and the number of training samples
    (synthesised into ``workdir/samples`` for ``"regression"``; the images for ``"reference"``).
    ``scores``: the coarse scores, whose ``ac`` column the regression training set reuses.
    """
    from sal_lightning.models.reference_net import ReferenceNet
    from sal_lightning.models.scorer import MaskScorer
    from sal_lightning.stages.trainset import build_scorer_training_set

    settings = settings or ScorerSettings()
    work = Path(workdir)
    ids = resolve_ids(root, split, proxies)
    if settings.method == "reference":
        seed_everything(settings.seed)  # the initial weights too
        best = train_reference_net(
            root, proxies, references, work / "checkpoints", ids, ReferenceNet(**settings.model),
            settings.epochs, settings.batch, seed=settings.seed, trainer=trainer,
        )  # fmt: skip
        return best, len(ids)
    samples = build_scorer_training_set(
        root, proxies, references, work / "samples", ids, settings.synthesis, scores, overwrite=True
    )
    seed_everything(settings.seed)  # the initial weights too
    best = train_mask_scorer(
        samples, work / "checkpoints", MaskScorer(**settings.model), settings.epochs, settings.batch,
        seed=settings.seed, trainer=trainer,
    )  # fmt: skip
    index = samples / "samples.csv"
    return best, sum(1 for _ in index.open()) - 1 if index.is_file() else 0


def load_scorer(checkpoint: PathLike) -> MaskScorer | ReferenceNet:
    """A trained :class:`MaskScorer` or :class:`ReferenceNet` from its checkpoint file (on the CPU)."""
    import torch

    from sal_lightning.models.reference_net import ReferenceNet
    from sal_lightning.models.scorer import MaskScorer

    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: {path} not found")
    data = torch.load(path, map_location="cpu", weights_only=False)
    hparams = data.get("hyper_parameters", {}) if isinstance(data, dict) else {}
    network = ReferenceNet if "encoder" in hparams else MaskScorer
    return network.load_from_checkpoint(str(path), map_location="cpu")  # type: ignore[return-value]
