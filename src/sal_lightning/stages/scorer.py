"""The fine scorer, trained on the proxies it will score (SAL-Net Sec. III-B2).

A scorer is registered in one place, :data:`SCORERS` (:func:`register_scorer` adds one): its
LightningModule (imported when used), its default epochs and batch size, and its training function.
Two come with the library:

- ``"regression"`` (the paper's): :class:`~sal_lightning.models.MaskScorer` (Table I) regresses AC
  (Eq. 6) on a training set synthesised from the proxies
  (:func:`~sal_lightning.stages.trainset.build_scorer_training_set`);
  :func:`~sal_lightning.stages.scorer_training.train_mask_scorer` trains it on any sample folder;
- ``"agreement"`` (this library's): :class:`~sal_lightning.models.AgreementNet` learns the
  foreground from the pixels where the proxies and their reference masks agree
  (:func:`~sal_lightning.stages.scorer_training.train_agreement_net`).

:func:`train_scorer` trains the one :class:`ScorerSettings` names; every checkpoint it writes names
its method (``checkpoint["scorer_method"]``), which :func:`load_scorer` reads back. Beside the
checkpoints, ``training.json`` holds the steps and the last step's loss of the training.
:class:`TrainScorer` is the pipeline's step.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sal_lightning._atomic import atomic_path, atomic_write_text
from sal_lightning.data.layout import resolve_ids
from sal_lightning.scoring.synthesis import SynthesisSettings
from sal_lightning.stages.checks import build_on_meta, check_at_least, check_kwargs, check_split, resolve
from sal_lightning.stages.coarse import CoarseSettings
from sal_lightning.stages.scorer_training import (
    METHOD_KEY,
    ScorerTraining,
    train_agreement,
    train_regression,
)
from sal_lightning.stages.step import ARTEFACTS, Step, StepContext
from sal_lightning.stages.trainer import TrainerSettings

if not TYPE_CHECKING:  # annotations only, read without importing Lightning (sal_lightning._lazy)
    LightningModule = Any
else:
    from lightning.pytorch import LightningModule

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class ScorerSettings:
    """How the fine scorer is trained on the proxies it will score (the pipeline's ``scorer``
    section).

    Attributes:
        method: a registered scorer (:data:`SCORERS`): ``"regression"`` (the paper's
            :class:`~sal_lightning.models.MaskScorer`, Table I, on a synthesised training set) or
            ``"agreement"`` (this library's :class:`~sal_lightning.models.AgreementNet` on the
            proxy / reference agreement).
        model: arguments of the method's network (``input_size``, ``lr``, ``arch``...).
        synthesis: the training set's thresholds and shares (a method that synthesises one only).
        max_epochs: epochs (unset: the method's, 50 for regression, the paper's; 10 for agreement).
        batch_size: batch size (unset: the method's, 8 for regression, the paper's; 16 for agreement).
        seed: seed of the training set and of the network's initial weights.
    """

    method: str = "regression"
    model: dict[str, Any] = field(default_factory=dict)
    synthesis: SynthesisSettings = field(default_factory=SynthesisSettings)
    max_epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in SCORERS:
            raise ValueError(f"method: expected one of {sorted(SCORERS)}, got {self.method!r}")
        for name in ("max_epochs", "batch_size"):
            if getattr(self, name) is not None:
                check_at_least(name, getattr(self, name), minimum=1)
        check_at_least("seed", self.seed, minimum=0)
        check_kwargs(self.scorer.module, self.model, argument="model")
        if not self.scorer.synthesises and self.synthesis != SynthesisSettings():
            raise ValueError(
                f"synthesis: method {self.method!r} synthesises no training set, so these settings "
                "would do nothing; remove them or set method: regression"
            )

    @property
    def scorer(self) -> Scorer:
        """The registered scorer of ``method``."""
        return SCORERS[self.method]

    @property
    def network(self) -> type[LightningModule]:
        """The method's LightningModule class."""
        return resolve(self.scorer.module)  # type: ignore[no-any-return]

    @property
    def epochs(self) -> int:
        """``max_epochs``, or the method's default."""
        return self.max_epochs or self.scorer.max_epochs

    @property
    def batch(self) -> int:
        """``batch_size``, or the method's default."""
        return self.batch_size or self.scorer.batch_size

    def batch_sizes(self) -> dict[str, int]:
        """The training batch size by setting name (the pipeline checks it against the devices)."""
        return {"batch_size": self.batch}

    def check(self) -> None:
        """Build the network on the meta device: a bad ``model`` setting fails now."""
        build_on_meta(self.network, self.model, argument="model")


@dataclass(frozen=True)
class Scorer:
    """Everything a fine scorer is.

    Attributes:
        module: its LightningModule, ``"package.module:Class"`` (imported when used); its
            ``predict_step`` returns ``{"id": [...], "p": [B]}`` for batches of
            :class:`~sal_lightning.data.proxy_data.ProxyMaskDataset`, and its hyperparameters hold
            ``input_size``.
        max_epochs: epochs when ``ScorerSettings.max_epochs`` is unset.
        batch_size: batch size when ``ScorerSettings.batch_size`` is unset.
        train: trains it (given a :class:`~sal_lightning.stages.scorer_training.ScorerTraining`,
            through :func:`~sal_lightning.stages.scorer_training.fit_scorer`, which names the
            method in every checkpoint); returns its checkpoint and the number of training samples.
        synthesises: whether it uses ``ScorerSettings.synthesis``.
    """

    module: str
    max_epochs: int
    batch_size: int
    train: Callable[[ScorerTraining], tuple[Path, int]]
    synthesises: bool = False


#: the registered scorers by method name
SCORERS: dict[str, Scorer] = {
    "regression": Scorer("sal_lightning.models.scorer:MaskScorer", 50, 8, train_regression, synthesises=True),
    "agreement": Scorer("sal_lightning.models.agreement_net:AgreementNet", 10, 16, train_agreement),
}


def register_scorer(method: str, scorer: Scorer) -> None:
    """Make ``scorer`` the method ``method``: ``ScorerSettings(method=...)``, ``--scorer.method``,
    :func:`train_scorer` and :func:`load_scorer` know it from now on (in this process)."""
    if method in SCORERS and SCORERS[method] != scorer:
        raise ValueError(f"method: {method!r} is registered already ({SCORERS[method].module})")
    SCORERS[method] = scorer


def train_scorer(
    root: PathLike,
    proxies: PathLike,
    *,
    references: PathLike,
    workdir: PathLike,
    split: str | Sequence[str] | None = None,
    settings: ScorerSettings | None = None,
    scores: PathLike | None = None,
    coarse: CoarseSettings | None = None,
    trainer: TrainerSettings | None = None,
) -> tuple[Path, int]:
    """Train the fine scorer of ``settings.method`` on the proxies it will score (the paper's
    procedure).

    Returns its checkpoint (in ``workdir/checkpoints``) and the number of training samples
    (synthesised into ``workdir/samples`` for ``"regression"``; the images for ``"agreement"``).
    ``scores``: the coarse scores, whose ``ac`` column a synthesised training set reuses;
    ``coarse``: the settings of Eq. 3 they were computed with.
    """
    settings = settings or ScorerSettings()
    job = ScorerTraining(
        root,
        proxies,
        references,
        Path(workdir),
        ids=resolve_ids(root, split, proxies),
        method=settings.method,
        module=settings.scorer.module,
        model=settings.model,
        epochs=settings.epochs,
        batch_size=settings.batch,
        seed=settings.seed,
        synthesis=settings.synthesis,
        scores=scores,
        coarse=coarse,
        trainer=trainer,
    )
    return settings.scorer.train(job)


def load_scorer(checkpoint: PathLike) -> LightningModule:
    """A trained scorer from its checkpoint file (on the CPU): the registered module of the method
    the checkpoint names."""
    import torch

    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: {path} not found")
    data = torch.load(path, map_location="cpu", weights_only=False)
    method = data.get(METHOD_KEY) if isinstance(data, dict) else None
    if method is None:
        raise ValueError(
            f"checkpoint: {path} names no scorer method (no {METHOD_KEY!r} entry); use a checkpoint "
            "of the library's scorer training (the pipeline's scorer step, score train-scorer, score folder)"
        )
    if method not in SCORERS:
        raise ValueError(
            f"checkpoint: {path} holds a {method!r} scorer, which is not registered; the registered "
            f"ones are {sorted(SCORERS)} (register_scorer adds one)"
        )
    network = resolve(SCORERS[method].module)
    return network.load_from_checkpoint(str(path), map_location="cpu")  # type: ignore[no-any-return]


@dataclass
class TrainScorer(Step):
    """The fine scorer, trained on this dataset's own proxies (:class:`ScorerSettings`), into
    ``scorer/scorer.ckpt``, with how it was trained in ``scorer/scorer.json``."""

    kind = "scorer"
    reads = (ARTEFACTS.proxies, ARTEFACTS.references, ARTEFACTS.coarse)
    writes = (ARTEFACTS.scorer,)
    root: str
    split: str
    settings: ScorerSettings
    coarse: CoarseSettings = field(default_factory=CoarseSettings)

    def check(self) -> None:
        check_split(self.root, self.split, argument="train_split")
        self.settings.check()

    def run(self, ctx: StepContext) -> dict[str, Any]:
        paths, settings = ctx.paths, self.settings
        best, samples = train_scorer(
            self.root,
            paths.proxies,
            references=paths.references,
            workdir=paths.scorer,
            split=self.split,
            settings=settings,
            scores=paths.coarse_scores,
            coarse=self.coarse,
            trainer=ctx.trainer,
        )
        with atomic_path(paths.scorer_checkpoint) as tmp:
            shutil.copyfile(best, tmp)
        trained: dict[str, Any] = {"method": settings.method, "network": settings.network.__name__}
        trained |= {"model": settings.model, "max_epochs": settings.epochs, "batch_size": settings.batch}
        trained["samples"] = samples
        atomic_write_text(paths.scorer_record, json.dumps(trained, indent=2, default=str) + "\n")
        return {"method": settings.method, "samples": samples, "checkpoint": "scorer/scorer.ckpt"}
