"""One Trainer factory, one checkpoint save and one seed call for every stage.

:class:`TrainerOptions` holds what a user sets for a whole run: the same fields under the key
``trainer`` of a pipeline configuration, as ``--trainer.devices 2`` on every command line, and as
``trainer=TrainerOptions(devices=2)`` in Python. :func:`make_trainer` layers them over the
stage's own settings (``max_steps``, callbacks...) and the library's quiet defaults (no logger, no
checkpointing unless asked, no model summary, no sanity validation).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sal_lightning._lazy import lazy_module
from sal_lightning._threads import apply_threads

if not TYPE_CHECKING:  # see sal_lightning._lazy.lazy_module
    pl = lazy_module("lightning.pytorch")
else:
    import lightning.pytorch as pl

#: settings of every Trainer a stage builds, unless the stage or the user sets them
QUIET: dict[str, Any] = {
    "logger": False,
    "enable_checkpointing": False,
    "enable_model_summary": False,
    "num_sanity_val_steps": 0,
}


@dataclass(frozen=True)
class TrainerOptions:
    """Lightning ``Trainer`` settings for every Trainer of a command or a pipeline.

    Attributes:
        accelerator: ``"auto"``, ``"cpu"``, ``"gpu"``, ``"mps"``...
        devices: devices per node (a number, ``"auto"``, or a list such as ``"0,1"``); more than
            one runs DDP.
        strategy: ``"auto"`` (``"ddp"`` when more than one device or node is asked for) or any
            Lightning strategy.
        num_nodes: nodes (under ``torchrun`` or SLURM).
        precision: ``"32-true"`` (Lightning's default when unset), ``"bf16-mixed"``, ``"16-mixed"``...
        enable_progress_bar: Lightning's progress bars; unset: each stage's default (bars where a
            stage trains).
    """

    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str | None = None
    enable_progress_bar: bool | None = None

    def __post_init__(self) -> None:
        if isinstance(self.devices, bool) or (isinstance(self.devices, int) and self.devices < -1):
            raise ValueError(f"devices: expected a number >= 1, -1, 'auto' or a list, got {self.devices!r}")
        if self.devices == 0:
            raise ValueError("devices: expected a number >= 1, -1, 'auto' or a list, got 0")
        if self.num_nodes < 1:
            raise ValueError(f"num_nodes: expected an integer >= 1, got {self.num_nodes}")

    @property
    def distributed(self) -> bool:
        """Whether more than one process may run (more than one device or node)."""
        return str(self.devices) != "1" or self.num_nodes != 1

    def check(self, argument: str = "trainer") -> None:
        """The accelerator and devices against this machine (:func:`check_accelerator`)."""
        check_accelerator(self.accelerator, self.devices, argument)

    def with_progress(self, default: bool) -> TrainerOptions:
        """These options, with ``enable_progress_bar`` set to ``default`` when the user left it unset."""
        if self.enable_progress_bar is not None:
            return self
        return replace(self, enable_progress_bar=default)

    def kwargs(self) -> dict[str, Any]:
        """The ``Trainer`` keyword arguments these options set (unset ones left out)."""
        out: dict[str, Any] = {
            "accelerator": self.accelerator,
            "devices": self.devices,
            "strategy": "ddp" if self.strategy == "auto" and self.distributed else self.strategy,
            "num_nodes": self.num_nodes,
        }
        if self.precision is not None:
            out["precision"] = self.precision
        if self.enable_progress_bar is not None:
            out["enable_progress_bar"] = self.enable_progress_bar
        return out


def check_accelerator(accelerator: Any, devices: Any, argument: str = "trainer") -> None:
    """Raise ``ValueError`` naming the fix when ``accelerator`` is not on this machine, or when it has
    fewer than ``devices`` of them (``--trainer.accelerator gpu`` without a GPU): before any work,
    not when the first Trainer of a long run is built. ``"auto"`` and accelerator objects pass."""
    if not isinstance(accelerator, str) or accelerator == "auto":
        return
    from lightning.pytorch.accelerators import AcceleratorRegistry

    name = {"gpu": "cuda"}.get(accelerator, accelerator)
    if name not in AcceleratorRegistry:
        known = ", ".join(sorted({"auto", "gpu", *AcceleratorRegistry}))
        raise ValueError(f"{argument}.accelerator: expected one of {known}, got {accelerator!r}")
    kind = AcceleratorRegistry[name]["accelerator"]
    fix = f"use --{argument}.accelerator cpu (or auto, which picks what this machine has)"
    if not kind.is_available():
        raise ValueError(f"{argument}.accelerator: {accelerator!r} is not available on this machine; {fix}")
    if name != "cpu" and isinstance(devices, int) and not isinstance(devices, bool) and devices > 0:
        count = kind.auto_device_count()
        if devices > count:
            raise ValueError(
                f"{argument}.devices: {devices} {accelerator} devices asked for, this machine has {count}; "
                f"use --{argument}.devices {count} (or -1: all of them)"
            )


def make_trainer(
    options: TrainerOptions | None = None,
    callbacks: Sequence[pl.Callback] = (),
    progress: bool | str = False,
    **settings: Any,
) -> pl.Trainer:
    """A ``Trainer`` with :data:`QUIET` defaults, then the stage's ``settings`` (``max_steps``,
    ``limit_val_batches``...), then the user's ``options``; ``callbacks`` are added.

    ``progress``: show the loop's progress as lines naming the network and, when a string, what
    else identifies the run (``"seed 1"``; :class:`~sal_lightning.callbacks.progress.ProgressLines`);
    ``False``: nothing. A user's ``enable_progress_bar`` wins: Lightning's bar, or nothing.
    """
    options = options or TrainerOptions()
    kwargs = {**QUIET, **settings, **options.kwargs()}
    kwargs["callbacks"] = list(callbacks)
    if options.enable_progress_bar is None:
        kwargs["enable_progress_bar"] = False
        if progress is not False:
            from sal_lightning.callbacks.progress import ProgressLines

            kwargs["callbacks"].append(ProgressLines("" if progress is True else progress))
    apply_threads(cpu_processes(kwargs["accelerator"], kwargs["devices"]))
    return pl.Trainer(**kwargs)


def cpu_processes(accelerator: Any, devices: Any) -> int:
    """The processes a Trainer runs on this machine's CPUs (its DDP ranks; 1 on an accelerator)."""
    import torch

    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    return devices if on_cpu and isinstance(devices, int) and devices > 1 else 1


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (and the DataLoader workers) for a reproducible stage."""
    pl.seed_everything(seed, workers=True, verbose=False)


def save_checkpoint(trainer: pl.Trainer, path: str | os.PathLike[str]) -> Path:
    """Save the model's weights and hyperparameters to ``path`` atomically; returns ``path``.

    Every rank calls it (DDP gathers nothing for a weights-only save); rank 0 writes a partial file
    beside ``path`` and renames it into place, then all ranks wait for each other.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.stem}.partial{target.suffix}")
    trainer.save_checkpoint(partial, weights_only=True)
    if trainer.is_global_zero:
        os.replace(partial, target)
    trainer.strategy.barrier("save-checkpoint")
    return target
