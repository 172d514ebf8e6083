"""GDN / inverse GDN against the formula: hand-worked cases and an einsum written out.

y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2) at every position (inverse GDN: times the root).
"""

from __future__ import annotations

import math

import pytest
import torch

from sal_lightning.nn import GDN


def gdn_reference(x: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor, inverse: bool) -> torch.Tensor:
    """The formula with einsum, independent of the layer's 1x1 convolution: ``x`` ``[B, C, H, W]``."""
    norm = beta[None, :, None, None] + torch.einsum("ij,bjhw->bihw", gamma, x**2)
    return x * norm.sqrt() if inverse else x / norm.sqrt()


def _layer(beta: list[float], gamma: list[list[float]], inverse: bool = False) -> GDN:
    layer = GDN(len(beta), inverse=inverse).double()
    layer.set_parameters(torch.tensor(beta, dtype=torch.float64), torch.tensor(gamma, dtype=torch.float64))
    return layer


def test_hand_worked_two_channels() -> None:
    """beta = (1, 4), gamma = [[1, 1], [1, 2]], x = (2, 2) at one pixel and (0, 0) at the other:
    norm_0 = 1 + 4 + 4 = 9, norm_1 = 4 + 4 + 8 = 16, so y = (2/3, 1/2); the inverse gives (6, 8);
    a zero input stays zero."""
    x = torch.tensor([[[[2.0, 0.0]], [[2.0, 0.0]]]], dtype=torch.float64)  # [1, 2, 1, 2]
    y = _layer([1.0, 4.0], [[1.0, 1.0], [1.0, 2.0]])(x)
    assert torch.allclose(y[0, :, 0, 0], torch.tensor([2 / 3, 1 / 2], dtype=torch.float64), atol=1e-12)
    assert torch.equal(y[0, :, 0, 1], torch.zeros(2, dtype=torch.float64))
    inverse = _layer([1.0, 4.0], [[1.0, 1.0], [1.0, 2.0]], inverse=True)(x)
    assert torch.allclose(inverse[0, :, 0, 0], torch.tensor([6.0, 8.0], dtype=torch.float64), atol=1e-12)


def test_hand_worked_default_initialisation() -> None:
    """The default layer has beta = 1 and gamma = 0.1 I (stored in float32): x = sqrt(30) gives
    sqrt(30) / sqrt(1 + 3)."""
    layer = GDN(1)
    assert torch.allclose(layer.beta, torch.ones(1), atol=1e-6)
    assert torch.allclose(layer.gamma, torch.full((1, 1), 0.1), atol=1e-6)
    x = torch.full((1, 1, 1, 1), math.sqrt(30.0))
    assert layer(x).item() == pytest.approx(math.sqrt(30.0) / 2.0, abs=1e-5)


def test_no_cross_talk_without_gamma_off_diagonal() -> None:
    """With a diagonal gamma each channel is normalised by itself alone: y_i = x_i / sqrt(b_i + g_i x_i^2)."""
    x = torch.tensor([[[[3.0]], [[-1.0]], [[0.5]]]], dtype=torch.float64)
    y = _layer([1.0, 2.0, 0.25], [[1.0, 0, 0], [0, 2.0, 0], [0, 0, 3.0]])(x)
    expected = [3 / math.sqrt(1 + 9), -1 / math.sqrt(2 + 2), 0.5 / math.sqrt(0.25 + 0.75)]
    assert torch.allclose(y.flatten(), torch.tensor(expected, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("inverse", [False, True])
def test_matches_the_einsum_formula_for_random_parameters(inverse: bool) -> None:
    g = torch.Generator().manual_seed(1)
    beta = 0.5 + torch.rand(3, generator=g, dtype=torch.float64)
    gamma = torch.rand(3, 3, generator=g, dtype=torch.float64)  # not symmetric: gamma[i, j] weighs x_j
    layer = GDN(3, inverse=inverse).double()
    layer.set_parameters(beta, gamma)
    assert torch.allclose(layer.beta, beta, atol=1e-12) and torch.allclose(layer.gamma, gamma, atol=1e-12)
    x = 3 * torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    assert torch.allclose(layer(x), gdn_reference(x, beta, gamma, inverse), atol=1e-12)
    # float32 default layer against the same formula
    ours = GDN(5, inverse=inverse)
    x32 = torch.randn(2, 5, 6, 7, generator=g)
    assert torch.allclose(
        ours(x32), gdn_reference(x32, ours.beta, ours.gamma, inverse).detach(), rtol=1e-5, atol=1e-6
    )


def test_each_position_is_normalised_on_its_own() -> None:
    """Shuffling the pixels shuffles the outputs the same way (no spatial mixing)."""
    g = torch.Generator().manual_seed(2)
    layer = GDN(4)
    layer.set_parameters(0.2 + torch.rand(4, generator=g), torch.rand(4, 4, generator=g))
    x = torch.randn(1, 4, 3, 3, generator=g)
    order = torch.randperm(9, generator=g)
    shuffled = x.flatten(2)[:, :, order].view_as(x)
    assert torch.allclose(layer(shuffled).flatten(2), layer(x).flatten(2)[:, :, order], atol=1e-6)


def test_reparameterisation_keeps_parameters_feasible() -> None:
    layer = GDN(3, beta_min=1e-4)
    opt = torch.optim.SGD(layer.parameters(), lr=10.0)
    x = torch.randn(4, 3, 5, 5)
    for _ in range(5):  # push beta and gamma down hard
        opt.zero_grad()
        (-layer(x).abs().sum()).backward()
        opt.step()
    assert layer.beta.min().item() >= 1e-4 * (1 - 1e-3)
    assert layer.gamma.min().item() >= 0.0
    assert torch.isfinite(layer(x)).all()


def test_gradcheck_float64() -> None:
    layer = GDN(3).double()
    x = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,), fast_mode=True)
    layer(x).sum().backward()
    assert layer.beta_raw.grad is not None and layer.gamma_raw.grad is not None


def test_bf16_autocast_is_finite() -> None:
    layer = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), GDN(8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(torch.randn(2, 3, 8, 8))
    assert torch.isfinite(y.float()).all()


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"x: expected shape \[B, 4, H, W\]"):
        GDN(4)(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="channels: expected a positive integer"):
        GDN(0)
    with pytest.raises(ValueError, match=r"gamma: expected shape \[C, C\]"):
        GDN(2).set_parameters(torch.ones(2), torch.ones(2, 3))
