"""DSRG seeded region growing (Huang et al., CVPR 2018), vectorised in torch.

At every training iteration the seeds grow into the pixels the network is confident about:

1. restrict the probabilities to the image's tagged classes + background and take the argmax there;
2. a pixel is a candidate for class ``c`` if its argmax is ``c`` and ``p_c > 0.85`` (foreground)
   or ``p_0 > 0.99`` (background);
3. the candidates of ``c`` that are 8-connected to an original seed of ``c`` join it.

Growth restarts from the original seeds every iteration (the caller passes the same seeds each
time; this function never accumulates). Seed pixels belong to their class's region even when the
network is not confident on them, so a confident region 8-adjacent to a seed joins too. The
connected-component step is a flood fill by repeated 3x3 max pooling, for all images and classes at
once, which runs on the GPU and needs no worker processes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sal_lightning._checks import check_tensor

IGNORE_INDEX = 255


def flood_fill(sources: torch.Tensor, allowed: torch.Tensor, check_every: int = 8) -> torch.Tensor:
    """The pixels of ``allowed`` that are 8-connected to a pixel of ``sources`` inside ``allowed``.

    sources, allowed: ``[N, H, W]`` bool (``sources`` outside ``allowed`` are dropped).
    Returns ``[N, H, W]`` bool. Iterates 3x3 max pooling until nothing changes, testing for
    convergence every ``check_every`` steps (each test synchronises with the device).
    """
    dims: dict[str, int] = {}
    check_tensor(sources, "sources", "N H W", "bool", dims=dims)
    check_tensor(allowed, "allowed", "N H W", "bool", dims=dims)
    if check_every < 1:
        raise ValueError(f"check_every: expected a positive integer, got {check_every}")
    gate = allowed.unsqueeze(1).to(torch.float32)
    region = (sources & allowed).unsqueeze(1).to(torch.float32)
    max_steps = dims["H"] * dims["W"]  # longest possible 8-connected path
    steps = 0
    while steps < max_steps:
        before = region
        for _ in range(check_every):
            region = F.max_pool2d(region, kernel_size=3, stride=1, padding=1) * gate
        steps += check_every
        if torch.equal(region, before):
            break
    return region.squeeze(1) > 0.5


def grow_seeds(
    probs: torch.Tensor,
    seeds: torch.Tensor,
    tags: torch.Tensor,
    fg_threshold: float = 0.85,
    bg_threshold: float = 0.99,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """One DSRG growth from the original seeds.

    probs: ``[B, C+1, H, W]`` float, softmax probabilities (channel 0 = background), no gradient needed.
    seeds: ``[B, H, W]`` int, original seeds (0 = bg, 1..C, ``ignore_index`` = unlabelled).
    tags: ``[B, C]`` multi-hot image tags (background is always allowed).
    Returns ``[B, H, W]`` long: the original seeds, plus each grown pixel labelled with its class;
    ``ignore_index`` elsewhere. Untagged classes never grow.
    """
    dims: dict[str, int] = {}
    check_tensor(probs, "probs", "B K H W", "float", dims=dims)
    check_tensor(seeds, "seeds", "B H W", "int", dims=dims)
    check_tensor(tags, "tags", "B C", "any", dims=dims)
    if dims["C"] != dims["K"] - 1:
        raise ValueError(f"tags: expected {dims['K'] - 1} classes (probs minus background), got {dims['C']}")
    valid = seeds != ignore_index
    if bool(((seeds < 0) | (seeds >= dims["K"]))[valid].any()):
        raise ValueError(f"seeds: expected labels in [0, {dims['K'] - 1}] or {ignore_index}")
    for name, value in (("fg_threshold", fg_threshold), ("bg_threshold", bg_threshold)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}: expected a value in [0, 1], got {value}")
    with torch.no_grad():
        probs = probs.detach()
        present = torch.cat([torch.ones_like(tags[:, :1], dtype=torch.bool), tags > 0.5], 1)  # [B, K]
        restricted = probs.masked_fill(~present[:, :, None, None], -1.0)
        best_p, best_c = restricted.max(1)  # [B, H, W]
        thresholds = torch.full((dims["K"],), fg_threshold, device=probs.device, dtype=probs.dtype)
        thresholds[0] = bg_threshold
        confident = best_p > thresholds[best_c]
        classes = torch.arange(dims["K"], device=probs.device)[None, :, None, None]
        seed_hot = seeds.long().unsqueeze(1) == classes  # [B, K, H, W]
        seeded = (seeds != ignore_index).unsqueeze(1)
        # Candidates: confident argmax of a tagged class, or its own seed; a seed of another class
        # stays that class (the original seeds are kept as they are).
        candidates = ((best_c.unsqueeze(1) == classes) & confident.unsqueeze(1) & ~seeded) | seed_hot
        candidates &= present[:, :, None, None]
        grown = flood_fill(seed_hot.flatten(0, 1), candidates.flatten(0, 1)).view_as(candidates)
        labels = torch.where(grown.any(1), grown.to(torch.uint8).argmax(1), ignore_index)
        return torch.where(seeded.squeeze(1), seeds.long(), labels)
