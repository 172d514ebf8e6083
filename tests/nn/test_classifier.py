"""Hybrid dilated classification branch: Eq. 10 (paper) and the released-code variant."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sal_lightning.nn import HybridDilatedClassifier


def test_sum_variant_is_eq10() -> None:
    torch.manual_seed(0)
    head = HybridDilatedClassifier(8, num_foreground=5)
    x = torch.randn(2, 8, 11, 13)
    out = head.forward_maps(x)
    # Eq. 10 written out: d_k = GAP(conv3x3_dilated_k(x)), d_s = sum_k d_k
    d = []
    for branch, rate in zip(head.branches, (1, 3, 6, 9), strict=True):
        conv = branch[0]
        assert conv.dilation == (rate, rate) and conv.kernel_size == (3, 3)
        d.append(F.conv2d(x, conv.weight, conv.bias, padding=rate, dilation=rate).mean(dim=(2, 3)))
    expected = torch.stack(d, dim=1)
    assert torch.allclose(out.branch_logits, expected, atol=1e-5)
    assert torch.allclose(out.logits, expected.sum(dim=1), atol=1e-5)
    assert torch.allclose(head(x), out.logits)
    assert out.cams.shape == (2, 5, 11, 13)
    assert torch.allclose(out.cams.mean(dim=(2, 3)), out.logits, atol=1e-5)


def test_released_variant_structure_and_combination() -> None:
    torch.manual_seed(0)
    head = HybridDilatedClassifier(8, num_foreground=20, combine="released").eval()
    first = head.branches[0]
    assert first[0].out_channels == 256 and first[3].in_channels == 256
    assert first[2].p == 0.5 and head.fc is not None and head.fc.weight.shape == (20, 20)
    x = torch.randn(2, 8, 9, 9)
    out = head.forward_maps(x)
    maps = [branch(x) for branch in head.branches]
    pooled = (maps[0] + (maps[1] + maps[2] + maps[3]) / 3).mean(dim=(2, 3))
    assert torch.allclose(out.logits, head.fc(pooled), atol=1e-5)
    assert torch.allclose(out.branch_logits, torch.stack([m.mean(dim=(2, 3)) for m in maps], 1), atol=1e-6)
    assert torch.allclose(out.cams.mean(dim=(2, 3)), out.logits, atol=1e-5)


def test_options() -> None:
    head = HybridDilatedClassifier(4, num_foreground=3, rates=(1, 2), hidden_channels=6, dropout=0.1)
    assert len(head.branches) == 2 and head.branches[1][0].dilation == (2, 2)
    assert head.branches[0][0].out_channels == 6 and head.branches[0][2].p == 0.1
    assert head(torch.randn(1, 4, 5, 5)).shape == (1, 3)
    released = HybridDilatedClassifier(
        4, num_foreground=3, combine="released", hidden_channels=7, dropout=0.0
    )
    assert released.branches[0][0].out_channels == 7 and isinstance(
        released.branches[0][2], torch.nn.Identity
    )


def test_gradcheck_float64_and_all_parameters_learn() -> None:
    torch.manual_seed(0)
    for combine in ("sum", "released"):
        head = HybridDilatedClassifier(2, num_foreground=3, combine=combine, hidden_channels=4).double()  # type: ignore[arg-type]
        head.eval()
        x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(head, (x,), fast_mode=True)
        head.zero_grad()
        head(x).sum().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def test_bf16_autocast_is_finite() -> None:
    head = HybridDilatedClassifier(8, num_foreground=20, combine="released")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = head(torch.randn(2, 8, 6, 6))
    assert logits.shape == (2, 20) and torch.isfinite(logits.float()).all()


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"features: expected shape \[B, 8, h, w\]"):
        HybridDilatedClassifier(8)(torch.zeros(1, 4, 5, 5))
    with pytest.raises(ValueError, match=r"features: expected a tensor \[B, 8, h, w\] \(float\)"):
        HybridDilatedClassifier(8)(torch.zeros(1, 8, 5))
    with pytest.raises(ValueError, match="combine: expected"):
        HybridDilatedClassifier(8, combine="mean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rates: expected"):
        HybridDilatedClassifier(8, rates=())
    with pytest.raises(ValueError, match="dropout: expected"):
        HybridDilatedClassifier(8, hidden_channels=4, dropout=1.0)
