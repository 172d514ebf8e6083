"""Attention refinement (Eq. 11, renormalised) and attention loss (Eq. 12, multi-label soft margin)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sal_lightning.losses import AttentionLoss, SelectionLoss, attention_refine


def test_softmax_of_refined_logits_is_normalised_product() -> None:
    g = torch.Generator().manual_seed(0)
    seg = torch.randn(3, 6, 4, 5, generator=g, dtype=torch.float64)
    cls = 3 * torch.randn(3, 5, generator=g, dtype=torch.float64)
    z = torch.softmax(seg, dim=1)
    a = torch.cat([torch.ones(3, 1, dtype=torch.float64), torch.sigmoid(cls)], dim=1)
    product = z * a[:, :, None, None]
    expected = product / product.sum(dim=1, keepdim=True)
    refined = attention_refine(seg, cls)
    assert torch.allclose(torch.softmax(refined, dim=1), expected, atol=1e-12)
    assert torch.equal(refined[:, 0], seg[:, 0])  # background logits unchanged


def test_hand_worked_pixel() -> None:
    # Z = softmax(0, 0) = (1/2, 1/2); d = 0 -> a = (1, 1/2) -> Z_hat = (2/3, 1/3)
    refined = attention_refine(torch.zeros(1, 2, 1, 1), torch.zeros(1, 1))
    assert torch.softmax(refined, 1).flatten().tolist() == pytest.approx([2 / 3, 1 / 3])


def test_extreme_class_logits_stay_finite() -> None:
    seg = torch.randn(2, 3, 4, 4)
    cls = torch.tensor([[-1e4, 1e4], [-80.0, 0.0]])
    refined = attention_refine(seg, cls)
    assert torch.isfinite(refined).all()
    # a class scored absent gets (almost) no probability; the others keep theirs
    assert torch.softmax(refined, 1)[0, 1].max().item() < 1e-30


def test_refine_gradcheck_float64() -> None:
    seg = torch.randn(2, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    cls = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(attention_refine, (seg, cls), fast_mode=True)


def test_refine_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"seg_logits: expected C\+1 = 4 channels"):
        attention_refine(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"seg_logits: expected shape \[B, K, H, W\]"):
        attention_refine(torch.zeros(1, 4, 4, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"class_logits: expected a tensor \[B, C\] \(float\)"):
        attention_refine(torch.zeros(2, 4, 4, 4), torch.zeros(2, 3, dtype=torch.long))


def test_attention_loss_is_multilabel_soft_margin() -> None:
    g = torch.Generator().manual_seed(1)
    logits = 2 * torch.randn(4, 20, generator=g)
    tags = (torch.rand(4, 20, generator=g) < 0.2).float()
    expected = F.multilabel_soft_margin_loss(logits, tags)
    assert torch.allclose(AttentionLoss()(logits, tags), expected, atol=1e-6)
    # int and bool tags are accepted
    assert torch.allclose(AttentionLoss()(logits, tags.bool()), expected, atol=1e-6)
    assert torch.allclose(AttentionLoss()(logits, tags.long()), expected, atol=1e-6)


def test_attention_loss_hand_worked_and_penalises_false_positives() -> None:
    # zero logits: every class costs log 2
    assert AttentionLoss()(torch.zeros(2, 3), torch.tensor([[1, 0, 0], [0, 1, 1]])).item() == pytest.approx(
        math.log(2.0)
    )
    # saying "present" for every class is not a minimum (unlike Eq. 12 as printed)
    tags = torch.tensor([[1.0, 0.0, 0.0]])
    all_present = AttentionLoss()(torch.full((1, 3), 10.0), tags)
    correct = AttentionLoss()(torch.tensor([[10.0, -10.0, -10.0]]), tags)
    assert correct.item() < 1e-3 < all_present.item()


def test_attention_loss_gradcheck_float64() -> None:
    logits = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    tags = torch.tensor([[1.0, 0, 0, 1], [0, 0, 0, 0], [0, 1, 1, 1]], dtype=torch.float64)
    loss = AttentionLoss()
    assert torch.autograd.gradcheck(lambda x: loss(x, tags), (logits,))
    loss(logits, tags).backward()
    expected = (torch.sigmoid(logits) - tags) / tags.numel()  # d mean BCE / d logit
    assert torch.allclose(logits.grad, expected.detach(), atol=1e-12)


def test_attention_loss_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"tags: expected shape \[B, C\]"):
        AttentionLoss()(torch.zeros(2, 20), torch.zeros(2, 19))
    with pytest.raises(ValueError, match=r"class_logits: expected a tensor \[B, C\]"):
        AttentionLoss()(torch.zeros(2, 20, 1), torch.zeros(2, 20))


def test_combined_loss_under_bf16_autocast() -> None:
    torch.manual_seed(0)
    seg_head = torch.nn.Conv2d(3, 21, 3, padding=1)
    cls_head = torch.nn.Linear(3, 20)
    image = torch.randn(2, 3, 16, 16)
    target = torch.randint(0, 21, (2, 16, 16))
    tags = (torch.rand(2, 20) < 0.2).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d_s = cls_head(image.mean(dim=(2, 3)))
        seg = attention_refine(seg_head(image), d_s)
        loss = SelectionLoss()(seg, target, torch.ones(2)) + 2.0 * AttentionLoss()(d_s, tags)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(seg_head.weight.grad).all() and torch.isfinite(cls_head.weight.grad).all()
    assert cls_head.weight.grad.abs().sum() > 0
