"""SALSegmenter: the ablation switches against hand-written losses, backbones, optimiser, inference."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from sal_lightning import SALSegmenter
from sal_lightning.data.transforms import pad_collate
from sal_lightning.models.inference import to_uint8_images
from sal_lightning.models.schedule import poly_factor
from sal_lightning.postprocess.crf import DEEPLAB_TEST_CRF, dense_crf

TINY = {"backbone": "deeplabv3_resnet18", "backbone_kwargs": {"encoder_depth": 3, "decoder_channels": 16}}


def tiny(**overrides: Any) -> SALSegmenter:
    torch.manual_seed(0)
    return SALSegmenter(**{**TINY, **overrides}).eval()  # eval: dropout off, losses reproducible


@pytest.fixture(scope="module")
def batch() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    mask = torch.randint(0, 21, (2, 24, 28), generator=gen)
    mask[:, :3] = 255
    tags = torch.zeros(2, 20)
    tags[0, [2, 7]] = 1
    tags[1, 14] = 1
    return {
        "image": torch.randn(2, 3, 24, 28, generator=gen),
        "mask": mask,
        "tags": tags,
        "weight": torch.tensor([1.0, 0.0]),  # image 1 not selected
    }


def ce(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Plain mean cross-entropy over the non-ignored pixels."""
    return F.cross_entropy(logits, mask, ignore_index=255)


@torch.no_grad()
def test_p2_trains_on_every_proxy_without_the_branch(batch: dict[str, torch.Tensor]) -> None:
    model = tiny(use_selection=False, use_attention=False)
    assert model.classifier is None
    losses = model.losses(batch)
    assert set(losses) == {"loss", "loss_sel"}
    expected = ce(model(batch["image"]).seg_logits, batch["mask"])  # the weights are ignored
    assert losses["loss"].item() == pytest.approx(expected.item(), rel=1e-5)


@torch.no_grad()
def test_p3_p4_selection_keeps_only_selected_images(batch: dict[str, torch.Tensor]) -> None:
    model = tiny(use_selection=True, use_attention=False)
    losses = model.losses(batch)
    seg = model(batch["image"]).seg_logits
    expected = ce(seg[:1], batch["mask"][:1])  # image 0 only
    assert losses["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert losses["loss"].item() != pytest.approx(ce(seg, batch["mask"]).item(), rel=1e-3)


@torch.no_grad()
def test_p5_refines_with_class_scores_and_adds_the_attention_loss(batch: dict[str, torch.Tensor]) -> None:
    model = tiny(use_selection=True, use_attention=True, lambda_atten=2.0)
    out = model(batch["image"])
    assert out.class_logits is not None and out.class_logits.shape == (2, 20)
    # Eq. 11 written out: Z_hat = Z * [1, sigmoid(d_s)], renormalised over the channels
    z = out.seg_logits.softmax(1)
    a = torch.cat([torch.ones(2, 1), torch.sigmoid(out.class_logits)], 1)[:, :, None, None]
    z_hat = z * a / (z * a).sum(1, keepdim=True)
    sel = F.nll_loss(z_hat[:1].log(), batch["mask"][:1], ignore_index=255)
    att = F.multilabel_soft_margin_loss(out.class_logits, batch["tags"])
    losses = model.losses(batch)
    assert losses["loss_sel"].item() == pytest.approx(sel.item(), rel=1e-4)
    assert losses["loss_atten"].item() == pytest.approx(att.item(), rel=1e-5)
    assert losses["loss"].item() == pytest.approx(sel.item() + 2.0 * att.item(), rel=1e-4)


@torch.no_grad()
def test_released_variant_is_multitask_without_refinement(batch: dict[str, torch.Tensor]) -> None:
    model = tiny(attention_refine=False, branch_combine="released", lambda_atten=2.0)
    assert model.classifier is not None and model.classifier.fc is not None  # the 20 -> 20 layer
    out = model(batch["image"])
    losses = model.losses(batch)
    assert losses["loss_sel"].item() == pytest.approx(
        ce(out.seg_logits[:1], batch["mask"][:1]).item(), rel=1e-5
    )
    assert losses["loss"].item() == pytest.approx(
        losses["loss_sel"].item() + 2.0 * losses["loss_atten"].item(), rel=1e-6
    )


def test_attention_gradient_reaches_the_shared_backbone(batch: dict[str, torch.Tensor]) -> None:
    model = tiny(use_attention=True).train()
    model.losses(batch)["loss_atten"].backward()
    backbone_grads = [p.grad for p in model.net.backbone_parameters() if p.grad is not None]
    assert backbone_grads and any(g.abs().sum() > 0 for g in backbone_grads)
    assert all(p.grad is None for p in model.net.head_parameters())  # L_atten does not touch the head


@pytest.mark.parametrize(
    ("backbone", "kwargs"),
    [
        ("deeplabv3_resnet18", {"encoder_depth": 3, "decoder_channels": 16}),
        ("deeplabv2_resnet18", {"encoder_depth": 3}),
        ("vgg16_aspp", {"fc_channels": 32}),
        ("vgg16_largefov", {"fc_channels": 32}),
    ],
)
@torch.no_grad()
def test_backbone_output_shapes_at_odd_sizes(backbone: str, kwargs: dict[str, Any]) -> None:
    model = SALSegmenter(backbone=backbone, backbone_kwargs=kwargs).eval()
    out = model(torch.randn(2, 3, 37, 45))
    assert out.seg_logits.shape == (2, 21, 37, 45)
    assert out.class_logits is not None and out.class_logits.shape == (2, 20)
    assert model.segment(torch.randn(1, 3, 37, 45), refine=True).shape == (1, 21, 37, 45)


def test_parameter_groups_give_new_layers_ten_times_the_rate() -> None:
    model = tiny(lr=1e-3, weight_decay=5e-4)
    groups = {g["name"]: g for g in model.parameter_groups()}
    assert groups["backbone_weight"]["lr"] == pytest.approx(1e-3)
    assert groups["head_weight"]["lr"] == pytest.approx(1e-2)
    assert groups["head_bias"]["lr"] == pytest.approx(2e-2)
    assert groups["backbone_weight"]["weight_decay"] == 5e-4 and groups["head_bias"]["weight_decay"] == 0
    ids = [id(p) for g in groups.values() for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())  # every parameter exactly once
    head_ids = {id(p) for name in ("head_weight", "head_bias") for p in groups[name]["params"]}
    assert model.classifier is not None
    assert {id(p) for p in model.classifier.parameters()} <= head_ids  # the branch is a new layer
    assert not {id(p) for p in model.net.backbone_parameters()} & head_ids


def test_deeplabv2_segmenter_is_the_default_and_its_frozen_batch_norm_is_in_no_group(tmp_path: Path) -> None:
    assert inspect.signature(SALSegmenter).parameters["backbone"].default == "deeplabv2_resnet101"
    with torch.device("meta"):  # the paper's network at the paper's crop, shapes only
        for backbone in ("deeplabv2_resnet101", "deeplabv2_caffe_resnet101"):
            out = SALSegmenter(backbone=backbone, encoder_weights=None)(torch.empty(1, 3, 321, 321))
            assert out.seg_logits.shape == (1, 21, 321, 321) and out.class_logits is not None
    torch.manual_seed(0)
    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)  # with weights: frozen
    model = SALSegmenter(
        backbone="deeplabv2_resnet18", encoder_weights=str(weights), backbone_kwargs={"encoder_depth": 3}
    ).train()
    grouped = {id(p) for g in model.parameter_groups() for p in g["params"]}
    norms = [m for m in model.net.backbone_module().modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(not m.training for m in norms)  # frozen, although the module trains
    frozen = {id(p) for m in norms for p in m.parameters()}
    assert not grouped & frozen and grouped | frozen == {id(p) for p in model.parameters()}
    assert model.classifier is not None and model.classifier.in_channels == model.net.feature_channels


def test_poly_factor() -> None:
    assert poly_factor(0, 100) == 1.0
    assert poly_factor(50, 100, 0.9) == pytest.approx(0.5**0.9)
    assert poly_factor(100, 100) == 0.0 and poly_factor(150, 100) == 0.0
    with pytest.raises(ValueError, match="max_steps"):
        poly_factor(0, 0)


def test_bad_arguments_and_batches(batch: dict[str, torch.Tensor]) -> None:
    with pytest.raises(ValueError, match="lambda_atten"):
        SALSegmenter(**TINY, lambda_atten=-1.0)
    with pytest.raises(ValueError, match="test_scales"):
        SALSegmenter(**TINY, test_scales=())
    with pytest.raises(ValueError, match="class_names"):
        SALSegmenter(**TINY, class_names=["a", "b"])
    model = tiny()
    with pytest.raises(ValueError, match=r"batch\['tags'\]"):
        model.losses({**batch, "tags": torch.zeros(2, 5)})
    with pytest.raises(ValueError, match=r"batch\['weight'\]"):
        model.losses({k: v for k, v in batch.items() if k != "weight"})


def _eval_batch() -> dict[str, Any]:
    """Two whole images of different sizes, padded by the data layer's collate."""
    gen = torch.Generator().manual_seed(2)
    samples = [
        {"image": torch.randn(3, h, w, generator=gen), "mask": torch.randint(0, 21, (h, w), generator=gen)}
        | {"id": f"img{i}", "size": (h, w), "tags": torch.zeros(20), "weight": 1.0}
        for i, (h, w) in enumerate([(26, 30), (19, 33)])
    ]
    return pad_collate(samples)


@torch.no_grad()
def test_single_scale_prediction_is_the_cropped_argmax() -> None:
    model = tiny(test_scales=(1.0,), test_flip=False)
    batch = _eval_batch()
    out = model.predict_step(batch, 0)
    logits = model.segment(batch["image"])
    assert out["id"] == ["img0", "img1"]
    for i, (h, w) in enumerate([(26, 30), (19, 33)]):
        assert out["labels"][i].shape == (h, w) and out["labels"][i].dtype == torch.uint8
        assert torch.equal(out["labels"][i].long(), logits[i, :, :h, :w].argmax(0))


@torch.no_grad()
def test_multiscale_flip_fusion_with_refinement_at_inference() -> None:
    model = tiny(test_scales=(0.5, 1.0), test_flip=True, refine_at_inference=True)
    image = _eval_batch()["image"]
    views = []
    for scale in (0.5, 1.0):
        size = tuple(int(side * scale + 0.5) for side in image.shape[-2:])  # 16.5 -> 17, as documented
        x = F.interpolate(image, size=size, mode="bilinear") if scale != 1.0 else image
        for flip in (False, True):
            logits = model.segment(x.flip(-1) if flip else x, refine=True)
            logits = logits.flip(-1) if flip else logits
            views.append(F.interpolate(logits, size=image.shape[-2:], mode="bilinear").softmax(1))
    expected = torch.stack(views).mean(0)
    assert torch.allclose(model.infer_probs(image), expected, atol=1e-5)
    unrefined = tiny(test_scales=(0.5, 1.0), test_flip=True, refine_at_inference=False)
    assert not torch.allclose(unrefined.infer_probs(image), expected, atol=1e-3)


@torch.no_grad()
def test_crf_refines_the_fused_probabilities() -> None:
    model = tiny(test_scales=(1.0,), test_flip=False, crf=True, crf_processes=0)
    torch.nn.init.normal_(model.net.segmentation_head[0].weight, std=3.0)  # noisy maps for CRF to smooth
    batch = _eval_batch()
    labels = model.predict_step(batch, 0)["labels"]
    probs = model.infer_probs(batch["image"])
    images = to_uint8_images(batch["image"])
    plain_differs = False
    for i, (h, w) in enumerate([(26, 30), (19, 33)]):
        q = dense_crf(images[i, :h, :w], probs[i, :, :h, :w].numpy(), DEEPLAB_TEST_CRF)
        label = labels[i].result()  # a resolved future (CRF in this process)
        assert label.shape == (h, w)
        np.testing.assert_array_equal(label, q.argmax(0))
        plain_differs |= bool((q.argmax(0) != probs[i, :, :h, :w].argmax(0).numpy()).any())
    assert plain_differs  # the CRF changed something, so the comparison above means something
