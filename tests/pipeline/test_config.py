"""A pipeline configuration: one typed tree, its steps, and what a bad one says (before any step)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sal_lightning.pipeline.config import PipelineSettings, build_steps, parse_config
from sal_lightning.scoring.synthesis import SynthesisSettings
from sal_lightning.stages.coarse import CoarseSettings
from sal_lightning.stages.proxies import ImportProxies, MakeProxies
from sal_lightning.stages.proxy_settings import ProxySettings
from sal_lightning.stages.references import ReferenceSettings
from sal_lightning.stages.retrain import Retrain
from sal_lightning.stages.scorer import ScorerSettings
from sal_lightning.stages.select import SelectSettings


def test_build_steps_orders_the_four_steps() -> None:
    steps = build_steps({"root": "voc", "retrain": {"variants": ["P2", "P5"], "seeds": [0, 1]}})
    names = ["proxies", "references", "coarse", "scorer", "fine", "select", "retrain-P2", "retrain-P5"]
    assert [s.name for s in steps] == [*names, "evaluate", "report"]
    first = steps[0]
    assert isinstance(first, MakeProxies) and first.split == "train_aug" and first.val_split == "val"
    retrain = steps[7]
    assert isinstance(retrain, Retrain) and retrain.settings.seeds == (0, 1)
    assert retrain.inputs()[-1] == "scores.csv"
    assert steps[6].inputs() == ("step1/proxies",)  # P2 trains on every proxy


def test_build_steps_imports_a_proxy_folder() -> None:
    steps = build_steps({"root": "voc", "train_split": "train", "proxies": "my/labels"})
    assert (
        isinstance(steps[0], ImportProxies) and steps[0].proxies == "my/labels" and steps[0].split == "train"
    )
    assert "step1" not in steps[-2].inputs()  # no P1 without the step 1 network


def test_a_section_is_its_settings_class() -> None:
    tree = parse_config({"root": "voc", "select": {"tau": 0.55, "tau_coarse": 0.5}, "coarse": {"b": 0.2}})
    assert isinstance(tree, PipelineSettings) and tree.select == SelectSettings(tau=0.55, tau_coarse=0.5)
    assert tree.coarse.b == 0.2 and tree.coarse.batch_size == 8  # the other keys keep their defaults
    assert tree.select.rule("sc").tau == 0.5 and tree.select.rule("sf").tau == 0.55


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "required: root"),
        ({"root": "v", "retrian": {}}, r"unknown settings \['retrian'\]"),
        ({"root": "v", "select": {"tua": 0.5}}, "'select' does not accept option 'tua'"),
        ({"root": "v", "scorer": [1, 2]}, "section 'scorer': expected a mapping"),
        ({"root": "v", "retrain": {"variants": ["P9"]}}, r"(?s)retrain.variants.*Got value: P9"),
        ({"root": "v", "select": {"tau": 1.5}}, r"^select: tau: expected a number in \[0, 1\], got 1.5"),
        ({"root": "v", "coarse": {"batch_size": -8}}, r"^coarse: batch_size: expected an integer >= 1"),
        ({"root": "v", "retrain": {"max_steps": 0}}, r"^retrain: max_steps: expected an integer >= 1, got 0"),
        ({"root": "v", "trainer": {"devices": 0}}, r"^trainer: devices: expected a number >= 1"),
        ({"root": "v", "coarse": {"b": -5}}, r"^coarse: b: expected a number >= 0"),
        ({"root": "v", "select": {"keep": 0.6, "tau": 0.8}}, r"^select: tau and keep: both are set"),
        (
            {"root": "v", "scorer": {"method": "agreement", "synthesis": {"samples_per_image": 5}}},
            r"^scorer: synthesis: method 'agreement' synthesises no training set",
        ),
        ({"root": "v", "proxies": {"cam_lr": -1}}, r"(?s)cam_lr: expected a number > 0"),
        ({"root": "v", "evaluate": {"test_fuse": "median"}}, r"evaluate.*test_fuse"),
    ],
)
def test_bad_configurations_say_what_is_wrong(config: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=message):
        build_steps(config)


def test_the_coco_pipeline_config_parses() -> None:
    """examples/configs/pipeline_coco_resnet101.yaml: DeepLab v2 ResNet-101, 321 crops, 100k steps;
    no class count in it (the root's classes.txt gives 81)."""
    from sal_lightning.pipeline.config import load_config

    config = Path(__file__).resolve().parents[2] / "examples" / "configs" / "pipeline_coco_resnet101.yaml"
    tree = load_config(config)
    assert tree.retrain.model["backbone"] == "deeplabv2_resnet101" and tree.retrain.data["crop_size"] == 321
    assert tree.retrain.max_steps == 100000 and tree.select.keep == 0.6
    assert "num_classes" not in tree.retrain.model and "num_classes" not in config.read_text()
    steps = tree.steps()
    assert [s.kind for s in steps][:3] == ["proxies", "references", "coarse"]


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (CoarseSettings, {"b": -5}, r"b: expected a number >= 0"),
        (CoarseSettings, {"b": float("nan")}, r"b: expected a number >= 0"),
        (CoarseSettings, {"definition": "f1"}, r"definition: expected 'paper' or 'fmeasure'"),
        (ProxySettings, {"seed": -1}, r"seed: expected an integer >= 0"),
        (ProxySettings, {"expand_weight": -1.0}, r"expand_weight: expected a number >= 0"),
        (ScorerSettings, {"seed": -1}, r"seed: expected an integer >= 0"),
        (SynthesisSettings, {"degraded_share": float("nan")}, r"degraded_share: expected a number >= 0"),
        (ReferenceSettings, {"max_objects": 1.5}, r"max_objects: expected"),
    ],
)
def test_documented_ranges_fail_at_construction(cls: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)
