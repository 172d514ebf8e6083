"""Selection loss (Eq. 8, 13 with the normalisation of docs/design.md) and selection weights (Eq. 9)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sal_lightning.losses import SelectionLoss, per_image_cross_entropy, selection_weights


def _batch(
    seed: int = 0, b: int = 4, k: int = 5, h: int = 6, w: int = 7
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, k, h, w, generator=g)
    target = torch.randint(0, k, (b, h, w), generator=g)
    target[torch.rand(b, h, w, generator=g) < 0.2] = 255
    return logits, target


def test_hard_weights_are_mean_ce_over_selected_images() -> None:
    logits, target = _batch()
    target[2, :3] = 255  # images with different numbers of valid pixels
    weight = torch.tensor([1.0, 0.0, 1.0, 0.0])
    keep = weight.bool()
    expected = F.cross_entropy(logits[keep], target[keep], ignore_index=255)
    assert torch.allclose(SelectionLoss()(logits, target, weight), expected, atol=1e-6)


def test_no_weight_is_plain_cross_entropy_with_ignore() -> None:
    logits, target = _batch(1)
    expected = F.cross_entropy(logits, target, ignore_index=255)
    assert torch.allclose(SelectionLoss()(logits, target), expected, atol=1e-6)
    assert torch.allclose(SelectionLoss()(logits, target, torch.ones(4)), expected, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_per_image_cross_entropy_and_its_gradient_match_pytorch(dtype: torch.dtype) -> None:
    logits, target = _batch(7)
    grad_out = torch.tensor([0.5, -1.0, 2.0, 0.0])
    ours = logits.to(dtype).requires_grad_(True)
    ref = logits.to(dtype).requires_grad_(True)
    sums, counts = per_image_cross_entropy(ours, target)
    expected = F.cross_entropy(ref.float(), target, ignore_index=255, reduction="none").sum(dim=(1, 2))
    assert sums.dtype == torch.float32 and torch.allclose(sums, expected, rtol=1e-5)
    assert torch.equal(counts, (target != 255).sum(dim=(1, 2)).float())
    (sums * grad_out).sum().backward()
    (expected * grad_out).sum().backward()
    assert ours.grad.dtype == dtype
    assert torch.allclose(ours.grad.float(), ref.grad.float(), atol=1e-2 if dtype == torch.bfloat16 else 1e-6)


def test_hand_worked_soft_weights() -> None:
    # image 0: two pixels, zero logits over 2 classes -> ce = log 2 each
    # image 1: one valid pixel with logits (log 3, 0) and target 1 -> ce = log 4; one ignored pixel
    logits = torch.zeros(2, 2, 1, 2)
    logits[1, 0, 0, 0] = math.log(3.0)
    target = torch.tensor([[[0, 1]], [[1, 255]]])
    weight = torch.tensor([0.5, 2.0])
    expected = (0.5 * 2 * math.log(2.0) + 2.0 * math.log(4.0)) / (0.5 * 2 + 2.0 * 1)
    assert SelectionLoss()(logits, target, weight).item() == pytest.approx(expected, rel=1e-6)
    # scaling every weight leaves the normalised loss unchanged
    assert SelectionLoss()(logits, target, 10 * weight).item() == pytest.approx(expected, rel=1e-6)


def test_custom_ignore_index() -> None:
    logits, target = _batch(2)
    target[target == 255] = 0
    target[:, 0] = 3
    loss = SelectionLoss(ignore_index=3)(logits, target, torch.ones(4))
    assert torch.allclose(loss, F.cross_entropy(logits, target, ignore_index=3), atol=1e-6)


def test_all_zero_weights_give_zero_that_backpropagates() -> None:
    logits, target = _batch(3)
    logits.requires_grad_(True)
    loss = SelectionLoss()(logits, target, torch.zeros(4))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert logits.grad is not None and torch.equal(logits.grad, torch.zeros_like(logits))


def test_all_ignored_pixels_give_zero_not_nan() -> None:
    logits, target = _batch(4)
    target.fill_(255)
    logits.requires_grad_(True)
    for weight in (None, torch.ones(4)):
        loss = SelectionLoss()(logits, target, weight)
        assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_gradcheck_float64() -> None:
    logits, target = _batch(5, b=2, k=3, h=3, w=3)
    logits = logits.double().requires_grad_(True)
    weight = torch.tensor([0.3, 1.5], dtype=torch.float64, requires_grad=True)
    loss = SelectionLoss()
    assert torch.autograd.gradcheck(
        lambda z, w: loss(z, target, w).double(), (logits, weight), fast_mode=True
    )


def test_bf16_autocast_on_cpu_is_finite() -> None:
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 21, 3, padding=1)
    image = torch.randn(2, 3, 16, 16)
    target = torch.randint(0, 21, (2, 16, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = net(image)
        loss = SelectionLoss()(logits, target, torch.tensor([1.0, 0.0]))
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(net.weight.grad).all()


def test_bad_inputs_name_the_argument() -> None:
    logits, target = _batch(6)
    loss = SelectionLoss()
    with pytest.raises(ValueError, match=r"logits: expected a tensor \[B, K, H, W\]"):
        loss(logits[0], target)
    with pytest.raises(ValueError, match=r"target: expected a tensor \[B, H, W\] \(int\)"):
        loss(logits, target.float())
    with pytest.raises(ValueError, match=r"target: expected shape \[B, H, W\]"):
        loss(logits, target[:, :-1])
    with pytest.raises(ValueError, match=r"weight: expected shape \[B\]"):
        loss(logits, target, torch.ones(3))
    with pytest.raises(ValueError, match=r"weight: expected a tensor \[B\] \(float\)"):
        loss(logits, target, torch.ones(4, dtype=torch.long))
    classes = logits.shape[1]
    too_big = target.clone()
    too_big[0, 0, 0] = classes  # a label value >= K: not torch's bare index error
    with pytest.raises(
        ValueError, match=rf"target: class indices must be in 0..{classes - 1} .* found \[{classes}\]"
    ):
        loss(logits, too_big)
    too_big[0, 0, 0] = -3
    with pytest.raises(ValueError, match=r"found \[-3\]"):
        loss(logits, too_big)
    too_big[0, 0, 0] = 255  # ignore_index is fine
    assert torch.isfinite(loss(logits, too_big))


def test_hard_selection_weights_eq9() -> None:
    scores = torch.tensor([0.9, 0.85, 0.2, float("nan"), 0.8499])
    assert selection_weights(scores, tau=0.85).tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert selection_weights([0.1, 0.6], tau=0.55).tolist() == [0.0, 1.0]  # sequences work too


def test_soft_selection_weights() -> None:
    scores = torch.tensor([0.2, 0.55, 0.6, 0.9, float("nan")])
    w = selection_weights(scores, tau=0.55, mode="soft", temperature=0.1)
    expected = torch.sigmoid((scores[:4] - 0.55) / 0.1)
    assert torch.allclose(w[:4], expected) and w[1].item() == pytest.approx(0.5)
    assert w[4].item() == 0.0
    sharp = selection_weights(scores, tau=0.55, mode="soft", temperature=1e-4)
    assert torch.allclose(sharp[[0, 2, 3, 4]], selection_weights(scores, 0.55)[[0, 2, 3, 4]])


def test_score_selection_weights() -> None:
    scores = torch.tensor([0.7, -0.1, float("nan")], dtype=torch.float64)
    w = selection_weights(scores, tau=0.5, mode="score")
    assert w.dtype == torch.float64 and w.tolist() == [0.7, 0.0, 0.0]


def test_selection_weights_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"scores: expected a tensor \[N\]"):
        selection_weights(torch.zeros(2, 2), tau=0.5)
    with pytest.raises(ValueError, match="scores: expected a 1-D tensor or sequence"):
        selection_weights("abc", tau=0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode: expected"):
        selection_weights(torch.zeros(2), tau=0.5, mode="sigmoid")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="temperature: expected a number > 0"):
        selection_weights(torch.zeros(2), tau=0.5, mode="soft", temperature=0.0)
    with pytest.raises(ValueError, match="tau: expected a finite number"):
        selection_weights(torch.zeros(2), tau=float("nan"))
