"""The scoring stages as Lightning loops: coarse scores, scorer training, fine scores, selection.

This module imports Lightning (the rest of :mod:`sal_lightning.scoring` does not). Every stage
that visits a whole dataset is a Lightning ``predict`` loop with :class:`ScoresWriter`, so
``devices=N, strategy="ddp"`` (or ``torchrun`` / SLURM) shards it across processes; the writer
gathers the rows of all ranks and rank 0 writes ``scores.csv`` (DESIGN section 4) through
:func:`sal_lightning.data.io.write_scores`, which keeps the columns other steps filled.

- :func:`score_coarse`: AC, CD, SC (Eq. 3-5); image decoding, reference masks and their CRFs run in
  DataLoader worker processes (``num_workers``).
- :func:`train_mask_scorer`: fits :class:`~sal_lightning.models.MaskScorer` on a sample folder
  (:func:`~sal_lightning.scoring.synthesis.build_scorer_training_set`).
- :func:`score_fine`: ``P`` for every proxy with a trained scorer, then :func:`apply_selection`:
  ``SF = P * CD`` (Eq. 7) and ``weight`` from ``tau`` (Eq. 9, hard, or a soft mode).
- :func:`score_folder`: all of it for any folder of pseudo-labels and a trained checkpoint.

``trainer_kwargs`` go to ``lightning.Trainer`` (``accelerator``, ``devices``, ``strategy`` ...).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, ModelCheckpoint
from torch.utils.data import DataLoader

from sal_lightning.data.io import check_unique_ids, read_scores, scores_sidecar, write_scores
from sal_lightning.data.layout import read_split, resolve_voc_root
from sal_lightning.data.scorer_data import AgreementDataset, ProxyMaskDataset
from sal_lightning.data.transforms import pad_collate
from sal_lightning.losses import selection_weights
from sal_lightning.losses.selection import WeightMode
from sal_lightning.models.reference_net import ReferenceNet
from sal_lightning.models.scorer import MaskScorer
from sal_lightning.scoring.coarse import CoarseConfig, CoarseScoringDataset, list_collate, score_samples
from sal_lightning.scoring.metrics import coarse_score
from sal_lightning.scoring.references import ReferenceConfig, SaliencySource, reference_config_dict

PathLike = str | os.PathLike[str]


class ScoresWriter(BasePredictionWriter):
    """Collects ``{"id": [...], <column>: [B]}`` predictions and writes them to ``scores.csv``.

    At the end of the predict epoch the rows of every rank are gathered (``all_gather_object``)
    and rank 0 writes them with ``config`` into the sidecar; ids seen twice (a padded DDP shard)
    are written once. ``rows`` holds the merged rows afterwards (on every rank).
    """

    def __init__(
        self, path: PathLike, columns: Sequence[str], config: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(write_interval="batch")
        self.path = Path(path)
        self.columns = tuple(columns)
        self.config = dict(config or {})
        self.rows: dict[str, dict[str, float]] = {}

    def on_predict_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.rows = {}

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        values = {c: torch.as_tensor(prediction[c]).detach().float().cpu().tolist() for c in self.columns}
        for k, image_id in enumerate(prediction["id"]):
            self.rows[image_id] = {c: float(values[c][k]) for c in self.columns}

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, self.rows)
            merged: dict[str, dict[str, float]] = {}
            for part in gathered:
                merged.update(part)
            self.rows = merged
        if trainer.is_global_zero:
            write_scores(self.path, self.rows, self.config)
        trainer.strategy.barrier()


class CoarseScorer(L.LightningModule):
    """A parameter-free LightningModule whose ``predict_step`` computes AC, CD and SC.

    Batches are lists of :class:`~sal_lightning.scoring.coarse.CoarseScoringDataset` samples;
    returns ``{"id", "ac", "cd", "sc"}``.
    """

    def __init__(self, config: CoarseConfig | None = None) -> None:
        super().__init__()
        self.config = config or CoarseConfig()

    def predict_step(
        self, batch: list[dict[str, Any]], batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Any]:
        return score_samples(batch, self.config)


def _trainer(callbacks: list[Any], trainer_kwargs: Mapping[str, Any] | None, progress: bool) -> L.Trainer:
    kwargs: dict[str, Any] = {"accelerator": "auto", "devices": 1, "logger": False}
    kwargs.update(trainer_kwargs or {})
    kwargs.setdefault("enable_progress_bar", progress)
    kwargs.setdefault("enable_model_summary", False)
    kwargs["callbacks"] = [*kwargs.get("callbacks", []), *callbacks]
    return L.Trainer(**kwargs)


def resolve_ids(
    root: PathLike, ids: Sequence[str] | PathLike | None, proxy_dir: PathLike | None = None
) -> list[str]:
    """Image ids from a list, a split name / list file of the VOC root, or (``None``) every
    ``<id>.png`` in ``proxy_dir`` (sorted)."""
    if ids is None:
        if proxy_dir is None:
            raise ValueError("ids: give ids, a split, or a proxy_dir to take them from")
        folder = Path(proxy_dir)
        if not folder.is_dir():
            raise FileNotFoundError(f"proxy_dir: folder {folder} not found")
        found = sorted(p.stem for p in folder.glob("*.png") if not p.name.startswith("."))
        if not found:
            raise FileNotFoundError(f"{folder}: no proxy PNGs found")
        return check_unique_ids(found, str(folder))
    if isinstance(ids, str | os.PathLike):
        return read_split(resolve_voc_root(root), ids)
    return check_unique_ids(list(ids), "ids")


def score_coarse(
    root: PathLike,
    proxy_dir: PathLike,
    scores_path: PathLike,
    ids: Sequence[str] | PathLike | None = None,
    reference_dir: PathLike | None = None,
    saliency: SaliencySource = None,
    reference_config: ReferenceConfig | None = None,
    config: CoarseConfig | None = None,
    batch_size: int = 8,
    num_workers: int = 0,
    trainer_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Write ``ac``, ``cd``, ``sc`` of every proxy to ``scores_path``; returns ``{id: {ac, cd, sc}}``.

    ``ids``: a list, a split name / list file, or ``None`` for every PNG in ``proxy_dir``.
    Reference masks are read from ``reference_dir`` or built from ``saliency`` (and cached there);
    see :class:`~sal_lightning.scoring.coarse.CoarseScoringDataset`.
    """
    config = config or CoarseConfig()
    reference_config = reference_config or ReferenceConfig()
    image_ids = resolve_ids(root, ids, proxy_dir)
    dataset = CoarseScoringDataset(root, image_ids, proxy_dir, reference_dir, saliency, reference_config)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=list_collate,
    )
    saliency_name = (
        None if saliency is None else (str(saliency) if not callable(saliency) else repr(saliency))
    )
    writer = ScoresWriter(
        scores_path,
        ("ac", "cd", "sc"),
        {
            "step": "coarse",
            "proxy_dir": str(proxy_dir),
            "reference_dir": None if reference_dir is None else str(reference_dir),
            "saliency": saliency_name,
            "reference": reference_config_dict(reference_config),
            "coarse": config.as_dict(),
        },
    )
    trainer = _trainer([writer], trainer_kwargs, progress)
    trainer.predict(CoarseScorer(config), loader, return_predictions=False)
    return writer.rows


def train_mask_scorer(
    samples_dir: PathLike,
    out_dir: PathLike,
    model: MaskScorer | None = None,
    max_epochs: int = 50,
    batch_size: int = 8,
    val_fraction: float = 0.1,
    num_workers: int = 0,
    seed: int = 0,
    trainer_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> Path:
    """Fit a :class:`MaskScorer` (paper: lr 1e-5, batch 8, 50 epochs) on a sample folder.

    Checkpoints go to ``out_dir``; returns the best one by ``val/loss`` (the last one when there
    is no validation split).
    """
    from sal_lightning.data.datamodules import MaskScorerDataModule

    L.seed_everything(seed, workers=True, verbose=False)
    model = model or MaskScorer()
    data = MaskScorerDataModule(
        samples_dir=str(samples_dir),
        input_size=int(model.hparams["input_size"]),
        val_fraction=val_fraction,
        seed=seed,
        batch_size=batch_size,
        num_workers=num_workers,
    )
    monitor = "val/loss" if val_fraction > 0 else None
    checkpoint = ModelCheckpoint(
        dirpath=str(out_dir), filename="scorer-{epoch:02d}", monitor=monitor, save_last=True
    )
    # not deterministic=True: adaptive average pooling has no deterministic CUDA backward
    kwargs: dict[str, Any] = {"max_epochs": max_epochs, "logger": False}
    kwargs.update(trainer_kwargs or {})
    trainer = _trainer([checkpoint], kwargs, progress)
    trainer.fit(model, datamodule=data)
    best = checkpoint.best_model_path or checkpoint.last_model_path
    return Path(best)


def train_reference_net(
    root: PathLike,
    ids: Sequence[str],
    proxy_dir: PathLike,
    reference_dir: PathLike,
    out_dir: PathLike,
    model: ReferenceNet | None = None,
    max_epochs: int = 10,
    batch_size: int = 16,
    num_workers: int = 0,
    seed: int = 0,
    trainer_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> Path:
    """Fit a :class:`~sal_lightning.models.ReferenceNet` on the agreement of the proxies of ``ids``
    and their reference masks; returns the checkpoint written to ``out_dir`` (``last.ckpt``)."""
    L.seed_everything(seed, workers=True, verbose=False)
    model = model or ReferenceNet()
    dataset = AgreementDataset(
        root, ids, proxy_dir, reference_dir, int(model.hparams["input_size"]), hflip=True
    )
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers, collate_fn=pad_collate
    )
    checkpoint = ModelCheckpoint(dirpath=str(out_dir), save_last=True, save_top_k=0)
    kwargs: dict[str, Any] = {"max_epochs": max_epochs, "logger": False}
    kwargs.update(trainer_kwargs or {})
    trainer = _trainer([checkpoint], kwargs, progress)
    trainer.fit(model, loader)
    return Path(checkpoint.last_model_path)


#: the learned scorers, by the name their checkpoints carry (see :func:`load_scorer`)
SCORERS: dict[str, type[L.LightningModule]] = {"MaskScorer": MaskScorer, "ReferenceNet": ReferenceNet}


def load_scorer(checkpoint: PathLike) -> MaskScorer | ReferenceNet:
    """A trained :class:`MaskScorer` or :class:`ReferenceNet` from its checkpoint file (on the CPU)."""
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: {path} not found")
    data = torch.load(path, map_location="cpu", weights_only=False)
    hparams = data.get("hyper_parameters", {}) if isinstance(data, dict) else {}
    name = "ReferenceNet" if "encoder" in hparams else "MaskScorer"
    return SCORERS[name].load_from_checkpoint(str(path), map_location="cpu")  # type: ignore[return-value]


def score_fine(
    root: PathLike,
    proxy_dir: PathLike,
    checkpoint: PathLike | MaskScorer | ReferenceNet,
    scores_path: PathLike,
    ids: Sequence[str] | PathLike | None = None,
    batch_size: int = 16,
    num_workers: int = 0,
    trainer_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Write the scorer's prediction ``p`` of every proxy to ``scores_path``; returns ``{id: p}``.

    ``checkpoint``: a :class:`MaskScorer` or :class:`ReferenceNet` checkpoint file, or a model.
    Images and masks are resized to the model's ``input_size`` as in training. Follow with
    :func:`apply_selection` for ``sf`` and ``weight``.
    """
    if isinstance(checkpoint, MaskScorer | ReferenceNet):
        model, source = checkpoint, "in-memory model"
    else:
        model, source = load_scorer(checkpoint), str(checkpoint)
    image_ids = resolve_ids(root, ids, proxy_dir)
    dataset = ProxyMaskDataset(root, image_ids, proxy_dir, int(model.hparams["input_size"]))
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=pad_collate)
    writer = ScoresWriter(
        scores_path, ("p",), {"step": "fine", "checkpoint": source, "proxy_dir": str(proxy_dir)}
    )
    trainer = _trainer([writer], trainer_kwargs, progress)
    model.eval()
    trainer.predict(model, loader, return_predictions=False)
    return {i: row["p"] for i, row in writer.rows.items()}


def apply_selection(
    scores_path: PathLike,
    tau: float,
    mode: WeightMode = "hard",
    score: str = "sf",
    temperature: float = 0.05,
) -> dict[str, dict[str, float]]:
    """Fill ``sf = p * cd`` (Eq. 7, where ``p`` exists) and ``weight`` from ``score >= tau`` (Eq. 9).

    ``score``: the column the weights follow, ``"sf"`` (refined selection, the paper's) or
    ``"sc"`` (coarse selection). ``mode``: ``"hard"`` (Eq. 9), ``"soft"`` or ``"score"`` (see
    :func:`sal_lightning.losses.selection_weights`). Returns the updated rows.
    """
    if score not in ("sf", "sc"):
        raise ValueError(f"score: expected 'sf' or 'sc', got {score!r}")
    rows = read_scores(scores_path)
    if not rows:
        raise ValueError(f"{scores_path}: no rows to select from")
    ids = list(rows)
    p = torch.tensor([rows[i]["p"] for i in ids], dtype=torch.float64)
    cd = torch.tensor([rows[i]["cd"] for i in ids], dtype=torch.float64)
    updates: dict[str, dict[str, float]] = {i: {} for i in ids}
    if not torch.isnan(p).all():
        if torch.isnan(cd).any():
            raise ValueError(f"{scores_path}: column 'cd' is incomplete; run coarse scoring first")
        sf = coarse_score(p, cd)
        for i, value in zip(ids, sf.tolist(), strict=True):
            rows[i]["sf"] = value
            updates[i]["sf"] = value
    values = torch.tensor([rows[i][score] for i in ids], dtype=torch.float64)
    if torch.isnan(values).all():
        raise ValueError(f"{scores_path}: column {score!r} is empty; run the step that fills it first")
    weights = selection_weights(values, tau, mode, temperature)
    for i, w in zip(ids, weights.tolist(), strict=True):
        updates[i]["weight"] = w
        rows[i]["weight"] = w
    write_scores(
        scores_path,
        updates,
        {"step": "select", "tau": tau, "mode": mode, "score": score, "temperature": temperature},
    )
    return rows


ScorerMethod = Literal["reference", "regression"]


def train_scorer_on(
    root: PathLike,
    ids: Sequence[str],
    proxy_dir: PathLike,
    reference_dir: PathLike,
    work_dir: PathLike,
    method: ScorerMethod = "reference",
    model: Mapping[str, Any] | None = None,
    max_epochs: int | None = None,
    batch_size: int | None = None,
    ac: Mapping[str, float] | None = None,
    seed: int = 0,
    trainer_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> Path:
    """Train a fine scorer on the proxies it will score (the paper's procedure); returns its checkpoint.

    ``method="reference"``: a :class:`ReferenceNet` on the agreement of proxies and references
    (default 10 epochs, batch 16); ``"regression"``: the paper's :class:`MaskScorer` on a training
    set synthesised into ``work_dir/samples`` (default 50 epochs, batch 8). ``model`` holds the
    class's arguments; checkpoints go to ``work_dir/checkpoints``.
    """
    from sal_lightning.scoring.synthesis import build_scorer_training_set

    work = Path(work_dir)
    ids = check_unique_ids(list(ids), "ids")
    L.seed_everything(seed, workers=True, verbose=False)  # the initial weights too
    if method == "reference":
        return train_reference_net(
            root, ids, proxy_dir, reference_dir, work / "checkpoints", ReferenceNet(**dict(model or {})),
            max_epochs or 10, batch_size or 16, seed=seed, trainer_kwargs=trainer_kwargs, progress=progress,
        )  # fmt: skip
    if method != "regression":
        raise ValueError(f"method: expected 'reference' or 'regression', got {method!r}")
    samples = build_scorer_training_set(
        root, ids, proxy_dir, reference_dir, work / "samples", ac=ac, overwrite=True, progress=progress
    )
    return train_mask_scorer(
        samples, work / "checkpoints", MaskScorer(**dict(model or {})), max_epochs or 50, batch_size or 8,
        seed=seed, trainer_kwargs=trainer_kwargs, progress=progress,
    )  # fmt: skip


def score_folder(
    root: PathLike,
    proxy_dir: PathLike,
    checkpoint: PathLike | MaskScorer | ReferenceNet | None,
    scores_path: PathLike,
    ids: Sequence[str] | PathLike | None = None,
    reference_dir: PathLike | None = None,
    saliency: SaliencySource = None,
    reference_config: ReferenceConfig | None = None,
    config: CoarseConfig | None = None,
    tau: float = 0.85,
    mode: WeightMode = "hard",
    batch_size: int = 8,
    num_workers: int = 0,
    trainer_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
    scorer_method: ScorerMethod | None = "reference",
    scorer_model: Mapping[str, Any] | None = None,
    scorer_epochs: int | None = None,
) -> dict[str, dict[str, float]]:
    """Score any folder of pseudo-labels: coarse scores, then ``p`` and ``sf``, then weights from
    ``tau``; returns the rows.

    ``p`` comes from ``checkpoint`` when given; else a scorer of ``scorer_method`` is trained on
    this very folder (:func:`train_scorer_on` with ``scorer_model`` and ``scorer_epochs``, in
    ``<scores folder>/scorer/``; reference masks are kept in ``reference_dir``, by default
    ``<scores folder>/references/``). ``scorer_method=None`` and no checkpoint: coarse scores only
    (``p`` and ``sf`` empty), and the weights follow ``sc``.

    ``scores_path`` (and its JSON sidecar) is written fresh: it holds exactly this run's rows and
    columns, never rows or scores of an earlier run that wrote the same file. The table is built
    beside it and moved into place at the end, so an interrupted run leaves the previous table as
    it was.
    """
    from lightning.pytorch.utilities import rank_zero_only

    rank = int(getattr(rank_zero_only, "rank", 0))  # set from the launcher's environment
    target = Path(scores_path)
    partial = target.with_name(f".{target.stem}.partial{target.suffix}")
    if rank == 0:
        for leftover in (partial, scores_sidecar(partial)):
            leftover.unlink(missing_ok=True)
    image_ids = resolve_ids(root, ids, proxy_dir)
    train = checkpoint is None and scorer_method is not None
    if train and reference_dir is None:
        reference_dir = target.parent / "references"
    rows = score_coarse(
        root, proxy_dir, partial, image_ids, reference_dir, saliency, reference_config, config,
        batch_size, num_workers, trainer_kwargs, progress,
    )  # fmt: skip
    if train:
        assert scorer_method is not None and reference_dir is not None
        checkpoint = train_scorer_on(
            root, image_ids, proxy_dir, reference_dir, target.parent / "scorer", scorer_method,
            scorer_model, scorer_epochs, ac={i: r["ac"] for i, r in rows.items()},
            trainer_kwargs=trainer_kwargs, progress=progress,
        )  # fmt: skip
    if checkpoint is not None:
        score_fine(
            root, proxy_dir, checkpoint, partial, image_ids, 2 * batch_size, num_workers,
            trainer_kwargs, progress,
        )  # fmt: skip
    if rank != 0:  # rank 0 selects and moves the table into place
        return {}
    rows = apply_selection(partial, tau, mode, "sf" if checkpoint is not None else "sc")
    os.replace(scores_sidecar(partial), scores_sidecar(target))
    os.replace(partial, target)
    return rows


def nan_to_none(value: float) -> float | None:
    """``None`` for NaN (for printing and JSON)."""
    return None if value != value or math.isinf(value) else value
