"""Named and URL weights: fetched once into the torch hub cache (file:// URLs and a file:// mirror
made by the tests), read from there later, and a one-line error naming the cache path offline."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from segmentation_models_pytorch.encoders import encoders, get_encoder

from sal_lightning.nn import build_deeplab
from sal_lightning.nn.hub import COCO_INIT, cache_dir, check_weights_value, url_weights
from tests.nn.caffe_layout import caffe_state_dict


@pytest.fixture
def caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Empty torch hub and Hugging Face caches under ``tmp_path``; returns the torch hub's checkpoints."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_a_url_is_downloaded_once_into_the_torch_cache(caches: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    reference = torchvision.models.resnet18().state_dict()
    source = tmp_path / "mirror" / "resnet18.pth"
    source.parent.mkdir()
    torch.save(reference, source)
    url = source.as_uri()
    model = build_deeplab("deeplabv2_resnet18", encoder_weights=url)
    cached = url_weights(url).path
    assert cache_dir() == caches and cached.parent == caches and cached.is_file()
    assert cached.name.startswith("resnet18-") and cached.suffix == ".pth"
    torch.testing.assert_close(
        model.backbone_module().state_dict()["layer1.0.conv1.weight"], reference["layer1.0.conv1.weight"]
    )
    assert model.frozen_bn  # weights were loaded
    source.unlink()  # later builds read the cache
    again = build_deeplab("deeplabv2_resnet18", encoder_weights=url)
    torch.testing.assert_close(
        again.backbone_module().state_dict()["layer4.1.bn2.running_var"],
        reference["layer4.1.bn2.running_var"],
    )


def test_smp_hub_names_come_from_the_pinned_repository(
    caches: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``imagenet`` of an smp encoder: ``HF_ENDPOINT/<repo>/resolve/<revision>/model.safetensors``,
    here a file:// mirror holding random weights in smp's layout."""
    settings = encoders["resnet18"]["pretrained_settings"]["imagenet"]
    mirror = tmp_path / "hf-mirror"
    target = mirror / settings["repo_id"] / "resolve" / settings["revision"] / "model.safetensors"
    target.parent.mkdir(parents=True)
    torch.manual_seed(1)
    weights = get_encoder("resnet18").state_dict()
    save_file(weights, str(target))
    monkeypatch.setenv("HF_ENDPOINT", mirror.as_uri())
    model = build_deeplab("deeplabv3_resnet18", decoder_channels=16, encoder_weights="imagenet")
    for key, value in model.backbone_module().state_dict().items():
        torch.testing.assert_close(value, weights[key])
    assert len(list(caches.glob("smp-hub--resnet18.imagenet-*.safetensors"))) == 1


def test_offline_a_missing_weight_fails_with_one_line_naming_the_cache(
    caches: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")  # a name that never resolves (RFC 2606)
    with pytest.raises(OSError) as info:
        build_deeplab("deeplabv2_resnet18", encoder_weights="imagenet")
    message = str(info.value)
    assert "\n" not in message
    assert str(caches / "smp-hub--resnet18.imagenet-") in message
    assert "cannot be downloaded" in message and "sal-lightning weights download --config CFG" in message
    assert "local file path" in message
    with pytest.raises(
        OSError, match=r"resnet18-[0-9a-f]{8}\.pth\) and https://weights\.invalid/resnet18\.pth"
    ):
        build_deeplab("deeplabv2_resnet18", encoder_weights="https://weights.invalid/resnet18.pth")


def test_the_coco_init_is_a_named_cache_file(caches: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        build_deeplab("deeplabv2_caffe_resnet101", encoder_weights="coco")
    message = str(info.value)
    assert str(caches / "deeplabv1_resnet101-coco.pth") in message and "convert.py --dataset coco" in message
    caches.mkdir(parents=True)
    state = caffe_state_dict(seed=2)
    torch.save(state, caches / COCO_INIT.filename)
    model = build_deeplab("deeplabv2_caffe_resnet101", encoder_weights="coco")
    key = "layer3.block2.conv3x3.conv.weight"
    assert torch.equal(model.trunk.state_dict()[key], state[key]) and model.frozen_bn
    with pytest.raises(
        FileNotFoundError, match="deeplabv1_resnet101-coco.pth' not found; no stable public URL"
    ):
        check_weights_value(str(tmp_path / "deeplabv1_resnet101-coco.pth"), "deeplabv2_caffe_resnet101")
    with pytest.raises(ValueError, match="names no file"):
        check_weights_value("https://example.org/", "deeplabv2_resnet18")
    check_weights_value("coco", "deeplabv2_caffe_resnet101")  # a name: no file, no network needed
