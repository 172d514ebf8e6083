"""A third scorer registered in one place (:func:`register_scorer`) trains, is read back from its
checkpoint by the method the checkpoint names, and scores a folder: as a stage function and on the
command line."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch

from sal_lightning.cli.main import main
from sal_lightning.data.io import read_label_png, read_scores, write_scores
from sal_lightning.data.layout import read_split
from sal_lightning.stages.corrupt import make_corrupted_proxies
from sal_lightning.stages.fine import score_fine
from sal_lightning.stages.references import build_references
from sal_lightning.stages.scorer import (
    SCORERS,
    Scorer,
    ScorerSettings,
    load_scorer,
    register_scorer,
    train_scorer,
)
from sal_lightning.stages.scorer_training import ScorerTraining, fit_scorer
from sal_lightning.stages.trainer import TrainerSettings

CPU = TrainerSettings(accelerator="cpu", enable_progress_bar=False)


class CoverageScorer(L.LightningModule):
    """P = ``gain`` x the share of the image the proxy covers, clipped to [0, 1]; ``gain`` is
    trained towards 1 (a real fit with one parameter)."""

    def __init__(self, input_size: int = 16, gain: float = 2.0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.gain = torch.nn.Parameter(torch.tensor(float(gain)))

    def _coverage(self, batch: dict[str, Any]) -> torch.Tensor:
        return batch["mask"].float().mean(dim=(1, 2))

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        coverage = self._coverage(batch)
        return ((self.gain * coverage - coverage) ** 2).mean()

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        return {"id": list(batch["id"]), "p": (self.gain * self._coverage(batch)).clamp(0, 1).detach()}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=5.0)


def train_coverage(job: ScorerTraining) -> tuple[Path, int]:
    """The training function the registry holds: the library's datasets, loader and fit."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from sal_lightning.data.datamodules import make_loader
    from sal_lightning.data.proxy_data import ProxyMaskDataset

    model = job.network()
    dataset = ProxyMaskDataset(job.root, job.ids, job.proxies, int(model.hparams["input_size"]))
    checkpoint = ModelCheckpoint(dirpath=str(job.checkpoints), save_last=True, save_top_k=0)
    loader = make_loader(dataset, job.batch_size, train=True)
    fit_scorer(
        model, loader, checkpoint=checkpoint, method=job.method, epochs=job.epochs, trainer=job.trainer
    )
    return Path(checkpoint.last_model_path), len(job.ids)


@pytest.fixture
def coverage_scorer() -> Iterator[str]:
    register_scorer("coverage", Scorer(f"{__name__}:CoverageScorer", 3, 4, train_coverage))
    yield "coverage"
    del SCORERS["coverage"]


def test_a_registered_scorer_trains_loads_and_scores(
    coverage_scorer: str, synthetic_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = read_split(synthetic_voc, "train")[:6]
    proxies, refs = tmp_path / "proxies", tmp_path / "refs"
    make_corrupted_proxies(synthetic_voc, proxies, split=ids, seed=3, progress=False)
    build_references(synthetic_voc, refs, split=ids, saliency=synthetic_voc / "saliency", progress=False)
    settings = ScorerSettings(method=coverage_scorer, model={"input_size": 16})
    assert settings.epochs == 3 and settings.batch == 4 and settings.network is CoverageScorer
    with pytest.raises(ValueError, match="CoverageScorer takes"):
        ScorerSettings(method=coverage_scorer, model={"width": 3})

    best, samples = train_scorer(
        synthetic_voc,
        proxies,
        references=refs,
        workdir=tmp_path / "scorer",
        split=ids,
        settings=settings,
        trainer=CPU,
    )
    assert samples == len(ids) and best.parent == tmp_path / "scorer" / "checkpoints"
    assert torch.load(best, map_location="cpu", weights_only=False)["scorer_method"] == "coverage"
    model = load_scorer(best)
    gain = model.gain.item()
    assert isinstance(model, CoverageScorer) and 1.0 <= gain < 2.0  # trained towards 1

    write_scores(tmp_path / "scores.csv", {i: {"cd": 0.5} for i in ids})  # as if coarse-scored
    rows = score_fine(
        synthetic_voc, proxies, checkpoint=best, scores=tmp_path / "scores.csv", split=ids, trainer=CPU
    )
    for image_id in ids:  # coverage at the scorer's 16 x 16 input, against the PNG's own share
        share = float((read_label_png(proxies / f"{image_id}.png") > 0).mean())
        assert rows[image_id]["p"] == pytest.approx(min(1.0, gain * share), abs=0.08)
        assert rows[image_id]["sf"] == pytest.approx(0.5 * rows[image_id]["p"])

    write_scores(tmp_path / "cli.csv", {i: {"cd": 1.0} for i in ids})
    argv = [
        "score",
        "fine",
        "--root",
        str(synthetic_voc),
        "--proxies",
        str(proxies),
        "--checkpoint",
        str(best),
    ]
    assert main([*argv, "--scores", str(tmp_path / "cli.csv"), "--trainer.accelerator", "cpu"]) == 0
    cli = read_scores(tmp_path / "cli.csv")
    assert all(cli[i]["sf"] == pytest.approx(rows[i]["p"], abs=1e-6) for i in ids)
    assert "fine scores of 6 proxies" in capsys.readouterr().out
    assert not any(math.isnan(r["p"]) for r in cli.values()) and np.isfinite(gain)


def test_a_method_is_known_once_registered() -> None:
    from sal_lightning.scoring.synthesis import SynthesisSettings

    with pytest.raises(
        ValueError, match=r"method: expected one of \['agreement', 'regression'\], got 'coverage'"
    ):
        ScorerSettings(method="coverage")
    scorer = Scorer(f"{__name__}:CoverageScorer", 3, 4, train_coverage)
    register_scorer("coverage", scorer)
    try:
        assert ScorerSettings(method="coverage").scorer is scorer
        register_scorer("coverage", scorer)  # the same again: nothing changes
        with pytest.raises(ValueError, match="'regression' is registered already"):
            register_scorer("regression", scorer)
        with pytest.raises(ValueError, match="synthesis: method 'coverage' synthesises no training set"):
            ScorerSettings(method="coverage", synthesis=SynthesisSettings(seed=1))
    finally:
        del SCORERS["coverage"]
