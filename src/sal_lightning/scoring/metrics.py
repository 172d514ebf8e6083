"""Proxy-quality scores (SAL-Net Eq. 3-5, 7), batched over ``[B, H, W]`` masks on any device.

- :func:`boundary_accuracy` (Eq. 3, ``AC_i``): agreement of the proxy foreground ``B_i`` with the
  reference mask ``H_i``, times an objectness term ``F(B_i)^b``.
- :func:`class_distribution` (Eq. 4, ``CD_i``): the fraction of foreground pixels whose class is
  among the image's tags.
- :func:`coarse_score` (Eq. 5): ``SC_i = AC_i * CD_i``.
- :func:`fine_score` (Eq. 7): ``SF_i = P_i * CD_i``, ``P_i`` the learned scorer's quality.

Each function also takes a single ``[H, W]`` mask (with ``[C]`` tags, ``[]`` objectness) and then
returns a 0-d tensor. Every empty case scores 0, never NaN.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from sal_lightning._checks import check_tensor
from sal_lightning._lazy import lazy_module

if not TYPE_CHECKING:  # see sal_lightning._lazy.lazy_module
    torch = lazy_module("torch")
else:
    import torch
    from torch import Tensor

Definition = Literal["paper", "fmeasure"]


def _mask_kind(tensor: object, name: str) -> None:
    if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
        raise ValueError(f"{name}: expected a bool or integer mask, got {tensor.dtype}")


def foreground(mask: Tensor, ignore_index: int = 255) -> Tensor:
    """Binary foreground of a label map: bool as is; integers ``> 0`` and ``!= ignore_index``.

    Args:
        mask: ``[...]`` bool or int (e.g. a proxy annotation with values 0..20 and 255 = ignore).

    Returns:
        ``[...]`` bool.
    """
    if mask.dtype == torch.bool:
        return mask
    return (mask > 0) & (mask != ignore_index)


def _count(mask: Tensor) -> Tensor:
    """``[B, ...]`` bool -> ``[B]`` float32 number of True values.

    Sums the bool bytes as uint8 in blocks of 255 (which cannot overflow), then the blocks:
    on CPU several times faster than ``sum`` or ``count_nonzero`` of a bool tensor, which first
    copy it to a wider integer type.
    """
    flat = mask.flatten(1).view(torch.uint8)
    n_blocks = flat.shape[1] // 255
    blocks = flat[:, : n_blocks * 255].reshape(flat.shape[0], n_blocks, 255).sum(dim=2, dtype=torch.uint8)
    rest = flat[:, n_blocks * 255 :].sum(dim=1, dtype=torch.uint8)  # fewer than 255 values
    return (blocks.sum(dim=1) + rest).to(torch.float32)


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` with 0 where ``den == 0`` (``num`` is then 0 too: counts of subsets)."""
    return num / den.clamp_min(1e-12)


def boundary_accuracy(
    reference: Tensor,
    mask: Tensor,
    objectness: Tensor | None = None,
    b: float = 0.1,
    definition: Definition = "paper",
    ignore_index: int = 255,
) -> Tensor:
    """Boundary accuracy ``AC_i`` of proxy foregrounds against reference masks (Eq. 3).

    ``AC_i = 2 prec rec / (prec + rec) * F(B_i)^b`` with, for ``definition="paper"`` (as printed),
    ``prec = |H∩B| / |H|`` and ``rec = |H∩B| / |H∪B|``; for ``definition="fmeasure"`` (the standard
    F1) ``prec = |H∩B| / |B|`` and ``rec = |H∩B| / |H|``. A ratio with an empty denominator is 0,
    so an empty proxy or reference scores 0.

    Args:
        reference: ``[B, H, W]`` bool or int reference masks ``H_i``; nonzero = salient.
        mask: ``[B, H, W]`` bool or int proxy annotations; foreground ``B_i`` = :func:`foreground`
            (labels ``> 0`` except ``ignore_index``).
        objectness: ``[B]`` float ``F(B_i)`` in ``(0, 1]`` (e.g. from
            :func:`~sal_lightning.scoring.mask_objectness`), or ``None`` for ``F = 1``.
        b: exponent of the objectness term (paper: 0.1).
        definition: ``"paper"`` or ``"fmeasure"``.
        ignore_index: label of unlabelled pixels in ``mask`` (never foreground).

    Returns:
        ``[B]`` float32 scores in ``[0, 1]`` (0-d for ``[H, W]`` inputs).
    """
    if definition not in ("paper", "fmeasure"):
        raise ValueError(f"definition: expected 'paper' or 'fmeasure', got {definition!r}")
    single = isinstance(reference, torch.Tensor) and reference.dim() == 2
    batch = "" if single else "B "
    dims: dict[str, int] = {}
    _mask_kind(reference, "reference")
    _mask_kind(mask, "mask")
    check_tensor(reference, "reference", batch + "H W", "any", dims=dims)
    check_tensor(mask, "mask", batch + "H W", "any", dims=dims)
    if objectness is not None:
        check_tensor(objectness, "objectness", batch.strip(), "float", dims=dims)
    ref = reference if reference.dtype == torch.bool else reference != 0
    fg = foreground(mask, ignore_index)
    if single:
        ref, fg = ref[None], fg[None]
    n_ref = _count(ref)
    n_fg = _count(fg)
    n_both = _count(ref & fg)
    if definition == "paper":
        prec = _safe_div(n_both, n_ref)
        rec = _safe_div(n_both, n_ref + n_fg - n_both)
    else:
        prec = _safe_div(n_both, n_fg)
        rec = _safe_div(n_both, n_ref)
    ac = _safe_div(2 * prec * rec, prec + rec)
    if single:
        ac = ac[0]
    if objectness is not None:
        ac = ac * objectness.to(torch.float32).clamp_min(0).pow(b)
    return ac


def class_distribution(labels: Tensor, tags: Tensor, ignore_index: int = 255) -> Tensor:
    """Class distribution ``CD_i``: fraction of foreground pixels whose class is tagged (Eq. 4).

    Foreground pixels are those labelled ``1..C`` (``C = tags.shape[-1]``); 0 (background),
    ``ignore_index`` and any other value are not foreground. An image without foreground scores 0.

    Args:
        labels: ``[B, H, W]`` int proxy annotations (0 = background, ``c`` = class ``c``).
        tags: ``[B, C]`` multi-hot image tags without background (float, int or bool; ``> 0.5``
            counts as present).
        ignore_index: label of unlabelled pixels, never foreground.

    Returns:
        ``[B]`` float32 fractions in ``[0, 1]`` (0-d for ``[H, W]`` labels and ``[C]`` tags).
    """
    single = isinstance(labels, torch.Tensor) and labels.dim() == 2
    batch = "" if single else "B "
    dims: dict[str, int] = {}
    check_tensor(labels, "labels", batch + "H W", "int", dims=dims)
    check_tensor(tags, "tags", batch + "C", "any", dims=dims)
    if single:
        labels, tags = labels[None], tags[None]
    num_classes = tags.shape[1]
    # lookup tables over labels clamped to 0..C+1 (C+1 stands for anything above C, 255 included)
    is_fg = torch.zeros(num_classes + 2, dtype=torch.bool, device=tags.device)
    is_fg[1 : num_classes + 1] = True
    if 1 <= ignore_index <= num_classes:
        is_fg[ignore_index] = False
    is_tagged = torch.zeros(tags.shape[0], num_classes + 2, dtype=torch.bool, device=tags.device)
    is_tagged[:, 1 : num_classes + 1] = tags.to(torch.float32) > 0.5
    is_tagged &= is_fg
    idx = labels.flatten(1).clamp(0, num_classes + 1).long()  # [B, HW]
    tagged = _count(is_tagged.gather(1, idx))
    n_fg = _count(is_fg.expand_as(is_tagged).gather(1, idx))
    cd = _safe_div(tagged, n_fg)
    return cd[0] if single else cd


def _product(first: Tensor, cd: Tensor, name: str) -> Tensor:
    """``first * cd`` after checking both are float tensors of one shape (``name``: the first's)."""
    if isinstance(first, torch.Tensor) and isinstance(cd, torch.Tensor) and first.shape != cd.shape:
        raise ValueError(f"cd: expected the shape of {name} {list(first.shape)}, got {list(cd.shape)}")
    shape = " ".join(f"N{i}" for i in range(first.dim())) if isinstance(first, torch.Tensor) else "N"
    check_tensor(first, name, shape, "float")
    check_tensor(cd, "cd", shape, "float")
    return first * cd


def coarse_score(ac: Tensor, cd: Tensor) -> Tensor:
    """Coarse score ``SC_i = AC_i * CD_i`` (Eq. 5).

    Args:
        ac: ``[B]`` float boundary accuracies.
        cd: ``[B]`` float class distributions.

    Returns:
        ``[B]`` float scores.
    """
    return _product(ac, cd, "ac")


def fine_score(p: Tensor, cd: Tensor) -> Tensor:
    """Fine score ``SF_i = P_i * CD_i`` (Eq. 7).

    Args:
        p: ``[B]`` float qualities predicted by the fine scorer.
        cd: ``[B]`` float class distributions.

    Returns:
        ``[B]`` float scores.
    """
    return _product(p, cd, "p")
