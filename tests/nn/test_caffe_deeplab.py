"""DeepLab v2 on the MSRA / Caffe ResNet-101: the kazuto1011/deeplab-pytorch files load by name
and give the features of an independent forward pass; wrong files are refused with a count."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from sal_lightning.models.cam import CAMNet
from sal_lightning.nn import build_deeplab, load_weights
from sal_lightning.nn.deeplabv2 import CaffeDeepLabV2
from tests.nn.caffe_layout import (
    calibrated_state_dict,
    reference_features,
    to_caffe_space,
    with_aspp,
)

BACKBONE = "deeplabv2_caffe_resnet101"


@pytest.fixture(scope="module")
def coco_init(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, torch.Tensor], Path]:
    """A ``deeplabv1_resnet101-coco.pth``-style file: the trunk and the 91-class fc, no prefix."""
    state = calibrated_state_dict(seed=0)
    path = tmp_path_factory.mktemp("weights") / "deeplabv1_resnet101-coco.pth"
    torch.save(state, path)
    return state, path


def test_the_trunk_is_resnet101_with_the_caffe_layout() -> None:
    with torch.device("meta"):
        model = build_deeplab(BACKBONE)
        out = model(torch.empty(1, 3, 321, 321))
    assert isinstance(model, CaffeDeepLabV2)
    assert out.low_res_logits.shape == (1, 21, 41, 41) and out.features.shape == (1, 2048, 41, 41)
    trunk = sum(p.numel() for p in model.backbone_parameters())
    assert trunk == 42_500_160  # torchvision's ResNet-101 without its fc: the same widths and depth
    convs = {n: m for n, m in model.trunk.named_modules() if isinstance(m, nn.Conv2d)}
    assert convs["layer3.block1.reduce.conv"].stride == (2, 2)  # the stride sits in the first 1x1
    assert convs["layer3.block1.conv3x3.conv"].stride == (1, 1)
    assert convs["layer4.block7.conv3x3.conv"].dilation == (2, 2)
    assert convs["layer5.block3.conv3x3.conv"].dilation == (4, 4)
    assert all(c.bias is None for c in convs.values())
    norms = [m for m in model.trunk.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 104 and all(m.eps == 1e-5 for m in norms)
    pool = model.trunk.layer1.pool
    assert (pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode) == (3, 2, 1, True)
    assert sorted(n for n, _ in model.aspp.named_children()) == ["c0", "c1", "c2", "c3"]
    assert [model.aspp[f"c{k}"].dilation for k in range(4)] == [(r, r) for r in (6, 12, 18, 24)]


def test_the_coco_init_loads_every_tensor_and_gives_the_reference_features(
    coco_init: tuple[dict[str, torch.Tensor], Path],
) -> None:
    state, path = coco_init
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the COCO fc is skipped silently
        model = build_deeplab(BACKBONE, num_classes=21, encoder_weights=path).eval()
    trunk = model.trunk.state_dict()
    assert all(torch.equal(trunk[k], v) for k, v in state.items() if not k.startswith("fc."))
    assert model.frozen_bn and not any(
        m.training for m in model.trunk.modules() if isinstance(m, nn.BatchNorm2d)
    )
    # in float64, so that the comparison measures the network, not float32's rounding of the
    # 0..255 input (4.6e-5, which 101 layers amplify to about 3e-3 with these random weights)
    x = torch.randn(2, 3, 65, 57, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    with torch.no_grad():
        features = model.double()(x).features
    expected = reference_features(state, x)
    assert features.shape == expected.shape == (2, 2048, 9, 8)
    assert 0.1 < float(expected.std()) < 100  # order one, as with real weights
    torch.testing.assert_close(features, expected, rtol=1e-4, atol=1e-4)
    with torch.no_grad():  # float32: the same network on the same converted input, bit for bit
        model.float()
        features32 = model(x.float()).features
        same_input = reference_features(state, x.float(), space=model.input_space)
    torch.testing.assert_close(features32, same_input, rtol=1e-4, atol=1e-4)


def test_trained_files_load_with_base_and_module_prefixes(
    coco_init: tuple[dict[str, torch.Tensor], Path], tmp_path: Path
) -> None:
    state, _ = coco_init
    x = torch.randn(1, 3, 49, 49, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    features = reference_features(state, x)
    for prefix in ("base.", "module.base.", "module."):
        trained = with_aspp(state, 21, prefix)
        path = tmp_path / f"{prefix or 'plain'}pth"
        torch.save(trained, path)
        model = build_deeplab(BACKBONE, num_classes=21)
        assert load_weights(model, path) == "model"
        model.eval().double()
        with torch.no_grad():
            out = model(x)
        torch.testing.assert_close(out.features, features, rtol=1e-4, atol=1e-4)
        expected = sum(
            F.conv2d(
                features,
                trained[f"{prefix}aspp.c{k}.weight"].double(),
                trained[f"{prefix}aspp.c{k}.bias"].double(),
                padding=r,
                dilation=r,
            )
            for k, r in enumerate((6, 12, 18, 24))
        )
        torch.testing.assert_close(out.low_res_logits, expected, rtol=1e-4, atol=1e-4)


def test_a_classifier_of_another_class_count_is_skipped(
    coco_init: tuple[dict[str, torch.Tensor], Path], tmp_path: Path
) -> None:
    state, _ = coco_init
    path = tmp_path / "deeplabv2_resnet101_msc-vocaug-20000.pth"
    torch.save(with_aspp(state, 21), path)
    torch.manual_seed(0)
    model = build_deeplab(BACKBONE, num_classes=81)
    head = model.aspp["c0"].weight.detach().clone()
    with pytest.warns(UserWarning, match="has 21 classes, the model 81"):
        assert load_weights(model, path) == "backbone"
    assert torch.equal(model.aspp["c0"].weight, head)
    assert torch.equal(
        model.trunk.state_dict()["layer5.block3.increase.bn.running_var"],
        state["layer5.block3.increase.bn.running_var"],
    )


def test_wrong_files_are_refused_with_the_count_of_matched_tensors(
    coco_init: tuple[dict[str, torch.Tensor], Path], tmp_path: Path
) -> None:
    state, _ = coco_init
    torchvision_file = tmp_path / "resnet101.pth"
    torch.save(torchvision.models.resnet101().state_dict(), torchvision_file)
    with pytest.raises(
        ValueError, match=r"matched 0 of 520 backbone tensors.*torchvision / smp ResNet layout"
    ):
        build_deeplab(BACKBONE, encoder_weights=torchvision_file)
    partial = dict(state)
    del partial["layer4.block23.conv3x3.conv.weight"]
    partial["layer2.block1.reduce.bn.weight"] = torch.ones(3)
    partial_file = tmp_path / "partial.pth"
    torch.save(partial, partial_file)
    with pytest.raises(
        ValueError, match=r"matched 518 of 520 .*1 missing.*layer4\.block23.*1 of another shape"
    ):
        build_deeplab(BACKBONE, encoder_weights=partial_file)
    caffe_file = tmp_path / "coco.pth"
    torch.save(with_aspp(state, 21), caffe_file)
    with pytest.raises(
        ValueError, match=r"matched 0 of \d+ backbone tensors.*read by deeplabv2_caffe_resnet101"
    ):
        build_deeplab("deeplabv2_resnet101", encoder_weights=caffe_file)


def test_a_torchvision_file_still_loads_into_deeplabv2_resnet101(tmp_path: Path) -> None:
    torch.manual_seed(1)
    reference = torchvision.models.resnet101()
    path = tmp_path / "resnet101-imagenet.pth"
    state = {k: v for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, path)  # the hub files have no step counters; fc.* is skipped
    model = build_deeplab("deeplabv2_resnet101", encoder_weights=path)
    assert model.frozen_bn
    for key, value in model.backbone_module().state_dict().items():
        if not key.endswith("num_batches_tracked"):
            torch.testing.assert_close(value, reference.state_dict()[key])


def test_the_input_space_conversion_is_the_hand_computation() -> None:
    x = torch.randn(2, 3, 5, 7)
    with torch.device("meta"):
        caffe = build_deeplab(BACKBONE)
        rgb_caffe = build_deeplab(BACKBONE, input_space="rgb_imagenet")
    assert caffe.input_space.space == CaffeDeepLabV2.weights_space == "bgr_caffe"
    assert rgb_caffe.input_space.space == "rgb_imagenet"
    space = build_deeplab("deeplabv2_resnet18", input_space="bgr_caffe").input_space
    torch.testing.assert_close(space(x), to_caffe_space(x), rtol=0, atol=1e-4)
    # by hand, one pixel: RGB in 0..1 from the ImageNet normalisation, then BGR * 255 - mean
    r, g, b = (
        float(x[0, c, 1, 2]) * s + m
        for c, s, m in zip(range(3), (0.229, 0.224, 0.225), (0.485, 0.456, 0.406), strict=True)
    )
    expected = torch.tensor([b * 255 - 104.008, g * 255 - 116.669, r * 255 - 122.675])
    torch.testing.assert_close(space(x)[0, :, 1, 2], expected, rtol=0, atol=1e-4)
    # other batch statistics: the conversion starts from them
    custom = build_deeplab(
        "deeplabv2_resnet18",
        input_space="bgr_caffe",
        pixel_mean=(0.5, 0.5, 0.5),
        pixel_std=(0.25, 0.25, 0.25),
    )
    torch.testing.assert_close(
        custom.input_space(x),
        (x.flip(1) * 0.25 + 0.5) * 255 - torch.tensor([104.008, 116.669, 122.675]).view(3, 1, 1),
    )
    imagenet = build_deeplab("deeplabv2_resnet18").input_space
    assert imagenet.identity and imagenet(x) is x
    back = build_deeplab(
        "deeplabv2_resnet18", pixel_mean=(0.5, 0.5, 0.5), pixel_std=(0.25, 0.25, 0.25)
    ).input_space
    mean, std = (
        torch.tensor((0.485, 0.456, 0.406)).view(3, 1, 1),
        torch.tensor((0.229, 0.224, 0.225)).view(3, 1, 1),
    )
    torch.testing.assert_close(back(x), ((x * 0.25 + 0.5) - mean) / std)
    # the CAM network reads the trunk's features through the same conversion
    cam = CAMNet(
        "deeplabv2_resnet18", backbone_kwargs={"encoder_depth": 3, "input_space": "bgr_caffe"}
    ).eval()
    with torch.no_grad():
        cams, _ = cam(x[..., :4, :4])
        trunk = cam.backbone.extract_features(to_caffe_space(x[..., :4, :4]))
        torch.testing.assert_close(cams, cam.classifier(trunk), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="input_space: expected one of"):
        build_deeplab("deeplabv2_resnet18", input_space="yuv")


def test_freeze_bn_follows_the_weights(coco_init: tuple[dict[str, torch.Tensor], Path]) -> None:
    _, path = coco_init
    assert not build_deeplab("deeplabv2_resnet18").frozen_bn  # no statistics to keep
    assert build_deeplab(BACKBONE, encoder_weights=path).frozen_bn
    assert not build_deeplab(BACKBONE, encoder_weights=path, freeze_bn=False).frozen_bn
    with pytest.warns(UserWarning, match="freeze_bn: deeplabv2_resnet18 loads no weights"):
        assert build_deeplab("deeplabv2_resnet18", freeze_bn=True).frozen_bn
    with pytest.raises(ValueError, match="knows the hub name 'coco' only"):
        build_deeplab(BACKBONE, encoder_weights="imagenet")
    with pytest.raises(ValueError, match="encoder_depth applies to smp encoders"):
        build_deeplab(BACKBONE, encoder_depth=4)
