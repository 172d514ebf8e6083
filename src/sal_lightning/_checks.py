"""Argument checks shared by the pure-PyTorch building blocks.

``check_tensor`` validates rank, dtype kind and symbolic sizes, binding each symbol (``"B"``,
``"H"``...) to the first size it sees, so several tensors can be checked against each other::

    dims: dict[str, int] = {}
    check_tensor(logits, "logits", "B K H W", "float", dims)
    check_tensor(target, "target", "B H W", "int", dims)   # B, H, W must match logits
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from sal_lightning._lazy import lazy_module

if not TYPE_CHECKING:  # see sal_lightning._lazy.lazy_module
    torch = lazy_module("torch")
else:
    import torch

Kind = Literal["float", "int", "bool", "any"]


def _kind_ok(tensor: torch.Tensor, kind: Kind) -> bool:
    if kind == "float":
        return tensor.is_floating_point()
    if kind == "int":
        return not tensor.is_floating_point() and not tensor.is_complex() and tensor.dtype != torch.bool
    if kind == "bool":
        return tensor.dtype == torch.bool
    return True


def check_tensor(
    tensor: object,
    name: str,
    shape: str,
    kind: Kind = "any",
    dims: dict[str, int] | None = None,
) -> torch.Tensor:
    """Raise ``ValueError`` unless ``tensor`` is a tensor of the given symbolic shape and dtype kind.

    ``shape`` is a space-separated list of symbols or integers, e.g. ``"B 3 H W"``. Symbols are
    bound in ``dims`` (shared across calls) on first sight and must match afterwards.
    Returns the tensor, so checks can be chained inline.
    """
    symbols = shape.split()
    expected = f"[{', '.join(symbols)}] ({kind})"
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name}: expected a tensor {expected}, got {type(tensor).__name__}")
    if tensor.dim() != len(symbols) or not _kind_ok(tensor, kind):
        raise ValueError(
            f"{name}: expected a tensor {expected}, got shape {list(tensor.shape)} {tensor.dtype}"
        )
    dims = {} if dims is None else dims
    for symbol, size in zip(symbols, tensor.shape, strict=True):
        want = int(symbol) if symbol.isdigit() else dims.setdefault(symbol, size)
        if size != want:
            bound = {s: dims[s] for s in symbols if s in dims}
            raise ValueError(
                f"{name}: expected shape [{', '.join(symbols)}] with {bound}, got {list(tensor.shape)}"
            )
    return tensor
