"""The fine scorer's training: the MaskScorer regression on a sample folder (a tiny real run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sal_lightning.data.scorer_data import write_scorer_samples
from sal_lightning.models.scorer import MaskScorer
from sal_lightning.scoring.synthesis import ScorerSample
from sal_lightning.stages.scorer_training import train_mask_scorer
from sal_lightning.stages.trainer import TrainerSettings


def _samples(n: int, size: int = 24) -> list[ScorerSample]:
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        mask = np.zeros((size, size), dtype=bool)
        r = int(rng.integers(3, size // 2))
        mask[:r, :r] = True
        out.append(ScorerSample(f"s{k}", image, mask, r / (size // 2), image_id=f"img{k}", kind="positive"))
    return out


def test_tiny_trainer_run_learns_and_reloads(tmp_path: Path) -> None:
    folder = write_scorer_samples(tmp_path / "samples", _samples(12))
    model = MaskScorer(arch="light", input_size=32, lr=1e-2, optimizer="adamw")
    before = [p.detach().clone() for p in model.parameters()]
    best = train_mask_scorer(
        folder,
        tmp_path / "ckpt",
        model=model,
        max_epochs=2,
        batch_size=4,
        val_fraction=0.25,
        trainer=TrainerSettings(accelerator="cpu", enable_progress_bar=False),
    )
    assert best.is_file()
    assert torch.load(best, map_location="cpu", weights_only=False)["scorer_method"] == "regression"
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    trained = model.trainer.callback_metrics
    assert {"val/loss", "val/pearson", "val/spearman", "val/mae"} <= set(trained)
    reloaded = MaskScorer.load_from_checkpoint(str(best), map_location="cpu")
    assert reloaded.hparams["input_size"] == 32 and reloaded.hparams["arch"] == "light"
    assert reloaded.hparams["optimizer"] == "adamw"
    # predict_step hands back ids and scores
    batch = {
        "image": torch.randn(2, 3, 32, 32),
        "mask": torch.ones(2, 32, 32, dtype=torch.long),
        "id": ["a", "b"],
    }
    out = reloaded.predict_step(batch, 0)
    assert out["id"] == ["a", "b"] and out["p"].shape == (2,)


def test_training_on_a_tiny_set_reduces_the_l2_loss(tmp_path: Path) -> None:
    """A real Trainer fit of the light scorer lowers Eq. 6's loss on its own (learnable) samples."""
    from sal_lightning.data.scorer_data import ScorerSampleDataset

    folder = write_scorer_samples(tmp_path / "samples", _samples(16))  # target: the square's side
    data = ScorerSampleDataset(folder, input_size=24)
    batch = {k: torch.stack([data[i][k] for i in range(len(data))]) for k in ("image", "mask", "target")}
    torch.manual_seed(0)
    model = MaskScorer(arch="light", input_size=24, lr=3e-3)

    def l2() -> float:
        with torch.no_grad():
            return F.mse_loss(model(batch["image"], batch["mask"]), batch["target"]).item()

    before = l2()
    cpu = TrainerSettings(accelerator="cpu", enable_progress_bar=False)
    train_mask_scorer(
        folder, tmp_path / "ckpt", model=model, max_epochs=15, batch_size=4, val_fraction=0.0, trainer=cpu
    )
    model.eval()
    assert l2() < 0.5 * before
