"""Never train on NaN: the first non-finite loss stops training with one line.

Every LightningModule of the library passes its named loss terms to :func:`check_finite_losses` in
``training_step``, before the backward pass. When one is NaN or infinite it raises
:class:`NonFiniteLossError` (a ``ValueError``: the command line prints it as one line and exits
with code 2) naming the global step, the term and the likely cause, read from the batch, the
weights and the settings. Under DDP the ranks agree first, so that every rank stops at the same step.
The check costs one host synchronisation per step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

#: loss keys -> the term's name in messages (the paper's names where it has them)
TERMS: dict[str, str] = {
    "loss_sel": "L_sel (selection loss, Eq. 13)",
    "loss_atten": "L_atten (attention loss, Eq. 12)",
    "loss_seed": "seed (SEC / DSRG seed loss)",
    "loss_expand": "expand (SEC expand loss)",
    "loss_constrain": "constrain (SEC constrain loss)",
    "loss_scorer": "scorer (l2 loss, Eq. 6)",
    "loss_cam": "CAM (multi-label soft margin)",
    "loss_agreement": "agreement (cross-entropy)",
    "loss": "the total loss",
}


class NonFiniteLossError(ValueError):
    """A loss term became NaN or infinite; the message is one line."""


def _nonfinite(module: nn.Module) -> str | None:
    """The name of the first parameter with a NaN or infinite value, or ``None``."""
    return next((n for n, p in module.named_parameters() if not bool(torch.isfinite(p).all())), None)


def _frozen_without_weights(module: Any) -> bool:
    hparams = getattr(module, "hparams", {})
    net = getattr(module, "net", None)
    return bool(getattr(net, "frozen_bn", False)) and hparams.get("encoder_weights", "") is None


def likely_cause(module: Any, batch: Mapping[str, Any] | None) -> str:
    """The most likely reason for a non-finite loss of ``module`` on ``batch``, in a few words."""
    image = batch.get("image") if batch is not None else None
    if isinstance(image, Tensor) and not bool(torch.isfinite(image).all()):
        return "the batch's images hold NaN or inf values: check the data"
    lr = getattr(module, "hparams", {}).get("lr")
    lower = f"lower the learning rate (lr={lr})" if lr is not None else "lower the learning rate"
    parameter = _nonfinite(module)
    if parameter is not None:
        return f"the weights are no longer finite ({parameter}): an earlier update diverged; {lower}"
    trainer = getattr(module, "_trainer", None)
    precision = str(getattr(trainer, "precision", ""))
    if "16" in precision and "bf16" not in precision:
        return f"float16 overflow under precision {precision}: train with bf16-mixed or 32-true, or {lower}"
    if _frozen_without_weights(module):
        return "frozen batch norm without pretrained statistics (freeze_bn with encoder_weights null)"
    if trainer is None or trainer.global_step == 0:
        return "the initial network overflows: check the input normalisation and the weights file"
    return f"the updates diverged: {lower}, or check the data and the weights file"


def check_finite_losses(
    module: Any, losses: Mapping[str, Tensor], batch: Mapping[str, Any] | None = None
) -> None:
    """Raise :class:`NonFiniteLossError` when a loss term of ``losses`` (keys starting with ``loss``,
    scalar tensors) is not finite: ``CAMClassifier: training stopped at global step 12: L_sel
    (selection loss, Eq. 13) is nan (likely cause: ...)``. ``module`` is the LightningModule."""
    terms = {k: v for k, v in losses.items() if k.startswith("loss")}
    if not terms:
        return
    finite = bool(torch.stack([v.detach().float().isfinite().all() for v in terms.values()]).all())
    trainer = getattr(module, "_trainer", None)
    if trainer is not None and trainer.world_size > 1:
        finite = trainer.strategy.reduce_boolean_decision(finite, all=True)
    if finite:
        return
    bad = [k for k, v in terms.items() if not bool(v.detach().float().isfinite().all())]
    key = next((k for k in bad if k != "loss"), bad[0] if bad else "loss")
    value = f"{float(terms[key].detach().float()):g}" if key in bad else "finite here (another rank's is not)"
    step = trainer.global_step if trainer is not None else 0
    raise NonFiniteLossError(
        f"{type(module).__name__}: training stopped at global step {step}: {TERMS.get(key, key)} is "
        f"{value} (likely cause: {likely_cause(module, batch)})"
    )
