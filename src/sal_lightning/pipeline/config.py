"""Pipeline configuration files: one YAML mapping -> the ordered list of steps.

A configuration names the data once and each stage's settings (every section is optional; the
defaults are the paper's)::

    root: data/VOCdevkit/VOC2012       # a VOC-layout root
    train_split: train_aug              # images whose proxies are scored and trained on
    val_split: val                      # evaluation split (P1..P5)
    saliency_dir: null                  # grayscale saliency PNGs; null: the built-in method
    trainer: {accelerator: auto, devices: 1}         # every Lightning Trainer of every step
    proxies: {preset: paper-resnet101, overrides: {}}  # step 1 (or paper-vgg16), or {import: FOLDER}
    references: {config: {}, workers: 4}
    coarse: {config: {}, batch_size: 8, num_workers: 4}
    scorer: {synthesis: {}, model: {}, max_epochs: 50, batch_size: 8}
    fine: {batch_size: 16}
    select: {tau: 0.85, tau_coarse: 0.8, mode: hard}  # SF, SC thresholds; or keep: 0.6 (a share)
    retrain: {variants: [P2, P3, P4, P5], seeds: [0], max_steps: 15000, model: {}, data: {}}
    evaluate: {test_scales: [0.5, 0.75, 1.0], crf: true}
    report: {overlays: 4}

``strong_ids`` under ``retrain`` gives the semi-supervised setting (Table IX): a list file of ids
whose ground truth is used as is, the rest as selected proxies.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from sal_lightning.pipeline.report import Report
from sal_lightning.pipeline.runner import Pipeline, Step
from sal_lightning.pipeline.steps import (
    CoarseScores,
    Evaluate,
    FineScores,
    ImportProxies,
    MakeProxies,
    MakeReferences,
    Retrain,
    Select,
    TrainScorer,
)

SECTIONS = (
    "proxies",
    "references",
    "coarse",
    "scorer",
    "fine",
    "select",
    "retrain",
    "evaluate",
    "report",
)
TOP_LEVEL = ("root", "train_split", "val_split", "saliency_dir", "trainer", *SECTIONS)


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a pipeline configuration (YAML mapping) with a clear error for a missing or bad file."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--config: {file} not found")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{file}: not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a mapping of settings, got {type(data).__name__}")
    return data


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    value = config.get(name) or {}
    if not isinstance(value, dict):
        raise ValueError(f"config section {name!r}: expected a mapping, got {type(value).__name__}")
    return dict(value)


def _build(cls: type[Step], section: str, settings: dict[str, Any], **fixed: Any) -> Step:
    try:
        return cls(**{**settings, **fixed})
    except TypeError as err:
        fields = sorted(f for f in cls.__dataclass_fields__ if f not in fixed)
        raise ValueError(f"config section {section!r}: {err}; its settings are {fields}") from err


def build_steps(config: dict[str, Any]) -> list[Step]:
    """The ordered SAL-Net steps for a configuration mapping (see the module docstring)."""
    unknown = sorted(set(config) - set(TOP_LEVEL))
    if unknown:
        raise ValueError(f"config: unknown settings {unknown}; expected some of {list(TOP_LEVEL)}")
    root = config.get("root")
    if not root:
        raise ValueError("config: 'root' (the VOC-layout data folder) is required")
    root = str(root)
    train = str(config.get("train_split", "train_aug"))
    val = str(config.get("val_split", "val"))
    saliency = config.get("saliency_dir")
    proxies = _section(config, "proxies")
    steps: list[Step]
    if "import" in proxies:
        folder = proxies.pop("import")
        if proxies:
            raise ValueError(
                f"config section 'proxies': 'import' takes no other settings, got {sorted(proxies)}"
            )
        steps = [ImportProxies(root=root, folder=str(folder), split=train)]
    else:
        overrides = {"train_split": train, **proxies.pop("overrides", {})}
        steps = [
            _build(
                MakeProxies,
                "proxies",
                proxies,
                root=root,
                overrides=overrides,
                saliency_dir=saliency,
                eval_split=val,
            )
        ]
    steps += [
        _build(MakeReferences, "references", _section(config, "references"), root=root, split=train,
               saliency_dir=saliency),
        _build(CoarseScores, "coarse", _section(config, "coarse"), root=root, split=train),
        _build(TrainScorer, "scorer", _section(config, "scorer"), root=root, split=train),
        _build(FineScores, "fine", _section(config, "fine"), root=root, split=train),
        _build(Select, "select", _section(config, "select"), root=root, split=train),
    ]  # fmt: skip
    retrain = _section(config, "retrain")
    variants = tuple(retrain.pop("variants", ("P2", "P3", "P4", "P5")))
    seeds = tuple(retrain.pop("seeds", (0,)))
    for variant in variants:
        steps.append(
            _build(Retrain, "retrain", retrain, root=root, variant=variant, seeds=seeds, train_split=train,
                   val_split=val)
        )  # fmt: skip
    include_p1 = isinstance(steps[0], MakeProxies)
    steps.append(
        _build(Evaluate, "evaluate", _section(config, "evaluate"), root=root, split=val, variants=variants,
               seeds=seeds, include_p1=include_p1)
    )  # fmt: skip
    steps.append(_build(Report, "report", _section(config, "report"), root=root, split=train, eval_split=val))
    return steps


def trainer_options(config: dict[str, Any], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The configuration's ``trainer`` section with ``overrides`` (None values ignored) applied;
    ``strategy="ddp"`` by default when more than one device or node is asked for."""
    trainer = dict(_section(config, "trainer"))
    trainer.update({k: v for k, v in (overrides or {}).items() if v is not None})
    if trainer.get("devices", 1) != 1 or trainer.get("num_nodes", 1) != 1:
        trainer.setdefault("strategy", "ddp")
    return trainer


def build_pipeline(
    config: dict[str, Any], workdir: str | os.PathLike[str], trainer_overrides: dict[str, Any] | None = None
) -> Pipeline:
    """A :class:`Pipeline` in ``workdir`` with the configuration's steps and trainer settings."""
    return Pipeline(workdir, build_steps(config), trainer_options(config, trainer_overrides))
