"""Progress lines: what runs, the step, the rate and the time left, as lines a log file reads well."""

from __future__ import annotations

import io
import re

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from sal_lightning._console import step_label
from sal_lightning.callbacks import progress
from sal_lightning.callbacks.progress import ProgressLines


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.save_hyperparameters({"backbone": "linear"})
        self.layer = torch.nn.Linear(3, 1)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])

    def predict_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.layer(batch[0])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _run(lines: ProgressLines, steps: int = 6, predict: bool = False) -> None:
    data = DataLoader(TensorDataset(torch.randn(8, 3), torch.randn(8, 1)), batch_size=2)
    trainer = pl.Trainer(
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[lines],
        accelerator="cpu",
    )
    model = Tiny()
    trainer.fit(model, data)
    if predict:
        trainer.predict(model, data, return_predictions=False)


def test_a_log_file_gets_a_line_per_interval_and_one_at_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()  # not a terminal
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.0)
    with step_label("[ 9/13] retrain-P4"):
        _run(ProgressLines("seed 1", stream=stream), steps=6, predict=True)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    name = "[ 9/13] retrain-P4: Tiny (linear), seed 1"
    assert lines[0].startswith(f"{name}: step 1/6, ") and re.search(r"steps/s, ETA \S+ s$", lines[0])
    assert [line.split(", ")[1].split(":")[1].strip() for line in lines[:6]] == [
        f"step {k}/6" for k in range(1, 7)
    ]
    assert re.fullmatch(rf"{re.escape(name)}: 6 steps in \S+ s", lines[6])
    assert lines[7].startswith(f"{name}: batch 1/4, ") and lines[-1].startswith(f"{name}: 4 batches in ")


def test_a_short_loop_prints_its_last_line_only() -> None:
    stream = io.StringIO()
    _run(ProgressLines(stream=stream), steps=3)
    assert re.fullmatch(r"Tiny \(linear\): 3 steps in \S+ s\n", stream.getvalue())
