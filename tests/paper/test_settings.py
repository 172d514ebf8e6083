"""Every "paper" example configuration holds the paper's values (sal_lightning.paper), and
docs/fidelity.md shows the same table, so a threshold or a network cannot drift silently."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from sal_lightning import paper
from sal_lightning.pipeline.config import load_config
from sal_lightning.stages.proxy_settings import ProxySettings

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "examples" / "configs"
#: example configuration -> (kind, the paper network it reproduces)
PAPER_CONFIGS = {
    "pipeline_voc_vgg16.yaml": ("pipeline", "vgg16"),
    "pipeline_voc_resnet101.yaml": ("pipeline", "resnet101"),
    "voc_vgg16.yaml": ("segmenter", "vgg16"),
    "voc_resnet101.yaml": ("segmenter", "resnet101"),
}
#: example configurations that do not claim to be the paper (each says what it is instead)
OTHER_CONFIGS = {
    "coco_resnet101.yaml",  # the paper has no COCO settings: the file marks its own
    "pipeline_coco_resnet101.yaml",
    "pipeline_voclike_cpu.yaml",
    "proxies_synthetic_cpu.yaml",
    "synthetic_tiny.yaml",
    "voc_vgg16_released.yaml",
    "wandb.yaml",
}


def test_every_example_config_is_classified() -> None:
    assert {p.name for p in CONFIGS.glob("*.yaml")} == set(PAPER_CONFIGS) | OTHER_CONFIGS


@pytest.mark.parametrize("name", sorted(PAPER_CONFIGS))
def test_paper_config_holds_the_papers_values(name: str) -> None:
    kind, network = PAPER_CONFIGS[name]
    if kind == "pipeline":
        settings = paper.pipeline_settings(load_config(CONFIGS / name))
        expected = set(paper.PAPER[network]) | set(paper.RELEASED)
    else:
        settings = paper.segmenter_settings(yaml.safe_load((CONFIGS / name).read_text()))
        step1_and_scoring = {
            "cam_backbone",
            "cam_conv7_channels",
            "proxy_backbone",
            "background",
            "predict_with_tags",
            "tau",
            "tau_coarse",
            "b",
        }
        expected = (
            (set(paper.PAPER[network]) | set(paper.RELEASED))
            - step1_and_scoring
            - {k for k in paper.PAPER[network] if k.startswith("scorer_")}
        )
    assert expected <= set(settings), f"{name} does not set {sorted(expected - set(settings))}"
    assert paper.differences(settings, network) == {}


def test_a_drifted_value_is_reported() -> None:
    config = yaml.safe_load((CONFIGS / "pipeline_voc_resnet101.yaml").read_text())
    config["select"] = {**config["select"], "tau_coarse": 0.85}  # the fallback this issue fixed
    config["retrain"] = {
        **config["retrain"],
        "model": {**config["retrain"]["model"], "backbone": "deeplabv3_resnet101"},
    }
    diff = paper.differences(paper.pipeline_settings(config), "resnet101")
    assert diff == {
        "tau_coarse": (0.85, 0.8),
        "backbone": ("deeplabv3_resnet101", "deeplabv2_caffe_resnet101"),
    }
    del config["select"]["tau_coarse"]  # unset: the coarse selection falls back to the SF threshold
    assert paper.differences(paper.pipeline_settings(config), "resnet101")["tau_coarse"] == (0.85, 0.8)
    with pytest.raises(ValueError, match="network: expected one of"):
        paper.differences({}, "resnet50")


def test_resnet101_pipeline_builds_the_papers_steps() -> None:
    tree = load_config(CONFIGS / "pipeline_voc_resnet101.yaml")
    assert (tree.select.tau_coarse, tree.select.tau) == (0.8, 0.85)
    assert isinstance(tree.proxies, ProxySettings)
    assert (
        tree.proxies.proxy_backbone == "deeplabv2_caffe_resnet101"
        and tree.proxies.cam_backbone == "vgg16_aspp"
    )
    assert tree.retrain.model["backbone"] == "deeplabv2_caffe_resnet101"
    assert (tree.proxies.proxy_encoder_weights, tree.retrain.model["encoder_weights"]) == ("coco", "coco")


def test_vgg16_pipeline_is_vgg16_throughout() -> None:
    tree = load_config(CONFIGS / "pipeline_voc_vgg16.yaml")
    proxy = tree.proxies
    assert isinstance(proxy, ProxySettings)
    assert (proxy.cam_backbone, proxy.cam_conv7_channels, proxy.proxy_backbone) == (
        "vgg16_aspp",
        1024,
        "vgg16_aspp",
    )
    assert tree.retrain.model["backbone"] == "vgg16_aspp"
    assert (tree.select.tau_coarse, tree.select.tau) == (0.55, 0.55)


def test_fidelity_doc_holds_the_table_of_the_source() -> None:
    text = (REPO / "docs" / "fidelity.md").read_text()
    match = re.search(r"<!-- fidelity-table:start -->\n(.*?)<!-- fidelity-table:end -->", text, re.S)
    assert match, "docs/fidelity.md: the table markers are missing"
    assert match.group(1) == paper.fidelity_table(), (
        "docs/fidelity.md is out of date: paste `python -m sal_lightning.paper` between its markers"
    )


def test_table_cells_name_every_paper_value() -> None:
    table = paper.fidelity_table()
    templates = " ".join(r.paper + r.released for r in paper.ROWS)
    for values in paper.PAPER.values():
        for key in values:
            assert f"[{key}]" in templates, f"no row shows the paper's {key}"
    for key in paper.RELEASED:
        assert f"released[{key}]" in templates
    assert (
        "`deeplabv2_caffe_resnet101`" in table
        and "0.8 (ResNet-101)" in table
        and "0.85 (ResNet-101)" in table
    )
    rows = [line for line in table.splitlines()[2:]]
    assert len(rows) == len(paper.ROWS) and all(line.count(" | ") == 5 for line in rows)


def test_the_paper_batch_is_the_global_batch_on_any_number_of_devices() -> None:
    """The paper configurations read their batch sizes as global batches: on 2 devices the retraining
    still takes 7 images a step (or the run stops, 7 being odd); Lightning's per-device reading would
    make it 14, which the comparison with the paper reports."""
    path = CONFIGS / "pipeline_voc_resnet101.yaml"
    tree = load_config(path)
    assert tree.trainer.batch_sizes == "global"
    assert tree.proxies.background == "saliency" and tree.proxies.predict_with_tags is False  # type: ignore[union-attr]
    on_two = load_config(path, trainer={"devices": 2, "batch_sizes": "global"})
    assert paper.differences(paper.pipeline_settings(on_two), "resnet101") == {}
    with pytest.raises(
        ValueError, match="data.batch_size: the global batch 7 .* does not split over 2 device"
    ):
        on_two.trainer.local_batch(on_two.retrain.batch_size, "data.batch_size")
    per_device = load_config(path, trainer={"devices": 2, "batch_sizes": "per_device"})
    assert paper.differences(paper.pipeline_settings(per_device), "resnet101") == {"batch_size": (14, 7)}
    untagged = yaml.safe_load(path.read_text())
    untagged["proxies"] = {**untagged["proxies"], "predict_with_tags": True, "background": "cam"}
    diff = paper.differences(paper.pipeline_settings(untagged), "resnet101")
    assert diff == {"predict_with_tags": (True, False), "background": ("cam", "saliency")}
