"""One Trainer factory, one checkpoint save and one seed call for every stage.

:class:`TrainerSettings` holds what a user sets for a whole run: the same fields under the key
``trainer`` of a pipeline configuration, as ``--trainer.devices 2`` on every command line, and as
``trainer=TrainerSettings(devices=2)`` in Python. :func:`make_trainer` layers them over the
stage's own settings (``max_steps``, callbacks...) and the library's quiet defaults (no logger, no
checkpointing unless asked, no model summary, no sanity validation), and a
:class:`~sal_lightning.callbacks.progress.TrainingLine` that prints each training's global batch
and learning rate when it starts.

Lightning's batch size is per device: ``batch_size: 7`` on 4 devices trains on 28 images a step.
``TrainerSettings(batch_sizes="global")`` reads the training batch sizes of a configuration as
global batches instead: each device gets ``batch / (devices x num_nodes x accumulate_grad_batches)``
(:meth:`TrainerSettings.local_batch`), and a batch that does not split evenly is refused before any
work starts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

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
class TrainerSettings:
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
        accumulate_grad_batches: batches whose gradients are summed into one optimiser step.
        batch_sizes: how the training batch sizes of the stages are read: ``"per_device"``
            (Lightning's convention: the global batch is the batch x devices x nodes x
            accumulation) or ``"global"`` (the batch is the global one, divided among the devices,
            nodes and accumulated batches; it must divide evenly).
    """

    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str | None = None
    enable_progress_bar: bool | None = None
    accumulate_grad_batches: int = 1
    batch_sizes: Literal["per_device", "global"] = "per_device"

    def __post_init__(self) -> None:
        if isinstance(self.devices, bool) or (isinstance(self.devices, int) and self.devices < -1):
            raise ValueError(f"devices: expected a number >= 1, -1, 'auto' or a list, got {self.devices!r}")
        if self.devices == 0:
            raise ValueError("devices: expected a number >= 1, -1, 'auto' or a list, got 0")
        if self.num_nodes < 1:
            raise ValueError(f"num_nodes: expected an integer >= 1, got {self.num_nodes}")
        if isinstance(self.accumulate_grad_batches, bool) or self.accumulate_grad_batches < 1:
            raise ValueError(
                f"accumulate_grad_batches: expected an integer >= 1, got {self.accumulate_grad_batches!r}"
            )
        if self.batch_sizes not in ("per_device", "global"):
            raise ValueError(f"batch_sizes: expected 'per_device' or 'global', got {self.batch_sizes!r}")

    @property
    def distributed(self) -> bool:
        """Whether more than one process may run (more than one device or node)."""
        return str(self.devices) != "1" or self.num_nodes != 1

    def world_size(self) -> int:
        """The processes a training runs on: devices per node x nodes (``"auto"`` and ``-1`` as
        Lightning resolves them on this machine)."""
        devices = str(self.devices).strip()
        if devices.isdigit():
            count = int(devices)
        elif "," in devices or devices.startswith("["):
            count = len([d for d in devices.strip("[]").split(",") if d.strip()])
        else:  # "auto", -1: what Lightning finds
            count = pl.Trainer(**{**QUIET, **self.kwargs(), "enable_progress_bar": False}).num_devices
        return count * self.num_nodes

    def local_batch(self, batch: int, name: str = "batch_size") -> int:
        """The per-device batch of the training batch size ``batch`` (the setting ``name``).

        ``batch_sizes="per_device"``: ``batch`` itself. ``"global"``: ``batch`` divided by
        devices x nodes x ``accumulate_grad_batches``; ``ValueError`` naming ``name`` and the ways
        out when it does not divide evenly.
        """
        if self.batch_sizes == "per_device":
            return batch
        world = self.world_size()
        parts = world * self.accumulate_grad_batches
        if batch % parts:
            raise ValueError(
                f"{name}: the global batch {batch} (trainer.batch_sizes: global) does not split over "
                f"{world} device(s) x {self.accumulate_grad_batches} accumulated batch(es); give a "
                f"global batch divisible by {parts}, or a trainer.accumulate_grad_batches x "
                f"devices x num_nodes that divides {batch}, or trainer.batch_sizes: per_device "
                f"(then {batch} per device, a global batch of {batch * parts})"
            )
        return batch // parts

    def check(self, argument: str = "trainer") -> None:
        """The accelerator and devices against this machine (:func:`check_accelerator`)."""
        check_accelerator(self.accelerator, self.devices, argument=argument)

    def with_progress(self, default: bool) -> TrainerSettings:
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
            "accumulate_grad_batches": self.accumulate_grad_batches,
        }
        if self.precision is not None:
            out["precision"] = self.precision
        if self.enable_progress_bar is not None:
            out["enable_progress_bar"] = self.enable_progress_bar
        return out


def check_accelerator(accelerator: Any, devices: Any, *, argument: str = "trainer") -> None:
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
    options: TrainerSettings | None = None,
    callbacks: Sequence[pl.Callback] = (),
    *,
    progress: bool | str = False,
    **settings: Any,
) -> pl.Trainer:
    """A ``Trainer`` with :data:`QUIET` defaults, then the stage's ``settings`` (``max_steps``,
    ``limit_val_batches``...), then the user's ``options``; ``callbacks`` are added, and a
    :class:`~sal_lightning.callbacks.progress.TrainingLine`.

    ``progress``: show the loop's progress as lines naming the network and, when a string, what
    else identifies the run (``"seed 1"``; :class:`~sal_lightning.callbacks.progress.ProgressLines`);
    ``False``: nothing. A user's ``enable_progress_bar`` wins: Lightning's bar, or nothing.
    """
    options = options or TrainerSettings()
    kwargs = {**QUIET, **settings, **options.kwargs()}
    from sal_lightning.callbacks.progress import TrainingLine

    kwargs["callbacks"] = [*callbacks, TrainingLine()]
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


def final_losses(trainer: pl.Trainer) -> dict[str, float]:
    """The loss terms the last training step logged (``train/loss``, ``train/loss_seed``...) as
    ``{"loss": ..., "loss_seed": ...}``: what a finished training reports."""
    return {
        key.split("/", 1)[1]: float(value)
        for key, value in trainer.callback_metrics.items()
        if key.startswith("train/loss")
    }


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
