"""DeepLab backbones: shapes at odd sizes, padding/cropping, parameter groups, local weights."""

from __future__ import annotations

import subprocess
import sys
from collections import OrderedDict
from itertools import chain
from pathlib import Path

import pytest
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
import torchvision

from sal_lightning.nn import DeepLab, DeepLabOutput, build_deeplab, load_weights, param_groups


def _tiny_smp(**kwargs: object) -> DeepLab:
    options: dict = {"decoder_channels": 16, "num_classes": 5, **kwargs}
    return build_deeplab("deeplabv3_resnet18", **options).eval()


@pytest.fixture(scope="module")
def reference_smp(tmp_path_factory: pytest.TempPathFactory) -> tuple[smp.DeepLabV3, Path]:
    """An ``smp.DeepLabV3`` (resnet18, 5 classes) and its state dict saved to a file."""
    torch.manual_seed(0)
    net = smp.DeepLabV3(
        encoder_name="resnet18", encoder_weights=None, encoder_output_stride=8, decoder_channels=16, classes=5
    ).eval()
    path = tmp_path_factory.mktemp("weights") / "smp_deeplab.pth"
    torch.save(net.state_dict(), path)
    return net, path


@pytest.fixture(scope="module")
def vgg_models() -> dict[str, DeepLab]:
    torch.manual_seed(0)
    return {name: build_deeplab(name).eval() for name in ("vgg16_largefov", "vgg16_aspp")}


def test_smp_output_shapes_at_odd_size() -> None:
    model = _tiny_smp()
    out = model(torch.randn(2, 3, 50, 66))
    assert isinstance(out, DeepLabOutput)
    assert out.logits.shape == (2, 5, 50, 66)
    assert out.low_res_logits.shape == (2, 5, 7, 9)  # ceil(50/8), ceil(66/8)
    assert out.features.shape == (2, model.feature_channels, 7, 9)
    assert model.feature_channels == 512 and model.output_stride == 8
    model16 = _tiny_smp(output_stride=16)
    out16 = model16(torch.randn(1, 3, 50, 66))
    assert model16.output_stride == 16
    assert out16.logits.shape == (1, 5, 50, 66) and out16.low_res_logits.shape == (1, 5, 4, 5)


def _smp_upsampled(net: smp.DeepLabV3, out: DeepLabOutput) -> torch.Tensor:
    """smp.DeepLabV3's own upsampling (scale factor 8, align_corners=True) of our low-res logits."""
    return net.segmentation_head[1](out.low_res_logits)


@torch.no_grad()
def test_smp_equals_smp_forward_and_crops_padding(reference_smp: tuple[smp.DeepLabV3, Path]) -> None:
    net, path = reference_smp
    model = _tiny_smp(encoder_weights=path)  # whole-network state dict of smp.DeepLabV3
    x = torch.randn(2, 3, 48, 64)
    torch.testing.assert_close(_smp_upsampled(net, model(x)), net(x), rtol=1e-5, atol=1e-5)
    odd = x[..., :43, :61]
    padded = F.pad(odd, (0, 3, 0, 5))  # zeros up to 48 x 64
    torch.testing.assert_close(_smp_upsampled(net, model(odd)), net(padded), rtol=1e-5, atol=1e-5)
    reflected = build_deeplab(
        "deeplabv3_resnet18", num_classes=5, decoder_channels=16, encoder_weights=path, pad_mode="reflect"
    ).eval()
    torch.testing.assert_close(
        _smp_upsampled(net, reflected(odd)),
        net(F.pad(odd, (0, 3, 0, 5), mode="reflect")),
        rtol=1e-5,
        atol=1e-5,
    )


@torch.no_grad()
def test_upsampled_logits_follow_deeplab_geometry() -> None:
    """Cell (i, j) of the stride-8 logits sits on input pixel (8i, 8j); the margin repeats the edge."""
    model = _tiny_smp()
    out = model(torch.randn(1, 3, 45, 57))
    low, logits = out.low_res_logits, out.logits
    assert low.shape[-2:] == (6, 8) and logits.shape[-2:] == (45, 57)
    torch.testing.assert_close(logits[..., ::8, ::8], low)
    torch.testing.assert_close(logits[..., 8, 4], (low[..., 1, 0] + low[..., 1, 1]) / 2)
    torch.testing.assert_close(logits[..., 2, 16], 0.75 * low[..., 0, 2] + 0.25 * low[..., 1, 2])
    for row in range(41, 45):  # past the last cell (row 40): repeated
        torch.testing.assert_close(logits[..., row, :], logits[..., 40, :])


def test_reduced_encoder_depth_uses_every_parameter() -> None:
    model = build_deeplab("deeplabv3_resnet18", num_classes=3, decoder_channels=8, encoder_depth=3)
    assert not hasattr(model.backbone_module(), "layer3")
    assert model.feature_channels == 128 and model.output_stride == 8
    model.train()
    out = model(torch.randn(2, 3, 33, 35))
    (out.logits.mean() + out.features.mean()).backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused


def test_vgg16_shapes_and_sizes(vgg_models: dict[str, DeepLab]) -> None:
    trunk_reference = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
    trunk_params = sum(p.numel() for p in trunk_reference.parameters())
    branch = 512 * 1024 * 9 + 1024 + 1024 * 1024 + 1024 + 1024 * 21 + 21  # fc6 + fc7 + fc8
    with torch.no_grad():
        for name, branches in (("vgg16_largefov", 1), ("vgg16_aspp", 4)):
            model = vgg_models[name]
            out = model(torch.randn(1, 3, 41, 41))
            assert out.logits.shape == (1, 21, 41, 41)
            assert out.low_res_logits.shape == (1, 21, 6, 6)
            assert out.features.shape == (1, 512, 6, 6) and model.feature_channels == 512
            assert sum(p.numel() for p in model.backbone_parameters()) == trunk_params
            assert sum(p.numel() for p in model.head_parameters()) == branches * branch
    rates = [m.fc6.dilation[0] for m in vgg_models["vgg16_aspp"].branches]  # type: ignore[union-attr]
    assert rates == [6, 12, 18, 24]
    assert vgg_models["vgg16_largefov"].branches[0].fc6.dilation == (12, 12)  # type: ignore[index,union-attr]


def test_vgg16_aspp_sums_its_branches(vgg_models: dict[str, DeepLab]) -> None:
    model = vgg_models["vgg16_aspp"]
    with torch.no_grad():
        features = model.extract_features(torch.randn(1, 3, 17, 23))
        assert features.shape == (1, 512, 3, 3)
        expected = sum(branch(features) for branch in model.branches)  # type: ignore[union-attr]
        torch.testing.assert_close(model.classify(features), expected)


@pytest.mark.parametrize("name", ["smp", "vgg16_largefov"])
def test_backbone_and_head_partition_the_parameters(name: str, vgg_models: dict[str, DeepLab]) -> None:
    model = _tiny_smp() if name == "smp" else vgg_models[name]
    backbone = [id(p) for p in model.backbone_parameters()]
    head = [id(p) for p in model.head_parameters()]
    assert backbone and head
    assert not set(backbone) & set(head)
    assert sorted(backbone + head) == sorted(id(p) for p in model.parameters())


def test_param_groups_learning_rates_and_decay() -> None:
    model = _tiny_smp()
    frozen = next(iter(model.backbone_parameters()))
    frozen.requires_grad_(False)
    groups = param_groups(model.backbone_parameters(), model.head_parameters(), lr=1e-3, weight_decay=5e-4)
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"backbone_weight", "backbone_bias", "head_weight", "head_bias"}
    assert by_name["backbone_weight"]["lr"] == pytest.approx(1e-3)
    assert by_name["backbone_bias"]["lr"] == pytest.approx(1e-3)
    assert by_name["head_weight"]["lr"] == pytest.approx(1e-2)
    assert by_name["head_bias"]["lr"] == pytest.approx(2e-2)
    assert (
        by_name["head_weight"]["weight_decay"] == 5e-4 and by_name["backbone_weight"]["weight_decay"] == 5e-4
    )
    assert by_name["head_bias"]["weight_decay"] == 0.0 and by_name["backbone_bias"]["weight_decay"] == 0.0
    assert all(p.dim() > 1 for g in groups if g["name"].endswith("weight") for p in g["params"])
    assert all(p.dim() == 1 for g in groups if g["name"].endswith("bias") for p in g["params"])
    grouped = [id(p) for g in groups for p in g["params"]]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(grouped) == sorted(trainable) and id(frozen) not in grouped
    head_ids = {id(p) for p in model.head_parameters()}
    assert all(id(p) in head_ids for g in groups if g["name"].startswith("head") for p in g["params"])
    optimiser = torch.optim.SGD(groups, lr=1e-3, momentum=0.9)
    model.train()
    model(torch.randn(2, 3, 16, 16)).logits.mean().backward()
    optimiser.step()
    with pytest.raises(ValueError, match="listed twice"):
        param_groups(model.parameters(), chain(model.head_parameters()), lr=1e-3, weight_decay=0.0)


def test_local_encoder_weights_load_into_the_backbone(tmp_path: Path) -> None:
    source = _tiny_smp()
    path = tmp_path / "encoder.pth"
    torch.save(source.backbone_module().state_dict(), path)
    model = _tiny_smp(encoder_weights=str(path))
    for a, b in zip(model.backbone_parameters(), source.backbone_parameters(), strict=True):
        assert torch.equal(a, b)
    assert not all(
        torch.equal(a, b) for a, b in zip(model.head_parameters(), source.head_parameters(), strict=True)
    )


def test_torchvision_resnet_file_loads_and_extra_stages_warn(tmp_path: Path) -> None:
    torch.manual_seed(1)
    resnet = torchvision.models.resnet18()
    path = tmp_path / "resnet18_imagenet.pth"
    torch.save(resnet.state_dict(), path)  # holds fc.*, which a backbone load skips silently
    model = _tiny_smp()
    assert load_weights(model, path) == "backbone"
    key = "layer4.1.conv2.weight"
    torch.testing.assert_close(model.backbone_module().state_dict()[key], resnet.state_dict()[key])
    shallow = _tiny_smp(encoder_depth=3)
    with pytest.warns(UserWarning, match="not in the backbone"):
        assert load_weights(shallow, path) == "backbone"
    torch.testing.assert_close(
        shallow.backbone_module().state_dict()["layer2.0.conv1.weight"],
        resnet.state_dict()["layer2.0.conv1.weight"],
    )


def test_torchvision_vgg16_features_load_into_the_trunk(tmp_path: Path) -> None:
    torch.manual_seed(2)
    trunk = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
    state = OrderedDict((f"features.{k}", v) for k, v in trunk.state_dict().items())
    state["classifier.6.weight"] = torch.zeros(1000, 4096)
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    model = build_deeplab("vgg16_largefov", encoder_weights=path, fc_channels=16)
    for index in (0, 10, 28):
        key = f"{index}.weight"
        torch.testing.assert_close(model.backbone_module().state_dict()[key], trunk.state_dict()[key])


def test_lightning_style_checkpoint_with_prefix(tmp_path: Path) -> None:
    source = _tiny_smp()
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in source.state_dict().items()}, "epoch": 3}, path)
    model = _tiny_smp()
    assert load_weights(model, path) == "model"
    x = torch.randn(1, 3, 24, 24)
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, source(x).logits)


def test_weight_file_errors(tmp_path: Path, reference_smp: tuple[smp.DeepLabV3, Path]) -> None:
    net, path = reference_smp  # 5 classes: the classifier keeps its initialisation, the rest loads
    with pytest.warns(UserWarning, match=r"has 5 classes, the model 21: \['segmentation_head\.0\.weight'"):
        other = build_deeplab("deeplabv3_resnet18", num_classes=21, decoder_channels=16, encoder_weights=path)
    assert torch.equal(
        other.state_dict()["decoder.aspp.convs.0.0.weight"], net.state_dict()["decoder.aspp.convs.0.0.weight"]
    )
    with pytest.raises(ValueError, match=r"head tensor decoder\..* has shape"):
        build_deeplab("deeplabv3_resnet18", num_classes=5, decoder_channels=32, encoder_weights=path)
    with pytest.raises(FileNotFoundError, match="encoder_weights: no such file"):
        build_deeplab("deeplabv3_resnet18", encoder_weights=tmp_path / "missing.pth")
    unrelated = tmp_path / "unrelated.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, unrelated)
    with pytest.raises(ValueError, match=r"matched 0 of 100 backbone tensors \(100 missing"):
        _tiny_smp(encoder_weights=unrelated)
    not_a_state_dict = tmp_path / "list.pt"
    torch.save([1, 2, 3], not_a_state_dict)
    with pytest.raises(ValueError, match="holds no state dict"):
        _tiny_smp(encoder_weights=not_a_state_dict)


def test_build_errors() -> None:
    with pytest.raises(ValueError, match="name: expected"):
        build_deeplab("resnet101")
    with pytest.raises(ValueError, match="output stride 8"):
        build_deeplab("vgg16_aspp", output_stride=16)
    with pytest.raises(ValueError, match="not a segmentation-models-pytorch encoder"):
        build_deeplab("deeplabv3_nosuchnet")
    with pytest.raises(ValueError, match="output_stride: expected 8 or 16"):
        build_deeplab("deeplabv3_resnet18", output_stride=32)
    with pytest.raises(ValueError, match="pad_mode"):
        build_deeplab("deeplabv3_resnet18", pad_mode="circular")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="x: expected a tensor"):
        _tiny_smp()(torch.randn(3, 32, 32))


def test_nn_import_is_light() -> None:
    code = (
        "import sys, sal_lightning.nn\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('segmentation_models_pytorch', 'lightning')]\n"
        "assert not bad, bad[:5]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
