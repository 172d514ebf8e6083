"""Coarse scores of a batch of proxies (SAL-Net Eq. 3-5): AC, CD and SC from images, proxies,
reference masks and tags.

:func:`accuracy_batch` is AC with the settings of Eq. 3 (``b``, the definition, the objectness
function) as keyword arguments; :func:`score_samples` turns a list of samples
(as :class:`~sal_lightning.data.proxy_data.CoarseScoringDataset` yields them) into AC, CD and SC,
batching images of equal size (VOC images come in a handful of sizes) on any device. The
Lightning predict loop that shards a dataset across DDP ranks and writes ``scores.csv`` is
:func:`sal_lightning.stages.coarse.score_coarse`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sal_lightning._lazy import lazy_module
from sal_lightning.scoring.metrics import Definition, boundary_accuracy, class_distribution, coarse_score
from sal_lightning.scoring.objectness import mask_objectness

if not TYPE_CHECKING:  # see sal_lightning._lazy.lazy_module
    torch = lazy_module("torch")
    ObjectnessFn = Callable[[Any, Any], Any]  # tensors: the same type, read without importing torch
else:
    import torch
    from torch import Tensor

    ObjectnessFn = Callable[[Tensor, Tensor], Tensor]
"""``F(image uint8 [B, 3, H, W], mask [B, H, W]) -> [B]`` in (0, 1], e.g. :func:`mask_objectness`."""


def check_accuracy_settings(b: Any, definition: Any, objectness: Any) -> None:
    """Raise ``ValueError`` naming the setting unless ``b``, ``definition`` and ``objectness`` are
    settings of Eq. 3: ``b`` a number ``>= 0`` (the objectness exponent; 0: F has no effect),
    ``definition`` ``"paper"`` or ``"fmeasure"``, ``objectness`` a callable or ``None``."""
    b_ok = isinstance(b, int | float) and not isinstance(b, bool) and b >= 0
    if not b_ok:  # NaN fails too
        raise ValueError(f"b: expected a number >= 0 (the objectness exponent), got {b!r}")
    if definition not in ("paper", "fmeasure"):
        raise ValueError(f"definition: expected 'paper' or 'fmeasure', got {definition!r}")
    if objectness is not None and not callable(objectness):
        raise ValueError(f"objectness: expected a callable or None, got {objectness!r}")


def objectness_name(objectness: ObjectnessFn | None) -> str | None:
    """An objectness function by its qualified name (JSON-friendly, stable across processes)."""
    if objectness is None:
        return None
    module = getattr(objectness, "__module__", "?")
    return f"{module}.{getattr(objectness, '__qualname__', repr(objectness))}"


def accuracy_batch(
    image: Tensor,
    reference: Tensor,
    mask: Tensor,
    *,
    b: float = 0.1,
    definition: Definition = "paper",
    objectness: ObjectnessFn | None = mask_objectness,
) -> Tensor:
    """AC (Eq. 3) of same-sized masks.

    image: uint8/float ``[B, 3, H, W]``; reference: bool ``[B, H, W]``; mask: ``[B, H, W]`` label
    maps or bool foregrounds. ``b``: the objectness exponent (paper: 0.1); ``definition``:
    ``"paper"`` (Eq. 3 as printed) or ``"fmeasure"``; ``objectness``: ``F(B)``, ``None`` for F = 1.
    Returns float32 ``[B]``.
    """
    f = None if objectness is None else objectness(image, mask)
    return boundary_accuracy(reference, mask, objectness=f, b=b, definition=definition)


def boundary_accuracy_np(
    image: np.ndarray,
    reference: np.ndarray,
    mask: np.ndarray,
    *,
    b: float = 0.1,
    definition: Definition = "paper",
    objectness: ObjectnessFn | None = mask_objectness,
) -> float:
    """AC of one mask from numpy arrays: image uint8 ``[H, W, 3]``, reference and mask ``[H, W]``
    (the settings as in :func:`accuracy_batch`)."""
    x = torch.tensor(image).permute(2, 0, 1)[None]  # torch.tensor copies (inputs may be read-only)
    ref = torch.tensor(reference, dtype=torch.bool)[None]
    m = torch.tensor(mask)[None]
    return float(accuracy_batch(x, ref, m, b=b, definition=definition, objectness=objectness)[0])


def score_samples(
    samples: Sequence[dict[str, Any]],
    *,
    b: float = 0.1,
    definition: Definition = "paper",
    objectness: ObjectnessFn | None = mask_objectness,
) -> dict[str, Tensor | list[str]]:
    """AC, CD and SC of a list of samples as :class:`CoarseScoringDataset` yields them (the
    settings of Eq. 3 as in :func:`accuracy_batch`).

    Each sample: ``id`` str, ``image`` uint8 ``[3, H, W]``, ``proxy`` uint8 ``[H, W]``,
    ``reference`` bool ``[H, W]``, ``tags`` float ``[C]`` (sizes may differ between samples).
    Returns ``{"id": [...], "ac": [N], "cd": [N], "sc": [N]}`` (float32, on the samples' device),
    in input order.
    """
    n = len(samples)
    device = samples[0]["image"].device if n else torch.device("cpu")
    ac = torch.zeros(n, device=device)
    cd = torch.zeros(n, device=device)
    groups: dict[tuple[int, int], list[int]] = {}
    for k, sample in enumerate(samples):
        groups.setdefault(tuple(sample["proxy"].shape), []).append(k)
    for members in groups.values():
        image = torch.stack([samples[k]["image"] for k in members])
        proxy = torch.stack([samples[k]["proxy"] for k in members]).long()
        reference = torch.stack([samples[k]["reference"] for k in members])
        tags = torch.stack([samples[k]["tags"] for k in members])
        index = torch.as_tensor(members, device=device)
        ac[index] = accuracy_batch(
            image, reference, proxy, b=b, definition=definition, objectness=objectness
        ).to(device)
        cd[index] = class_distribution(proxy, tags).to(device)
    return {"id": [s["id"] for s in samples], "ac": ac, "cd": cd, "sc": coarse_score(ac, cd)}
