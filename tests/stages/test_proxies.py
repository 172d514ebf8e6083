"""Step 1 as functions: the presets, the label quality, the sub-steps and what they write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sal_lightning.data.io import read_label_png, write_label_png
from sal_lightning.stages.proxy_config import PRESETS, ProxyConfig
from sal_lightning.stages.quality import label_quality


def test_paper_presets_name_the_papers_networks() -> None:
    vgg, resnet = PRESETS["paper-vgg16"], PRESETS["paper-resnet101"]
    assert (vgg.cam_backbone, vgg.cam_conv7_channels, vgg.proxy_backbone) == (
        "vgg16_aspp",
        1024,
        "vgg16_aspp",
    )
    assert (resnet.cam_backbone, resnet.proxy_backbone) == ("vgg16_aspp", "deeplabv2_caffe_resnet101")
    assert PRESETS["paper"] == resnet
    assert PRESETS["synthetic-cpu"].cam_conv7_channels is None


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(ValueError, match="cam_steps: expected an integer >= 1, got 0"):
        ProxyConfig(cam_steps=0)
    with pytest.raises(ValueError, match="fg_ratio: expected a number in"):
        ProxyConfig(fg_ratio=2.0)


def test_label_quality_counts_unlabelled_pixels_as_misses(synthetic_voc: Path, tmp_path: Path) -> None:
    image_id = "synth_000000"
    gt = read_label_png(synthetic_voc / "SegmentationClass" / f"{image_id}.png")
    half = gt.copy()
    half[:, : gt.shape[1] // 2] = 255  # leave the left half unlabelled, the rest exact
    write_label_png(tmp_path / f"{image_id}.png", half)
    quality = label_quality(tmp_path, synthetic_voc, [image_id])
    valid = gt != 255
    assert quality.precision == 1.0
    assert quality.coverage == pytest.approx(((half != 255) & valid).sum() / valid.sum())
    present = [c for c in np.unique(gt[valid])]
    expected = np.mean([((half == c) & (gt == c)).sum() / ((gt == c) | (half == c)).sum() for c in present])
    assert quality.miou == pytest.approx(expected)


def test_the_synthetic_cpu_example_config_is_the_preset() -> None:
    """``examples/configs/proxies_synthetic_cpu.yaml`` (the command line's preset) = ``PRESETS``."""
    import yaml

    path = Path(__file__).resolve().parents[2] / "examples" / "configs" / "proxies_synthetic_cpu.yaml"
    settings = yaml.safe_load(path.read_text())
    assert settings.pop("split") == "train"
    assert (
        ProxyConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()})
        == PRESETS["synthetic-cpu"]
    )
