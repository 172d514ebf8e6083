"""GDN / inverse GDN against compressai and the formula written out."""

from __future__ import annotations

import warnings

import pytest
import torch

from sal_lightning.nn import GDN

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # compressai's torch.jit.script deprecation warnings
    from compressai.layers import GDN as CompressaiGDN


def _compressai_with(beta: torch.Tensor, gamma: torch.Tensor, inverse: bool) -> CompressaiGDN:
    ref = CompressaiGDN(beta.numel(), inverse=inverse)
    with torch.no_grad():  # write compressai's raw parameters for the same effective beta / gamma
        ref.beta.copy_(ref.beta_reparam.init(beta))
        ref.gamma.copy_(ref.gamma_reparam.init(gamma))
    return ref


@pytest.mark.parametrize("inverse", [False, True])
def test_matches_compressai_default_init(inverse: bool) -> None:
    x = torch.randn(2, 5, 6, 7)
    ours, ref = GDN(5, inverse=inverse), CompressaiGDN(5, inverse=inverse)
    assert torch.allclose(ours(x), ref(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("inverse", [False, True])
def test_matches_compressai_for_same_effective_parameters(inverse: bool) -> None:
    g = torch.Generator().manual_seed(0)
    beta = 0.2 + torch.rand(4, generator=g)
    gamma = 0.5 * torch.rand(4, 4, generator=g)
    ours = GDN(4, inverse=inverse)
    ours.set_parameters(beta, gamma)
    assert torch.allclose(ours.beta, beta, atol=1e-6) and torch.allclose(ours.gamma, gamma, atol=1e-6)
    x = 3 * torch.randn(3, 4, 5, 5, generator=g)
    assert torch.allclose(ours(x), _compressai_with(beta, gamma, inverse)(x), rtol=1e-5, atol=1e-6)


def test_formula_written_out() -> None:
    g = torch.Generator().manual_seed(1)
    beta = 0.5 + torch.rand(3, generator=g, dtype=torch.float64)
    gamma = torch.rand(3, 3, generator=g, dtype=torch.float64)
    layer = GDN(3).double()
    layer.set_parameters(beta, gamma)
    x = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    # y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)
    norm = beta[None, :, None, None] + torch.einsum("ij,bjhw->bihw", gamma, x**2)
    assert torch.allclose(layer(x), x / norm.sqrt(), atol=1e-12)
    layer.inverse = True
    assert torch.allclose(layer(x), x * norm.sqrt(), atol=1e-12)


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
