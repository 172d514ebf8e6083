"""DeepLab v2 (the paper's DeepLab-ASPP): head rates, summed logits, stride 8, frozen batch norm."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from sal_lightning.nn import DeepLab, build_deeplab, param_groups
from sal_lightning.nn.deeplabv2 import ASPP_V2_RATES, DeepLabV2
from sal_lightning.nn.input_space import InputSpace


def _tiny(**kwargs: object) -> DeepLab:
    torch.manual_seed(0)
    return build_deeplab("deeplabv2_resnet18", num_classes=5, **kwargs)  # type: ignore[arg-type]


def _batch_norms(module: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]


def test_head_is_four_dilated_3x3_classifiers_without_norm_pooling_or_dropout() -> None:
    model = _tiny()
    assert isinstance(model, DeepLabV2)
    assert ASPP_V2_RATES == (6, 12, 18, 24)
    head = list(model.head_parameters())
    assert {id(p) for p in head} == {id(p) for p in model.aspp.parameters()}
    assert [c.dilation for c in model.aspp] == [(r, r) for r in ASPP_V2_RATES]
    assert [c.padding for c in model.aspp] == [(r, r) for r in ASPP_V2_RATES]
    for conv in model.aspp:
        assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3)
        assert conv.in_channels == model.feature_channels == 512 and conv.out_channels == 5
        assert abs(float(conv.weight.detach().std()) - 0.01) < 0.002 and not conv.bias.any()  # type: ignore[union-attr]
    kinds = {type(m) for m in model.modules() if not any(m is b for b in model.encoder.modules())}
    assert kinds == {DeepLabV2, InputSpace, nn.ModuleList, nn.Conv2d}  # no BN, pooling, dropout or 1x1 branch
    assert not list(model.input_space.parameters()) and model.input_space.identity


@torch.no_grad()
def test_logits_are_the_sum_of_the_branches_at_output_stride_8() -> None:
    model = _tiny().eval()
    x = torch.randn(2, 3, 47, 62)
    out = model(x)
    # the encoder by hand: its stride-8 features, then each rate's convolution, summed
    features = model.encoder(x)[-1]
    assert features.shape == (2, 512, math.ceil(47 / 8), math.ceil(62 / 8))
    expected = sum(
        F.conv2d(features, c.weight, c.bias, padding=r, dilation=r)
        for c, r in zip(model.aspp, ASPP_V2_RATES, strict=True)
    )
    torch.testing.assert_close(out.low_res_logits, expected)
    torch.testing.assert_close(out.features, features)
    assert out.logits.shape == (2, 5, 47, 62) and model.output_stride == 8
    # conv4 / conv5 dilated 2 / 4 in every block, strides removed
    for layer, rate in ((model.encoder.layer3, 2), (model.encoder.layer4, 4)):
        convs = [m for m in layer.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
        assert all(c.dilation == (rate, rate) and c.stride == (1, 1) for c in convs)


def test_backbone_batch_norm_stays_frozen_through_a_training_step(tmp_path: Path) -> None:
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    model = _tiny(encoder_weights=path)  # frozen: the weights' statistics are kept
    model.train()
    norms = _batch_norms(model.encoder)
    assert norms and all(not m.training for m in norms)
    assert all(not p.requires_grad for m in norms for p in m.parameters())
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    groups = param_groups(model.backbone_parameters(), model.head_parameters(), lr=0.1, weight_decay=0.0)
    grouped = {id(p) for g in groups for p in g["params"]}
    assert not grouped & {id(p) for m in norms for p in m.parameters()}
    optimizer = torch.optim.SGD(groups, lr=0.1)
    x = torch.randn(2, 3, 33, 33) * 3 + 1  # far from the initial running statistics
    target = torch.randint(0, 5, (2, 33, 33))
    F.cross_entropy(model(x).logits, target).backward()
    optimizer.step()
    after = model.encoder.state_dict()
    for key, value in before.items():
        is_norm = any(
            key.startswith(n) for n, m in model.encoder.named_modules() if isinstance(m, nn.BatchNorm2d)
        )
        if is_norm:
            assert torch.equal(after[key], value), key  # running stats and affine parameters unchanged
    assert not torch.equal(after["conv1.weight"], before["conv1.weight"])  # the convolutions learn
    model.train(False)
    model.train(True)
    assert all(not m.training for m in norms)


def test_freeze_bn_off_trains_batch_norm_and_smp_deeplabv3_can_freeze() -> None:
    free = _tiny(freeze_bn=False).train()
    assert all(m.training and m.weight.requires_grad for m in _batch_norms(free.encoder))
    v3 = build_deeplab("deeplabv3_resnet18", num_classes=5, decoder_channels=16, freeze_bn=True).train()
    assert all(not m.training for m in _batch_norms(v3.backbone_module()))
    assert all(m.training for m in _batch_norms(v3.decoder))  # the head's own batch norm trains
    with pytest.raises(ValueError, match="freeze_bn: vgg16_aspp has no batch norm"):
        build_deeplab("vgg16_aspp", freeze_bn=True)


def test_resnet101_network_at_321_gives_41x41_cells_and_321x321_logits() -> None:
    with torch.device("meta"):  # the full-size network's shapes, without its arithmetic
        model = build_deeplab("deeplabv2_resnet101")
        out = model(torch.empty(2, 3, 321, 321))
    assert out.low_res_logits.shape == (2, 21, 41, 41) and out.features.shape == (2, 2048, 41, 41)
    assert out.logits.shape == (2, 21, 321, 321)
    assert 43e6 < sum(p.numel() for p in model.parameters()) < 45e6  # DeepLab v2 ResNet-101: 44M


def test_torchvision_resnet_file_loads_into_the_backbone(tmp_path: Path) -> None:
    torch.manual_seed(1)
    reference = torchvision.models.resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)  # with fc.*: skipped as an ImageNet classifier
    model = _tiny(encoder_weights=path)
    for key, value in model.encoder.state_dict().items():
        torch.testing.assert_close(value, reference.state_dict()[key])


def test_build_errors() -> None:
    with pytest.raises(ValueError, match="decoder_channels and fc_channels do not apply"):
        build_deeplab("deeplabv2_resnet18", decoder_channels=64)
    with pytest.raises(ValueError, match="encoder_name: 'nonet'"):
        build_deeplab("deeplabv2_nonet")
    with pytest.raises(ValueError, match="atrous_rates"):
        build_deeplab("deeplabv2_resnet18", atrous_rates=())
    with pytest.raises(ValueError, match="output_stride"):
        build_deeplab("deeplabv2_resnet18", output_stride=32)
