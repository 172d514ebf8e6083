"""The SAL-Net steps as pipeline :class:`~sal_lightning.pipeline.runner.Step` objects.

Each step is a dataclass (its fields are its configuration) over functions that also work alone
(``sal_lightning.models.proxy_steps``, ``sal_lightning.scoring``, :class:`SALSegmenter`). The
workdir they share::

    step1/                 step 1 work folder: cam.ckpt, cams/, seeds/, proxynet.ckpt, proxies/
    references/<id>.png    reference masks H_i (saliency + CRF)
    coarse/scores.csv      AC, CD, SC (Eq. 3-5)
    scorer/                scorer training set (samples/), checkpoints, scorer.ckpt
    fine/scores.csv        + P and SF (Eq. 6-7)
    scores.csv             every column, ``weight`` from SF and tau (Eq. 9): the paper's selection
    selection/coarse.csv   the same table with ``weight`` from SC (coarse selection, P3)
    retrain/P2..P5/        seed<k>.ckpt: SALSegmenter retrained on the proxies
    evaluation/            val predictions of P1..P5 (multi-scale + CRF), results.json
    report.md, figures/    the ablation table, scorer correlations, tau sweep, overlays

Every step runs its Lightning loops with the pipeline's ``trainer`` keyword arguments, so
``devices=N, strategy="ddp"`` shards all of them.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from tqdm import tqdm

from sal_lightning._atomic import atomic_path, atomic_write_text
from sal_lightning.data.io import read_label_png, read_scores, write_label_png, write_scores
from sal_lightning.data.layout import read_split, resolve_voc_root
from sal_lightning.pipeline.runner import Step, StepContext

#: the retraining variants of the paper's ablation (Table VI): selection scores and attention
VARIANTS: dict[str, dict[str, Any]] = {
    "P2": {"scores": None, "use_attention": False, "what": "retrain on all proxies"},
    "P3": {"scores": "selection/coarse.csv", "use_attention": False, "what": "coarse selection (SC)"},
    "P4": {"scores": "scores.csv", "use_attention": False, "what": "refined selection (SF)"},
    "P5": {"scores": "scores.csv", "use_attention": True, "what": "refined selection + attention loss"},
    "oracle": {
        "scores": "selection/oracle.csv",
        "use_attention": False,
        "what": "oracle selection: as many as P4, the best by true quality",
    },
}
PROXIES = "step1/proxies"
P1_PREDICTIONS = "step1/p1/proxies"  # ProxyNet on the evaluation split (predict_proxies' layout)


def _trainer_options(ctx: StepContext, **defaults: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "logger": False,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    options.update(defaults)
    options.update(ctx.trainer)
    return options


# --------------------------------------------------------------------------- eager checks


def check_split(root: str, split: str | None, argument: str) -> list[str]:
    """The ids of ``split`` in the VOC root (raises naming the root, the split list and the fix)."""
    if split is None:
        return []
    try:
        return read_split(resolve_voc_root(root), split)
    except (OSError, ValueError) as err:
        raise type(err)(f"{argument}: {err}") from err


def check_folder(folder: str | None, argument: str) -> None:
    """Raise ``FileNotFoundError`` naming ``argument`` unless ``folder`` is ``None`` or a folder."""
    if folder is not None and not Path(folder).is_dir():
        raise FileNotFoundError(f"{argument}: folder {folder} not found")


def check_at_least(argument: str, value: Any, minimum: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{argument}: expected an integer >= {minimum}, got {value!r}")


def check_share(argument: str, value: Any, low_open: bool) -> None:
    """Raise ``ValueError`` unless ``value`` is a number in [0, 1] (``(0, 1]`` when ``low_open``)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value <= 1
    ok = ok and (value > 0 if low_open else value >= 0)
    if not ok:
        raise ValueError(
            f"{argument}: expected a number in {'(0, 1]' if low_open else '[0, 1]'}, got {value!r}"
        )


def check_kwargs(target: Any, kwargs: dict[str, Any], argument: str, reserved: tuple[str, ...] = ()) -> None:
    """Raise ``ValueError`` for a key of ``kwargs`` that ``target``'s signature does not take, or that
    the step sets itself (``reserved``); the message lists the keys it takes."""
    import inspect

    names = [n for n in inspect.signature(target).parameters if n not in ("self", "args", "kwargs")]
    unknown = sorted(set(kwargs) - set(names))
    if unknown:
        takes = sorted(set(names) - set(reserved))
        raise ValueError(f"{argument}: unknown setting(s) {unknown}; {target.__name__} takes {takes}")
    taken = sorted(set(kwargs) & set(reserved))
    if taken:
        raise ValueError(
            f"{argument}: {taken} are set by the step itself; remove them from the configuration"
        )


def build_on_meta(factory: Any, kwargs: dict[str, Any], argument: str) -> None:
    """Construct ``factory(**kwargs)`` on PyTorch's meta device (no memory, nothing downloaded: a
    hub ``encoder_weights`` name is dropped, a weights file only has to exist), so every check its
    constructor makes (backbone names, sizes...) runs now; raise ``ValueError`` naming ``argument``."""
    import warnings

    import torch

    kwargs = dict(kwargs)
    for key in [k for k in kwargs if k.endswith("encoder_weights")]:
        value = kwargs.pop(key)
        is_file = isinstance(value, str) and (
            "/" in value or value.endswith((".pth", ".pt", ".ckpt", ".bin", ".safetensors"))
        )
        if is_file and not Path(value).is_file():
            raise FileNotFoundError(f"{argument}.{key}: weights file {value} not found")
    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            factory(**kwargs)
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"{argument}: {err}") from err


def check_crf(argument: str) -> None:
    """Raise ``ImportError`` naming the install command when dense CRF (the ``crf`` extra) is missing."""
    from sal_lightning.postprocess.crf import require_densecrf

    try:
        require_densecrf()
    except ImportError as err:
        raise ImportError(f"{argument} is on, but {err}") from err


# --------------------------------------------------------------------------- step 1


@dataclass
class MakeProxies(Step):
    """Step 1: CAM classifier -> seeds -> ProxyNet -> ``step1/proxies``; P1 = ProxyNet on ``eval_split``.

    ``preset`` names a :data:`~sal_lightning.models.proxy_steps.PRESETS` configuration and
    ``overrides`` changes its fields (``ProxyConfig``).
    """

    kind: ClassVar[str] = "proxies"
    writes: ClassVar[tuple[str, ...]] = ("step1",)
    sources: ClassVar[tuple[str, ...]] = ("saliency_dir",)
    root: str = ""
    preset: str = "paper"
    overrides: dict[str, Any] = field(default_factory=dict)
    saliency_dir: str | None = None
    eval_split: str | None = "val"

    def proxy_config(self) -> Any:
        from sal_lightning.models.proxy_steps import PRESETS

        if self.preset not in PRESETS:
            raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {self.preset!r}")
        try:
            return replace(PRESETS[self.preset], saliency_dir=self.saliency_dir, **self.overrides)
        except TypeError as err:
            fields = sorted(PRESETS[self.preset].__dataclass_fields__)
            raise ValueError(f"overrides: {err}; the settings of step 1 are {fields}") from err

    def check(self) -> None:
        from sal_lightning.models.proxy_steps import check_proxy_config

        config = self.proxy_config()
        check_split(self.root, config.train_split, "overrides.train_split")
        check_split(self.root, self.eval_split, "eval_split")
        check_folder(self.saliency_dir, "saliency_dir")
        check_proxy_config(config)
        if config.crf or config.constrain_weight > 0:
            check_crf("step 1's dense CRF (crf or constrain_weight)")

    def run(self, ctx: StepContext) -> dict[str, Any]:
        from sal_lightning.models.proxy_steps import label_quality, predict_proxies, run_proxies

        config = self.proxy_config()
        work = ctx.path("step1")
        report = run_proxies(self.root, work, config, ctx.trainer, resume=not ctx.fresh)
        result: dict[str, Any] = {k: report[k]["miou"] for k in ("seeds", "proxies") if k in report}
        if self.eval_split is not None:
            ids = read_split(resolve_voc_root(self.root), self.eval_split)
            eval_config = replace(config, train_split=self.eval_split)
            out = predict_proxies(  # P1: the network alone, without the evaluation images' tags
                self.root, work / "p1", eval_config, work / "proxynet.ckpt", ctx.trainer, with_tags=False
            )
            result["p1_val_miou"] = label_quality(out, self.root, ids).miou
        return result


@dataclass
class ImportProxies(Step):
    """Step 1 replaced by a folder of pseudo-labels from any method (one PNG per id of ``split``).

    The PNGs are checked (values 0..20 or 255, one per id) and copied to ``step1/proxies``. The
    folder's content hash is part of the configuration: after a PNG there changes, the next run
    imports again and re-runs every later step.
    """

    kind: ClassVar[str] = "proxies"
    writes: ClassVar[tuple[str, ...]] = ("step1",)
    sources: ClassVar[tuple[str, ...]] = ("folder",)
    root: str = ""
    folder: str = ""
    split: str = "train_aug"

    def check(self) -> None:
        source = Path(self.folder)
        if not source.is_dir():
            raise FileNotFoundError(f"folder: proxy folder {source} not found")
        ids = check_split(self.root, self.split, "split")
        missing = [i for i in ids if not (source / f"{i}.png").is_file()]
        if missing:
            raise FileNotFoundError(
                f"{source}: {len(missing)} of {len(ids)} proxies of split {self.split!r} are missing, "
                f"e.g. {[f'{i}.png' for i in missing[:5]]}"
            )

    def run(self, ctx: StepContext) -> dict[str, Any]:
        self.check()
        source = Path(self.folder)
        ids = read_split(resolve_voc_root(self.root), self.split)
        out = ctx.path(PROXIES)
        for image_id in tqdm(ids, desc="import proxies", unit="img", disable=len(ids) < 200):
            target = out / f"{image_id}.png"
            if not target.is_file():
                write_label_png(target, read_label_png(source / f"{image_id}.png"))
        return {"imported": len(ids)}


# --------------------------------------------------------------------------- steps 2-3


@dataclass
class MakeReferences(Step):
    """Reference masks H_i from saliency (a folder of PNGs, or the built-in method when ``None``)."""

    kind: ClassVar[str] = "references"
    reads: ClassVar[tuple[str, ...]] = (PROXIES,)
    writes: ClassVar[tuple[str, ...]] = ("references",)
    sources: ClassVar[tuple[str, ...]] = ("saliency_dir",)
    root: str = ""
    split: str = "train_aug"
    saliency_dir: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    workers: int = 0

    def check(self) -> None:
        from sal_lightning.scoring.references import ReferenceConfig

        check_split(self.root, self.split, "split")
        check_folder(self.saliency_dir, "saliency_dir")
        check_at_least("workers", self.workers, 0)
        check_kwargs(ReferenceConfig, self.config, "config")
        try:
            reference = ReferenceConfig(**self.config)
        except (TypeError, ValueError) as err:
            raise ValueError(f"config: {err}") from err
        if reference.crf:
            check_crf("config.crf")

    def run(self, ctx: StepContext) -> dict[str, Any]:
        from sal_lightning.scoring.references import ReferenceConfig, build_references

        ids = read_split(resolve_voc_root(self.root), self.split)
        build_references(
            self.root,
            ids,
            ctx.path("references"),
            self.saliency_dir,
            ReferenceConfig(**self.config),
            self.workers,
        )
        return {"references": len(ids)}


@dataclass
class CoarseScores(Step):
    """AC, CD and SC of every proxy (Eq. 3-5) into ``coarse/scores.csv``."""

    kind: ClassVar[str] = "coarse-scores"
    reads: ClassVar[tuple[str, ...]] = (PROXIES, "references")
    writes: ClassVar[tuple[str, ...]] = ("coarse",)
    root: str = ""
    split: str = "train_aug"
    config: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 8
    num_workers: int = 0

    def check(self) -> None:
        from sal_lightning.scoring.coarse import CoarseConfig

        check_split(self.root, self.split, "split")
        check_at_least("batch_size", self.batch_size, 1)
        check_at_least("num_workers", self.num_workers, 0)
        check_kwargs(CoarseConfig, self.config, "config")
        try:
            CoarseConfig(**self.config)
        except (TypeError, ValueError) as err:
            raise ValueError(f"config: {err}") from err

    def run(self, ctx: StepContext) -> dict[str, Any]:
        from sal_lightning.scoring.coarse import CoarseConfig
        from sal_lightning.scoring.stages import score_coarse

        rows = score_coarse(
            self.root,
            ctx.path(PROXIES),
            ctx.path("coarse/scores.csv"),
            ids=self.split,
            reference_dir=ctx.path("references"),
            config=CoarseConfig(**self.config),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            trainer_kwargs=_trainer_options(ctx, enable_progress_bar=False),  # bars where steps train
        )
        return {"scored": len(rows), "mean_sc": _mean(r["sc"] for r in rows.values())}


@dataclass
class TrainScorer(Step):
    """The fine scorer, trained on this dataset's own proxies.

    ``method="regression"`` (the paper's): the :class:`~sal_lightning.models.MaskScorer` (Table I)
    regresses AC (Eq. 6) on a training set synthesised from the proxies (``synthesis``:
    :class:`~sal_lightning.scoring.synthesis.SynthesisConfig` fields). ``method="reference"``
    (this library's): a :class:`~sal_lightning.models.ReferenceNet` learns the foreground from the
    pixels where proxies and reference masks agree. ``model`` holds the chosen class's arguments.
    """

    kind: ClassVar[str] = "scorer"
    reads: ClassVar[tuple[str, ...]] = (PROXIES, "references", "coarse")
    writes: ClassVar[tuple[str, ...]] = ("scorer",)
    root: str = ""
    split: str = "train_aug"
    method: Literal["regression", "reference"] = "regression"
    synthesis: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    max_epochs: int = 50
    batch_size: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("regression", "reference"):
            raise ValueError(f"method: expected 'regression' or 'reference', got {self.method!r}")
        if self.method == "reference" and self.synthesis:
            raise ValueError("synthesis: applies to method 'regression' only")

    def check(self) -> None:
        from sal_lightning.models.reference_net import ReferenceNet
        from sal_lightning.models.scorer import MaskScorer
        from sal_lightning.scoring.synthesis import SynthesisConfig

        check_split(self.root, self.split, "split")
        check_at_least("max_epochs", self.max_epochs, 1)
        check_at_least("batch_size", self.batch_size, 1)
        scorer = ReferenceNet if self.method == "reference" else MaskScorer
        check_kwargs(SynthesisConfig, self.synthesis, "synthesis")
        check_kwargs(scorer, self.model, "model")
        build_on_meta(scorer, self.model, "model")

    def run(self, ctx: StepContext) -> dict[str, Any]:
        ids = read_split(resolve_voc_root(self.root), self.split)
        if self.method == "reference":
            best, samples = self._train_reference(ctx, ids), len(ids)
        else:
            best, samples = self._train_regression(ctx, ids)
        with atomic_path(ctx.path("scorer/scorer.ckpt")) as tmp:
            shutil.copyfile(best, tmp)
        return {"method": self.method, "samples": samples, "checkpoint": "scorer/scorer.ckpt"}

    def _train_reference(self, ctx: StepContext, ids: list[str]) -> Path:
        import lightning.pytorch as pl

        from sal_lightning.models.reference_net import ReferenceNet
        from sal_lightning.scoring.stages import train_reference_net

        pl.seed_everything(self.seed, workers=True, verbose=False)  # the network's initial weights too
        return train_reference_net(
            self.root,
            ids,
            ctx.path(PROXIES),
            ctx.path("references"),
            ctx.path("scorer/checkpoints"),
            ReferenceNet(**self.model),
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            seed=self.seed,
            trainer_kwargs=_trainer_options(ctx, enable_checkpointing=True),
        )

    def _train_regression(self, ctx: StepContext, ids: list[str]) -> tuple[Path, int]:
        import lightning.pytorch as pl

        from sal_lightning.models.scorer import MaskScorer
        from sal_lightning.scoring.stages import train_mask_scorer
        from sal_lightning.scoring.synthesis import SynthesisConfig, build_scorer_training_set

        coarse = read_scores(ctx.path("coarse/scores.csv"))
        samples = build_scorer_training_set(
            self.root,
            ids,
            ctx.path(PROXIES),
            ctx.path("references"),
            ctx.path("scorer/samples"),
            SynthesisConfig(**self.synthesis),
            ac={i: coarse[i]["ac"] for i in ids if i in coarse},
            overwrite=True,
        )
        pl.seed_everything(self.seed, workers=True, verbose=False)  # the scorer's initial weights too
        best = train_mask_scorer(
            samples,
            ctx.path("scorer/checkpoints"),
            MaskScorer(**self.model),
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            seed=self.seed,
            trainer_kwargs=_trainer_options(ctx, enable_checkpointing=True),
        )
        samples_csv = samples / "samples.csv"
        count = sum(1 for _ in samples_csv.open()) - 1 if samples_csv.is_file() else 0
        return best, count


@dataclass
class FineScores(Step):
    """P of every proxy from the trained scorer and SF = P * CD (Eq. 7) into ``fine/scores.csv``."""

    kind: ClassVar[str] = "fine-scores"
    reads: ClassVar[tuple[str, ...]] = (PROXIES, "coarse", "scorer")
    writes: ClassVar[tuple[str, ...]] = ("fine",)
    root: str = ""
    split: str = "train_aug"
    batch_size: int = 16

    def check(self) -> None:
        check_at_least("batch_size", self.batch_size, 1)

    def run(self, ctx: StepContext) -> dict[str, Any]:
        from sal_lightning.scoring.stages import score_fine

        table = ctx.path("fine/scores.csv")
        write_scores(table, read_scores(ctx.path("coarse/scores.csv")), {"step": "fine", "from": "coarse"})
        p = score_fine(
            self.root,
            ctx.path(PROXIES),
            ctx.path("scorer/scorer.ckpt"),
            table,
            ids=self.split,
            batch_size=self.batch_size,
            trainer_kwargs=_trainer_options(ctx),
        )
        rows = read_scores(table)
        sf = {i: {"sf": p[i] * rows[i]["cd"]} for i in p}
        write_scores(table, sf, {"step": "fine", "sf": "p * cd (Eq. 7)"})
        return {"scored": len(p), "mean_sf": _mean(v["sf"] for v in sf.values())}


# --------------------------------------------------------------------------- selection


def threshold_for(values: list[float], tau: float, keep: float | None) -> float:
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


@dataclass
class Select(Step):
    """Weights (Eq. 9) from SF into ``scores.csv`` (P4, P5) and from SC into ``selection/coarse.csv`` (P3).

    Each selection uses a fixed ``tau`` (the paper: 0.55 VGG16, 0.85 ResNet-101) or, when ``keep``
    is set, the threshold that keeps that share of the proxies (useful when scores are on another
    scale, as on small synthetic data). The coarse selection takes ``tau_coarse`` / ``keep_coarse``,
    or the fine selection's settings when both are unset. ``mode`` is ``"hard"`` (Eq. 9) or
    ``"soft"`` (sigmoid around tau).

    Where the split has ground truth (VOC train, the built-in data, benchmarks), the oracle
    selection goes to ``selection/oracle.csv``: as many proxies as the SF selection keeps, the best
    by their true mean IoU: the upper bound that SC and SF selection are measured against.
    """

    kind: ClassVar[str] = "select"
    reads: ClassVar[tuple[str, ...]] = ("fine", PROXIES)
    writes: ClassVar[tuple[str, ...]] = ("scores.csv", "scores.json", "selection")
    root: str = ""
    split: str = "train_aug"
    tau: float = 0.85
    keep: float | None = None
    tau_coarse: float | None = None
    keep_coarse: float | None = None
    mode: Literal["hard", "soft"] = "hard"
    temperature: float = 0.05

    def check(self) -> None:
        check_share("tau", self.tau, low_open=False)
        for name in ("tau_coarse", "keep", "keep_coarse"):
            if getattr(self, name) is not None:
                check_share(name, getattr(self, name), low_open=name.startswith("keep"))
        if self.mode not in ("hard", "soft"):
            raise ValueError(f"mode: expected 'hard' or 'soft', got {self.mode!r}")
        if not (isinstance(self.temperature, int | float) and self.temperature > 0):
            raise ValueError(f"temperature: expected a number > 0, got {self.temperature!r}")

    def run(self, ctx: StepContext) -> dict[str, Any]:
        import torch

        from sal_lightning.losses import selection_weights

        rows = read_scores(ctx.path("fine/scores.csv"))
        ids = sorted(rows)
        result: dict[str, Any] = {}
        plans = [
            ("scores.csv", "sf", self.tau, self.keep),
            ("selection/coarse.csv", "sc", self.tau_coarse, self.keep_coarse),
        ]
        for artefact, column, tau, keep in plans:
            if tau is None and keep is None:  # coarse selection defaults to the fine one's setting
                tau, keep = self.tau, self.keep
            tau = self.tau if tau is None else tau
            values = [rows[i][column] for i in ids]
            threshold = threshold_for(values, tau, keep)
            weights = selection_weights(
                torch.tensor(values, dtype=torch.float64), threshold, self.mode, self.temperature
            ).tolist()
            table = {i: {**rows[i], "weight": w} for i, w in zip(ids, weights, strict=True)}
            write_scores(
                ctx.path(artefact),
                table,
                {"step": "select", "score": column, "tau": threshold, "keep": keep, "mode": self.mode},
            )
            result[column] = {"tau": threshold, "selected": sum(w > 0 for w in weights), "of": len(ids)}
        oracle = self._oracle(ctx, rows, int(result["sf"]["selected"]))
        if oracle is not None:
            result["oracle"] = oracle
        return result

    def _oracle(
        self, ctx: StepContext, rows: dict[str, dict[str, float]], count: int
    ) -> dict[str, Any] | None:
        from sal_lightning.scoring.reports import has_ground_truth, proxy_miou, true_quality

        ids = sorted(rows)
        if not self.root or not has_ground_truth(self.root, ids):
            return None
        quality = proxy_miou(true_quality(self.root, ids, ctx.path(PROXIES), progress=False))
        best = set(sorted(ids, key=lambda i: (-quality[i], i))[:count])
        table = {i: {**rows[i], "weight": float(i in best)} for i in ids}
        write_scores(
            ctx.path("selection/oracle.csv"),
            table,
            {"step": "select", "score": "true proxy mIoU (oracle)", "selected": count},
        )
        return {
            "selected": count,
            "of": len(ids),
            "mean_true_miou": float(np.mean([quality[i] for i in best])),
        }


# --------------------------------------------------------------------------- step 4


@dataclass
class Retrain(Step):
    """Step 4: SALSegmenter on the proxies, one run per seed, the same ``max_steps`` for every variant.

    ``variant``: ``"P2"`` (all proxies), ``"P3"`` (coarse selection), ``"P4"`` (refined selection),
    ``"P5"`` (refined selection + attention loss); see :data:`VARIANTS`. ``model`` and ``data`` are
    keyword arguments of :class:`~sal_lightning.SALSegmenter` and
    :class:`~sal_lightning.VOCSegmentationDataModule`; the variant sets the selection and attention
    switches. ``strong_ids``: a list file of ids whose ground truth replaces their proxy (the
    semi-supervised setting of Table IX).
    """

    kind: ClassVar[str] = "retrain"
    root: str = ""
    variant: str = "P5"
    train_split: str = "train_aug"
    val_split: str = "val"
    seeds: tuple[int, ...] = (0,)
    max_steps: int = 15000
    model: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    strong_ids: str | None = None

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant: expected one of {sorted(VARIANTS)}, got {self.variant!r}")
        if not self.seeds:
            raise ValueError("seeds: give at least one seed")

    @property
    def name(self) -> str:
        return f"retrain-{self.variant}"

    #: keyword arguments the step sets from the variant and the pipeline's artefacts
    MODEL_SET: ClassVar[tuple[str, ...]] = ("use_selection", "use_attention")
    DATA_SET: ClassVar[tuple[str, ...]] = (
        "root",
        "train_split",
        "val_split",
        "proxy_dir",
        "scores_file",
        "strong_ids",
    )

    def check(self) -> None:
        from sal_lightning.data.datamodules import VOCSegmentationDataModule
        from sal_lightning.models.segmenter import SALSegmenter

        check_split(self.root, self.train_split, "train_split")
        check_split(self.root, self.val_split, "val_split")
        check_at_least("max_steps", self.max_steps, 1)
        if self.strong_ids is not None and not Path(self.strong_ids).is_file():
            raise FileNotFoundError(f"strong_ids: id list {self.strong_ids} not found")
        check_kwargs(SALSegmenter, self.model, "model", self.MODEL_SET)
        check_kwargs(VOCSegmentationDataModule, self.data, "data", self.DATA_SET)
        build_on_meta(SALSegmenter, self.model, "model")
        if self.model.get("crf"):
            check_crf("model.crf")
        try:
            VOCSegmentationDataModule(self.root, **self.data)
        except (TypeError, ValueError) as err:
            raise ValueError(f"data: {err}") from err

    def inputs(self) -> tuple[str, ...]:
        scores = VARIANTS[self.variant]["scores"]
        return (PROXIES,) if scores is None else (PROXIES, scores)

    def outputs(self) -> tuple[str, ...]:
        return (f"retrain/{self.variant}",)

    def run(self, ctx: StepContext) -> dict[str, Any]:
        import lightning.pytorch as pl

        from sal_lightning.data.datamodules import VOCSegmentationDataModule
        from sal_lightning.models.segmenter import SALSegmenter

        spec = VARIANTS[self.variant]
        out = ctx.path(f"retrain/{self.variant}")
        result: dict[str, Any] = {}
        for seed in self.seeds:
            ckpt = out / f"seed{seed}.ckpt"
            if ckpt.is_file() and not ctx.fresh:
                continue
            pl.seed_everything(seed, workers=True, verbose=False)
            model = SALSegmenter(
                **{
                    **self.model,
                    "use_selection": spec["scores"] is not None,
                    "use_attention": spec["use_attention"],
                }
            )
            data = VOCSegmentationDataModule(
                self.root,
                **{
                    **self.data,
                    "train_split": self.train_split,
                    "val_split": self.val_split,
                    "proxy_dir": str(ctx.path(PROXIES)),
                    "scores_file": None if spec["scores"] is None else str(ctx.path(spec["scores"])),
                    "strong_ids": self.strong_ids,
                },
            )
            trainer = pl.Trainer(**_trainer_options(ctx, max_steps=self.max_steps, limit_val_batches=0))
            trainer.fit(model, datamodule=data)
            out.mkdir(parents=True, exist_ok=True)
            partial = out / f".seed{seed}.partial.ckpt"
            trainer.save_checkpoint(partial, weights_only=True)
            if trainer.is_global_zero:
                partial.replace(ckpt)
            trainer.strategy.barrier("retrain-checkpoint")
            images = len(data.train_dataset) if data.train_dataset is not None else 0
            result[f"seed{seed}"] = {"steps": trainer.global_step, "images": images}
        return result


# --------------------------------------------------------------------------- evaluation


@dataclass
class Evaluate(Step):
    """P1..P5 on ``split`` with the full inference (multi-scale, dense CRF): mIoU per run.

    ``test_flip`` also fuses mirrored inputs (neither the paper nor the release does);
    ``refine_at_inference`` applies Eq. 11 at test time too (see ``docs/segmenter.md``).

    P1 is the step 1 network (ProxyNet); P2..P5 every ``retrain/<variant>/seed<k>.ckpt``.
    Predictions go to ``evaluation/<variant>/seed<k>/<id>.png``; the numbers to
    ``evaluation/results.json``.
    """

    kind: ClassVar[str] = "evaluate"
    writes: ClassVar[tuple[str, ...]] = ("evaluation",)
    root: str = ""
    split: str = "val"
    variants: tuple[str, ...] = ("P2", "P3", "P4", "P5")
    seeds: tuple[int, ...] = (0,)
    test_scales: tuple[float, ...] = (0.5, 0.75, 1.0)
    test_flip: bool = False
    refine_at_inference: bool = False
    crf: bool = True
    batch_size: int = 1
    include_p1: bool = True

    def inputs(self) -> tuple[str, ...]:
        return tuple(f"retrain/{v}" for v in self.variants) + (("step1",) if self.include_p1 else ())

    def check(self) -> None:
        check_split(self.root, self.split, "split")
        check_at_least("batch_size", self.batch_size, 1)
        if not self.test_scales or not all(isinstance(x, int | float) and x > 0 for x in self.test_scales):
            raise ValueError(f"test_scales: expected one or more positive numbers, got {self.test_scales!r}")
        if self.crf:
            check_crf("crf")

    def run(self, ctx: StepContext) -> dict[str, Any]:
        import lightning.pytorch as pl

        from sal_lightning.callbacks import SegmentationPredictionWriter
        from sal_lightning.data.datamodules import VOCSegmentationDataModule
        from sal_lightning.models.proxy_steps import label_quality
        from sal_lightning.models.segmenter import SALSegmenter

        ids = read_split(resolve_voc_root(self.root), self.split)
        out = ctx.path("evaluation")
        results: dict[str, Any] = {}
        if self.include_p1:
            results["P1"] = {"seed0": self._evaluate_p1(ctx, ids)}
        for variant in self.variants:
            results[variant] = {}
            for seed in self.seeds:
                folder = out / variant / f"seed{seed}"
                if ctx.fresh or not all((folder / f"{i}.png").is_file() for i in ids):
                    model = SALSegmenter.load_from_checkpoint(
                        ctx.path(f"retrain/{variant}/seed{seed}.ckpt"),
                        map_location="cpu",
                        test_scales=tuple(self.test_scales),
                        test_flip=self.test_flip,
                        refine_at_inference=self.refine_at_inference,
                        crf=self.crf,
                    )
                    data = VOCSegmentationDataModule(
                        self.root, predict_split=self.split, eval_batch_size=self.batch_size, num_workers=0
                    )
                    writer = SegmentationPredictionWriter(folder)
                    trainer = pl.Trainer(
                        **_trainer_options(ctx, callbacks=[writer], enable_progress_bar=False)
                    )
                    trainer.predict(model, datamodule=data, return_predictions=False)
                results[variant][f"seed{seed}"] = label_quality(folder, self.root, ids).miou
        atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
        return summarise(results)

    def _evaluate_p1(self, ctx: StepContext, ids: list[str]) -> float:
        from sal_lightning.models.proxy_steps import label_quality

        # step 1 already predicted the evaluation split with ProxyNet (multi-scale + CRF)
        p1 = ctx.path(P1_PREDICTIONS)
        if not p1.is_dir():
            raise FileNotFoundError(f"{p1}: ProxyNet predictions missing; run step 'proxies' with eval_split")
        return label_quality(p1, self.root, ids).miou


def summarise(results: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
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


def _mean(values: Any) -> float:
    array = np.array(list(values), dtype=np.float64)
    return float(np.nanmean(array)) if array.size and not np.isnan(array).all() else math.nan
