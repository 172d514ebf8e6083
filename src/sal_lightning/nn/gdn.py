"""Generalized divisive normalisation (GDN), the activation of the SAL-Net mask scorer (Table I).

GDN (Ballé, Laparra, Simoncelli 2015/2016) normalises each channel by a learned combination of the
squared responses of all channels at the same position::

    y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)        (inverse GDN: y_i = x_i * sqrt(...))

``beta`` must stay positive and ``gamma`` non-negative. As in Ballé et al. (2016, "End-to-end
optimized image compression", Sec. 6.1 / appendix), both are stored through a reparameterisation
``value = max(p, bound)^2 - pedestal`` with a small ``pedestal`` so that gradients do not vanish
near zero, and the lower bound lets gradients through whenever they push ``p`` back above it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sal_lightning._checks import check_tensor

_PEDESTAL = (2.0**-18) ** 2


class _LowerBound(torch.autograd.Function):
    """``max(x, bound)`` whose gradient passes where ``x >= bound`` or where it would raise ``x``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, bound: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        # descent moves x by -grad: grad < 0 moves it up, back into the feasible region
        passes = (x >= ctx.bound) | (grad < 0)
        return grad * passes, None


def _to_raw(value: Tensor) -> Tensor:
    """Raw parameter whose reparameterised value is ``value`` (for values above the bound)."""
    return torch.sqrt(torch.clamp_min(value + _PEDESTAL, _PEDESTAL))


class GDN(nn.Module):
    """Generalized divisive normalisation over channels, or its inverse.

    Args:
        channels: number of channels ``C``.
        inverse: multiply by the norm instead of dividing (inverse GDN / IGDN).
        beta_min: lower bound of ``beta`` (keeps the denominator away from 0).
        gamma_init: initial diagonal of ``gamma`` (``beta`` starts at 1).

    Shapes: ``x: [B, C, H, W]`` float -> ``[B, C, H, W]``.
    """

    def __init__(
        self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1
    ) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels: expected a positive integer, got {channels!r}")
        if not beta_min > 0:
            raise ValueError(f"beta_min: expected a number > 0, got {beta_min!r}")
        self.channels = int(channels)
        self.inverse = bool(inverse)
        self.beta_min = float(beta_min)
        self._beta_bound = (self.beta_min + _PEDESTAL) ** 0.5
        self._gamma_bound = _PEDESTAL**0.5
        self.beta_raw = nn.Parameter(_to_raw(torch.ones(channels)))
        self.gamma_raw = nn.Parameter(_to_raw(float(gamma_init) * torch.eye(channels)))

    @property
    def beta(self) -> Tensor:
        """Effective ``beta``: ``[C]``, ``>= beta_min``."""
        return _LowerBound.apply(self.beta_raw, self._beta_bound) ** 2 - _PEDESTAL

    @property
    def gamma(self) -> Tensor:
        """Effective ``gamma``: ``[C, C]`` non-negative, ``gamma[i, j]`` weighs ``x_j^2`` for output ``i``."""
        return _LowerBound.apply(self.gamma_raw, self._gamma_bound) ** 2 - _PEDESTAL

    @torch.no_grad()
    def set_parameters(self, beta: Tensor, gamma: Tensor) -> None:
        """Set the effective ``beta`` (``[C]``, ``> beta_min``) and ``gamma`` (``[C, C]``, ``>= 0``)."""
        dims = {"C": self.channels}
        check_tensor(beta, "beta", "C", "float", dims=dims)
        check_tensor(gamma, "gamma", "C C", "float", dims=dims)
        self.beta_raw.copy_(_to_raw(beta.to(self.beta_raw)))
        self.gamma_raw.copy_(_to_raw(gamma.to(self.gamma_raw)))

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x: [B, C, H, W]`` float; returns ``[B, C, H, W]``."""
        check_tensor(x, "x", f"B {self.channels} H W", "float")
        gamma = self.gamma.to(x.dtype)
        norm = F.conv2d(x * x, gamma[:, :, None, None], self.beta.to(x.dtype))
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))

    def extra_repr(self) -> str:
        return f"{self.channels}, inverse={self.inverse}, beta_min={self.beta_min}"
