"""Proxy annotations of known quality for a VOC root: its ground truth corrupted on purpose.

The corruptions themselves are :func:`~sal_lightning.scoring.corruption.corrupt_labels`; tests,
docs and benchmarks compare scores with the true quality of these proxies.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sal_lightning._atomic import atomic_write_text
from sal_lightning.data.io import read_label_png, write_label_png
from sal_lightning.data.layout import find_gt_mask, resolve_ids, resolve_voc_root, root_classes
from sal_lightning.scoring.corruption import CORRUPTIONS, STRENGTHS, Corruption, corrupt_labels

PathLike = str | os.PathLike[str]


def make_corrupted_proxies(
    root: PathLike,
    out: PathLike,
    *,
    split: str | Sequence[str] = "train",
    seed: int = 0,
    ops: Sequence[Corruption] = CORRUPTIONS,
    progress: bool = True,
) -> dict[str, tuple[str, float]]:
    """Write ``<out>/<id>.png``: each ground truth of ``split`` corrupted by a random op of ``ops``.

    Image ``k`` uses generator ``SeedSequence(seed).spawn`` child ``k``; op and strength are
    recorded in ``<out>/corruptions.json`` and returned as ``{id: (op, strength)}``.

    Args:
        root: the VOC root with the ground truth.
        out: the folder of the corrupted proxies.
        split: split name, list file or ids.
        seed: seed of the corruptions.
        ops: the corruptions drawn from.
        progress: show a progress bar.
    """
    voc = resolve_voc_root(root)
    ids = resolve_ids(voc, split)
    for op in ops:
        if op not in CORRUPTIONS:
            raise ValueError(f"ops: expected names from {CORRUPTIONS}, got {op!r}")
    gts = {i: find_gt_mask(voc, i) for i in ids}
    missing = [i for i, p in gts.items() if p is None]
    if missing:
        raise FileNotFoundError(f"{voc}: {len(missing)} ids have no ground-truth mask, e.g. {missing[:5]}")
    folder = Path(out)
    num_classes = len(root_classes(voc))  # K of the root's class list (classes.txt, else VOC's 21)
    done: dict[str, tuple[str, float]] = {}
    children = np.random.SeedSequence(seed).spawn(len(ids))
    for image_id, child in tqdm(list(zip(ids, children, strict=True)), desc="corrupt", disable=not progress):
        rng = np.random.default_rng(child)
        op = ops[int(rng.integers(len(ops)))]
        strength = float(rng.uniform(*STRENGTHS[op]))
        labels = read_label_png(gts[image_id], num_classes)  # type: ignore[arg-type]
        corrupted = corrupt_labels(labels, op, strength, rng, num_foreground=num_classes - 1)
        write_label_png(folder / f"{image_id}.png", corrupted, num_classes)
        done[image_id] = (op, strength)
    atomic_write_text(folder / "corruptions.json", json.dumps(done, indent=1, sort_keys=True) + "\n")
    return done
