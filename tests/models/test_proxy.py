"""Step 1's networks: the CAM classifier and ProxyNet (SEC losses, DSRG seed growth, CRF targets)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sal_lightning.models.cam import CAMNet, multiscale_cams
from sal_lightning.models.proxy import ProxyNet, gather_crf_targets, restrict_to_tags, submit_crf_targets
from sal_lightning.postprocess.crf import SEC_TRAIN_CRF, CRFPool, dense_crf

TINY = {"encoder_depth": 3, "decoder_channels": 16}


def test_cams_are_flip_equivariant_and_average_to_the_logits() -> None:
    torch.manual_seed(0)
    net = CAMNet("deeplabv3_resnet18", output_stride=16, backbone_kwargs={"encoder_depth": 3}).eval()
    assert not hasattr(net.backbone, "decoder")  # the segmentation head is gone
    image = torch.randn(2, 3, 32, 40)
    with torch.no_grad():
        cams, logits = net(image)
        torch.testing.assert_close(logits, cams.mean((2, 3)))
        fused = multiscale_cams(net, image, scales=(1.0, 0.5))
        mirrored = multiscale_cams(net, image.flip(-1), scales=(1.0, 0.5))
    assert fused.shape == (2, 20, 32, 40) and (fused >= 0).all()
    torch.testing.assert_close(mirrored, fused.flip(-1), atol=1e-4, rtol=1e-4)


def test_vgg16_cam_network_has_conv6_conv7_and_gap_equals_an_fc_classifier() -> None:
    """The paper's CAM network: VGG16 conv layers, conv6/conv7, GAP on conv7, a linear classifier."""
    torch.manual_seed(0)
    net = CAMNet("vgg16_aspp", output_stride=8, conv7_channels=32).eval()
    assert not hasattr(net.backbone, "branches")  # DeepLab-ASPP's head is gone, its trunk kept
    assert net.conv67 is not None and [
        m.kernel_size for m in net.conv67 if isinstance(m, torch.nn.Conv2d)
    ] == [
        (3, 3),
        (1, 1),
    ]
    image = torch.randn(1, 3, 40, 48)
    with torch.no_grad():
        cams, logits = net(image)
        conv7 = net.conv67(net.backbone.extract_features(image))
    assert cams.shape == (1, 20, 5, 6)
    # GAP on conv7, then a fully connected classifier, is the same function as the CAMs' mean
    fc = torch.nn.functional.linear(conv7.mean((2, 3)), net.classifier.weight[:, :, 0, 0])
    torch.testing.assert_close(logits, fc, atol=1e-5, rtol=1e-4)
    head = {id(p) for p in net.head_parameters()}
    assert head == {id(p) for p in [*net.conv67.parameters(), *net.classifier.parameters()]}
    with pytest.raises(ValueError, match="conv7_channels"):
        CAMNet("vgg16_aspp", output_stride=8, conv7_channels=0)


def test_restrict_to_tags_keeps_background_and_tagged_classes() -> None:
    probs = torch.rand(1, 4, 2, 2).softmax(1)
    out = restrict_to_tags(probs, torch.tensor([[0.0, 1.0, 0.0]]))
    assert out[:, [1, 3]].abs().sum() == 0
    torch.testing.assert_close(out.sum(1), torch.ones(1, 2, 2))
    torch.testing.assert_close(out[:, 2] / out[:, 0], probs[:, 2] / probs[:, 0])


def test_crf_targets_match_dense_crf_on_the_downscaled_image() -> None:
    torch.manual_seed(1)
    image = torch.randn(2, 3, 17, 25)  # h = 3, w = 4 cells at stride 8: corners on pixels 0, 8, 16 (24)
    probs = torch.rand(2, 3, 3, 4).softmax(1)
    with CRFPool(0) as pool:
        q = gather_crf_targets(submit_crf_targets(pool, image, probs), probs)
    assert q.shape == probs.shape and not q.requires_grad
    # the downscaled image: bilinear with aligned corners, so the corner cells are the corner pixels
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    small = torch.nn.functional.interpolate(
        image, (3, 4), mode="bilinear", align_corners=True, antialias=True
    )
    for i in range(2):
        rgb = ((small[i] * std + mean) * 255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
        expected = dense_crf(np.ascontiguousarray(rgb), probs[i].numpy(), SEC_TRAIN_CRF)
        np.testing.assert_allclose(q[i].numpy(), expected, atol=1e-6)


def _confident_proxynet(grow: bool) -> ProxyNet:
    """A ProxyNet whose output says 'background, p > 0.99' everywhere (head bias)."""
    model = ProxyNet(
        "deeplabv3_resnet18", backbone_kwargs=TINY, constrain_weight=0.0, grow=grow, crf=False, dropout=0.0
    )
    head = model.net.segmentation_head[0]
    torch.nn.init.zeros_(head.weight)
    with torch.no_grad():
        head.bias.fill_(-10.0)
        head.bias[0] = 10.0
    return model.eval()


def test_proxynet_grows_seeds_through_confident_pixels() -> None:
    seeds = torch.full((1, 33, 33), 255)
    seeds[0, :4, :4] = 0  # a background seed in the corner
    seeds[0, 16, 16] = 1  # a foreground seed in the middle
    tags = torch.zeros(1, 20)
    tags[0, 0] = 1
    batch = {"image": torch.randn(1, 3, 33, 33), "mask": seeds, "tags": tags}
    with torch.no_grad():
        grown = _confident_proxynet(grow=True).losses(batch)
        plain = _confident_proxynet(grow=False).losses(batch)
    # 5 x 5 cells at stride 8; without growth 1 bg + 1 fg cell are seeds, with growth every cell is
    assert plain["seed_fraction"].item() == pytest.approx(2 / 25)
    assert grown["seed_fraction"].item() == 1.0
    assert {"loss", "loss_seed", "loss_expand"} <= set(grown) and "loss_constrain" not in grown


def test_proxynet_trains_on_deeplab_v2_at_its_stride() -> None:
    """DSRG on DeepLab v2 (the paper's ResNet-101 ProxyNet, a ResNet-18 here): the losses at stride 8."""
    torch.manual_seed(0)
    model = ProxyNet(backbone="deeplabv2_resnet18", backbone_kwargs={"encoder_depth": 3}, constrain_weight=0)
    seeds = torch.full((2, 33, 33), 255)
    seeds[:, :8, :8] = 0
    seeds[:, 16:24, 16:24] = 3
    tags = torch.zeros(2, 20)
    tags[:, 2] = 1
    losses = model.train().losses({"image": torch.randn(2, 3, 33, 33), "mask": seeds, "tags": tags})
    assert torch.isfinite(losses["loss"]) and losses["seed_fraction"] > 0
    losses["loss"].backward()
    assert all(p.grad is not None for g in model.parameter_groups() for p in g["params"])
