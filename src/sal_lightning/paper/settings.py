"""Read the paper-relevant settings out of a pipeline or a LightningCLI configuration and compare them
with the paper's."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Any

from sal_lightning.paper.values import PAPER, RELEASED


def _defaults(cls: type) -> dict[str, Any]:
    """The defaults of a class's ``__init__`` and of its parents' (for ``**kwargs`` passed up)."""
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        out.update(
            (name, p.default)
            for name, p in inspect.signature(init).parameters.items()
            if p.default is not inspect.Parameter.empty
        )
    return out


def _model_settings(model: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """The retraining settings of SALSegmenter / VOCSegmentationDataModule arguments, defaults filled."""
    from sal_lightning.data.datamodules import VOCSegmentationDataModule
    from sal_lightning.models.segmenter import SALSegmenter

    merged = {**_defaults(SALSegmenter), **model}
    loader = {**_defaults(VOCSegmentationDataModule), **data}
    keys = (
        *("backbone", "output_stride", "dropout", "lr", "momentum", "weight_decay", "poly_power"),
        *("lambda_atten", "branch_rates", "branch_combine", "attention_refine", "head_lr_mult"),
        *("head_bias_lr_mult", "test_scales", "test_flip", "crf"),
    )
    settings = {k: merged[k] for k in keys}
    settings.update(batch_size=loader["batch_size"], crop_size=loader["crop_size"])
    return settings


def pipeline_settings(config: Any) -> dict[str, Any]:
    """The paper-relevant settings of a pipeline configuration (a :class:`PipelineSettings`, or the
    mapping of its YAML file, which is checked first).

    Every name of :data:`PAPER` / :data:`RELEASED` that the pipeline sets is read from its
    sections, defaults included; test-time settings come from ``evaluate``. ``batch_size`` is the
    retraining's global batch: ``retrain.data.batch_size`` as is with ``trainer.batch_sizes:
    global``, else times the devices, nodes and accumulated batches of ``trainer``. Step 1 names
    (``cam_*``, ``proxy_backbone``, ``background``, ``predict_with_tags``) are absent when the
    proxies are imported.
    """
    from sal_lightning.models.scorer import MaskScorer
    from sal_lightning.pipeline.config import parse_config

    tree = parse_config(config)
    settings = _model_settings(tree.retrain.model, tree.retrain.data)
    trainer = tree.trainer
    if trainer.batch_sizes == "per_device":
        settings["batch_size"] *= trainer.world_size() * trainer.accumulate_grad_batches
    settings["max_steps"] = tree.retrain.max_steps
    evaluate = tree.evaluate
    settings.update(test_scales=tuple(evaluate.test_scales), test_flip=evaluate.test_flip, crf=evaluate.crf)
    select = tree.select
    settings["tau"] = select.rule("sf").fixed_tau  # None where keep decides
    settings["tau_coarse"] = select.rule("sc").fixed_tau
    scorer = tree.scorer
    settings.update(
        scorer_lr={**_defaults(MaskScorer), **scorer.model}.get("lr"),
        scorer_batch_size=scorer.batch,
        scorer_max_epochs=scorer.epochs,
    )
    settings["b"] = tree.coarse.b
    if not isinstance(tree.proxies, str):
        settings.update(
            cam_backbone=tree.proxies.cam_backbone,
            cam_conv7_channels=tree.proxies.cam_conv7_channels,
            proxy_backbone=tree.proxies.proxy_backbone,
            background=tree.proxies.background,
            predict_with_tags=tree.proxies.predict_with_tags,
        )
    return settings


def segmenter_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The paper-relevant settings of a LightningCLI configuration of ``SALSegmenter`` (step 4 only).

    Reads ``model.init_args``, ``data.init_args`` and ``trainer.max_steps``, defaults included.
    """
    model, data = config.get("model") or {}, config.get("data") or {}
    settings = _model_settings(model.get("init_args") or {}, data.get("init_args") or {})
    settings["max_steps"] = (config.get("trainer") or {}).get("max_steps")
    return settings


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
    return bool(a == b)


def differences(settings: Mapping[str, Any], network: str) -> dict[str, tuple[Any, Any]]:
    """``{name: (configured, paper's)}`` for every :data:`PAPER` (and :data:`RELEASED`) value of
    ``network`` that ``settings`` holds with another value; names it does not hold are skipped."""
    if network not in PAPER:
        raise ValueError(f"network: expected one of {list(PAPER)}, got {network!r}")
    expected = {**RELEASED, **PAPER[network]}
    return {
        name: (settings[name], value)
        for name, value in expected.items()
        if name in settings and not _same(settings[name], value)
    }
