"""Weights files for a rehearsal: a network's batch-norm statistics estimated from a few batches.

A network with frozen batch norm (DeepLab v2) needs weights whose running statistics fit its inputs:
with the default ones (mean 0, variance 1) a ResNet-101's features grow block after block. Where
the real initial weights cannot be had (tests, benchmarks, a configuration tried offline),
:func:`write_calibrated_backbone` builds the network a configuration names, re-estimates the running
statistics of its backbone's batch norm from a few batches of inputs (:func:`calibrate_batch_norm`)
and saves the backbone's state dict: a file that ``encoder_weights`` loads like any other, for any
backbone name. The weights themselves stay random; only the statistics fit the data.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from itertools import chain
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sal_lightning._atomic import atomic_path
from sal_lightning.nn.builder import build_deeplab
from sal_lightning.nn.deeplab import DeepLab


def calibrate_batch_norm(network: DeepLab, batches: Iterable[Tensor]) -> int:
    """Set the running mean and variance of every batch norm of ``network``'s backbone to their
    averages over ``batches`` (each ``[B, 3, H, W]``, as the network's forward takes them).

    The other weights are not changed and every module keeps its train / eval mode. Returns the
    number of batch-norm layers calibrated (0: nothing to do, the batches are not read).
    """
    norms = [m for m in network.backbone_module().modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    iterator = iter(batches)
    first = next(iterator, None)
    if first is None:
        raise ValueError("batches: give at least one batch to estimate the batch-norm statistics from")
    saved = [(m.training, m.momentum) for m in norms]
    for module in norms:
        module.reset_running_stats()
        module.momentum = None  # a cumulative average over the batches
        module.train()
    with torch.no_grad():
        for batch in chain([first], iterator):
            network(batch)  # the whole forward: whatever the network does to its input reaches the trunk
    for module, (training, momentum) in zip(norms, saved, strict=True):
        module.train(training)
        module.momentum = momentum
    return len(norms)


def write_calibrated_backbone(
    name: str, path: str | os.PathLike[str], batches: Iterable[Tensor], **build: Any
) -> Path:
    """Build ``build_deeplab(name, **build)``, calibrate its backbone's batch norm on ``batches``
    (:func:`calibrate_batch_norm`) and save the backbone's state dict to ``path`` (a ``.pth`` file
    that ``encoder_weights`` loads). Returns ``path``."""
    network = build_deeplab(name, **build)
    calibrate_batch_norm(network, batches)
    target = Path(path)
    with atomic_path(target) as partial:
        torch.save(network.backbone_module().state_dict(), partial)
    return target
