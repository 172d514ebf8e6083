"""Progress of a long loop as lines that read well in a terminal and in a log file.

:class:`ProgressLines` names what runs (the pipeline step, the network, the seed), the steps done,
the rate and the time left::

    [ 9/13] retrain-P4: SALSegmenter (deeplabv3_resnet18), seed 1: step 120/300, 9.8 steps/s, ETA 18 s

On a terminal the line is rewritten in place (at most twice a second); in a log file (stderr not a
terminal) a new line is written every :data:`LOG_INTERVAL` seconds and one at the end, instead of
thousands of carriage-return updates. The library's stages use it in place of Lightning's
progress bar unless the user sets ``trainer.enable_progress_bar``. :class:`TrainingLine` prints,
once when a training starts, its network, effective global batch and learning rates.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

import lightning.pytorch as pl

from sal_lightning._console import current_step, format_seconds

#: seconds between two progress lines when stderr is not a terminal
LOG_INTERVAL = 20.0
#: seconds between two updates of the line on a terminal
TTY_INTERVAL = 0.5
#: the plural of each unit counted
PLURAL = {"step": "steps", "batch": "batches"}


class ProgressLines(pl.Callback):
    """Training steps and prediction batches as progress lines (see the module docstring).

    Args:
        task: what the run is besides its network, e.g. ``"seed 1"`` (empty: nothing).
        stream: where to write (default: stderr).
    """

    def __init__(self, task: str = "", stream: IO[str] | None = None) -> None:
        self.task = task
        self.stream = stream
        self._start = self._last = 0.0
        self._total: int | None = None
        self._unit = "step"
        self._done = 0

    # -- text ---------------------------------------------------------------------------------
    def _name(self, pl_module: pl.LightningModule) -> str:
        backbone = getattr(pl_module, "hparams", {}).get("backbone")
        what = type(pl_module).__name__ + (f" ({backbone})" if isinstance(backbone, str) else "")
        step = current_step()
        return ", ".join(p for p in (f"{step}: {what}" if step else what, self.task) if p)

    def line(self, name: str, done: int, elapsed: float) -> str:
        """``"<name>: step 120/300, 9.8 steps/s, ETA 18 s"`` (without a total: no ETA)."""
        rate = done / elapsed if elapsed > 0 else 0.0
        total = f"/{self._total}" if self._total else ""
        text = f"{name}: {self._unit} {done}{total}, {rate:.1f} {PLURAL[self._unit]}/s"
        if self._total and 0 < done < self._total and rate > 0:
            text += f", ETA {format_seconds((self._total - done) / rate)}"
        return text

    # -- output -------------------------------------------------------------------------------
    def _out(self) -> IO[str]:
        return self.stream or sys.stderr

    def _begin(self, trainer: pl.Trainer, total: int | None, unit: str) -> None:
        self._start = self._last = time.perf_counter()
        self._total, self._unit = total, unit

    def _update(self, trainer: pl.Trainer, pl_module: pl.LightningModule, done: int) -> None:
        now = time.perf_counter()
        tty = self._out().isatty()
        if not trainer.is_global_zero or now - self._last < (TTY_INTERVAL if tty else LOG_INTERVAL):
            return
        self._last = now
        text = self.line(self._name(pl_module), done, now - self._start)
        self._out().write(f"\r{text}\033[K" if tty else text + "\n")
        self._out().flush()

    def _end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, done: int) -> None:
        if not trainer.is_global_zero:
            return
        elapsed = time.perf_counter() - self._start
        text = f"{self._name(pl_module)}: {done} {PLURAL[self._unit]} in {format_seconds(elapsed)}"
        self._out().write((f"\r{text}\033[K\n") if self._out().isatty() else text + "\n")
        self._out().flush()

    # -- hooks --------------------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
        if total is None and trainer.max_epochs and trainer.max_epochs > 0:
            per_epoch = trainer.num_training_batches
            total = int(per_epoch * trainer.max_epochs) if per_epoch != float("inf") else None
        self._begin(trainer, total, "step")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self._update(trainer, pl_module, trainer.global_step)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._end(trainer, pl_module, trainer.global_step)

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        batches = [int(n) for n in trainer.num_predict_batches if n != float("inf")]
        self._begin(trainer, sum(batches) or None, "batch")
        self._done = 0

    def on_predict_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self._done += 1
        self._update(trainer, pl_module, self._done)

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._end(trainer, pl_module, self._done)


class TrainingLine(pl.Callback):
    """Print one line on rank zero when a training starts: the network, its effective global batch
    (per-device batch x devices x nodes x accumulated batches) and its learning rates::

        SALSegmenter: global batch 7 = 7 per device x 1 device x 1 node x 1 accumulated; lr 0.0001
    """

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            print(training_line(trainer, pl_module), flush=True)


def _per_device_batch(trainer: pl.Trainer) -> int | None:
    loader = trainer.train_dataloader
    size = getattr(loader, "batch_size", None)
    if size is None:
        size = getattr(getattr(loader, "batch_sampler", None), "batch_size", None)
    return int(size) if isinstance(size, int) else None


def training_line(trainer: pl.Trainer, pl_module: pl.LightningModule) -> str:
    """The line :class:`TrainingLine` prints (the batch and learning rates of a started training)."""
    batch = _per_device_batch(trainer)
    devices, nodes, accumulate = trainer.num_devices, trainer.num_nodes, trainer.accumulate_grad_batches
    split = (
        f"{batch} per device x {devices} device{'s' * (devices != 1)} x {nodes} node{'s' * (nodes != 1)}"
        f" x {accumulate} accumulated"
    )
    size = "unknown" if batch is None else str(batch * devices * nodes * accumulate)
    rates = [g.get("initial_lr", g["lr"]) for o in trainer.optimizers for g in o.param_groups]
    base = pl_module.hparams.get("lr", rates[0] if rates else None)
    lr = f"lr {base:g}" if isinstance(base, int | float) else "lr unknown"
    distinct = sorted(set(rates))
    if len(distinct) > 1:
        lr += " (groups " + ", ".join(f"{r:g}" for r in distinct) + ")"
    return f"{type(pl_module).__name__}: global batch {size} = {split}; {lr}"
