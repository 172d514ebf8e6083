"""SEC / DSRG losses: GWRP, seed, expand and constrain losses against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sal_lightning.losses import ConstrainLoss, ExpandLoss, SeedLoss, global_weighted_rank_pooling


def test_gwrp_matches_hand_computation() -> None:
    x = torch.tensor([[0.1, 0.4], [0.3, 0.2]])
    # sorted 0.4, 0.3, 0.2, 0.1 with weights 1, 0.5, 0.25, 0.125
    expected = (0.4 + 0.5 * 0.3 + 0.25 * 0.2 + 0.125 * 0.1) / (1 + 0.5 + 0.25 + 0.125)
    assert global_weighted_rank_pooling(x, 0.5).item() == pytest.approx(expected)
    assert expected == pytest.approx(0.326666, abs=1e-6)


def test_gwrp_limits_are_mean_and_max() -> None:
    x = torch.rand(2, 3, 5, 4)
    torch.testing.assert_close(global_weighted_rank_pooling(x, 1.0), x.mean((-2, -1)))
    torch.testing.assert_close(global_weighted_rank_pooling(x, 0.0), x.amax((-2, -1)))


def test_gwrp_rejects_bad_decay() -> None:
    with pytest.raises(ValueError, match="decay"):
        global_weighted_rank_pooling(torch.rand(3, 3), 1.5)


def _expand_reference(logits: torch.Tensor, tags: torch.Tensor, d_fg: float, d_bg: float) -> float:
    """Plain-Python SEC expand loss, one image and class at a time."""

    def gwrp(values: list[float], d: float) -> float:
        values = sorted(values, reverse=True)
        weights = [d**j for j in range(len(values))]
        return sum(w * v for w, v in zip(weights, values, strict=True)) / sum(weights)

    probs = logits.softmax(1)
    total = 0.0
    for b in range(logits.shape[0]):
        present = [c for c in range(tags.shape[1]) if tags[b, c] > 0.5]
        absent = [c for c in range(tags.shape[1]) if tags[b, c] <= 0.5]
        loss = -math.log(gwrp(probs[b, 0].flatten().tolist(), d_bg))
        if present:
            logs = [math.log(gwrp(probs[b, c + 1].flatten().tolist(), d_fg)) for c in present]
            loss -= sum(logs) / len(present)
        if absent:
            loss -= sum(math.log(1 - probs[b, c + 1].max().item()) for c in absent) / len(absent)
        total += loss
    return total / logits.shape[0]


def test_expand_loss_matches_per_class_reference() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 6, 7, dtype=torch.float64)
    tags = torch.tensor([[1.0, 0, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    loss = ExpandLoss(fg_decay=0.9, bg_decay=0.95)(logits, tags)
    assert loss.item() == pytest.approx(_expand_reference(logits, tags, 0.9, 0.95), rel=1e-6)


def test_expand_loss_defaults_and_gradient() -> None:
    loss_fn = ExpandLoss()
    assert (loss_fn.fg_decay, loss_fn.bg_decay) == (0.996, 0.999)
    logits = torch.randn(2, 4, 8, 8, requires_grad=True)
    tags = torch.tensor([[1.0, 0, 0], [0, 1, 1]])
    loss = loss_fn(logits, tags)
    loss.backward()
    assert torch.isfinite(loss) and logits.grad is not None and logits.grad.abs().sum() > 0
    assert loss.item() == pytest.approx(_expand_reference(logits.detach(), tags, 0.996, 0.999), rel=1e-5)


def test_expand_loss_rewards_the_right_prediction() -> None:
    tags = torch.tensor([[1.0, 0.0]])
    good = torch.full((1, 3, 4, 4), -5.0)
    good[0, 0, :2] = 5.0  # background on top
    good[0, 1, 2:] = 5.0  # the tagged class below
    bad = good[:, [0, 2, 1]]  # the absent class instead of the tagged one
    assert ExpandLoss()(good, tags) < ExpandLoss()(bad, tags)


def test_expand_loss_checks_class_count() -> None:
    with pytest.raises(ValueError, match="tags"):
        ExpandLoss()(torch.randn(1, 21, 4, 4), torch.zeros(1, 21))


def test_seed_loss_balanced_is_fg_mean_plus_bg_mean() -> None:
    torch.manual_seed(1)
    logits = torch.randn(2, 4, 5, 5)
    seeds = torch.full((2, 5, 5), 255)
    seeds[0, 0, :] = 0  # 5 bg pixels
    seeds[0, 4, 0] = 2
    seeds[1, 2, 2:4] = 3
    seeds[1, 0, 0:3] = 0
    ce = F.cross_entropy(logits, seeds, ignore_index=255, reduction="none")
    fg_mask = (seeds > 0) & (seeds != 255)
    bg_mask = seeds == 0
    expected = ce[fg_mask].mean() + ce[bg_mask].mean()
    torch.testing.assert_close(SeedLoss()(logits, seeds), expected)


def test_seed_loss_plain_sec_form_averages_per_image() -> None:
    torch.manual_seed(2)
    logits = torch.randn(3, 3, 4, 4)
    seeds = torch.full((3, 4, 4), 255)
    seeds[0, 0, 0] = 1
    seeds[0, 1, :] = 0
    seeds[1, 3, 3] = 2  # image 2 has no seeds and does not count
    per_image = [F.cross_entropy(logits[i : i + 1], seeds[i : i + 1], ignore_index=255) for i in range(2)]
    torch.testing.assert_close(SeedLoss(balanced=False)(logits, seeds), sum(per_image) / 2)


def test_seed_loss_without_seeds_is_zero_with_graph() -> None:
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    seeds = torch.full((1, 4, 4), 255)
    for balanced in (True, False):
        loss = SeedLoss(balanced=balanced)(logits, seeds)
        assert loss.item() == 0.0 and loss.requires_grad


def test_seed_loss_rejects_bad_labels_and_shapes() -> None:
    with pytest.raises(ValueError, match="seeds"):
        SeedLoss()(torch.randn(1, 3, 4, 4), torch.full((1, 4, 4), 7))
    with pytest.raises(ValueError, match="seeds"):
        SeedLoss()(torch.randn(1, 3, 4, 4), torch.zeros(1, 5, 4, dtype=torch.long))


def test_constrain_loss_is_kl_with_q_constant() -> None:
    torch.manual_seed(3)
    logits = torch.randn(2, 3, 4, 5, requires_grad=True)
    q_source = torch.randn(2, 3, 4, 5, requires_grad=True)
    q = q_source.softmax(1)
    q = torch.where(torch.rand(2, 1, 4, 5) < 0.3, F.one_hot(q.argmax(1), 3).permute(0, 3, 1, 2).float(), q)
    loss = ConstrainLoss()(logits, q)
    log_p = logits.log_softmax(1)
    expected = (torch.xlogy(q, q) - q * log_p).sum(1).mean()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert q_source.grad is None  # Q is a target: no gradient reaches it
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_constrain_loss_is_zero_at_q_equals_p() -> None:
    logits = torch.randn(1, 4, 3, 3)
    assert ConstrainLoss()(logits, logits.softmax(1)).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="target_probs"):
        ConstrainLoss()(logits, logits.softmax(1)[:, :3])
