"""MaskScorer: the nine-layer layout, the output range, the l2 loss and a real (tiny) Trainer run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sal_lightning.data.scorer_data import ScorerSample, write_scorer_samples
from sal_lightning.models.scorer import ConvGDN, MaskScorer, MaskScorerNet, ResidualBlock
from sal_lightning.nn import GDN


def test_table_one_layout_and_shapes_at_256() -> None:
    net = MaskScorerNet()
    layers = [*net.features, net.fc1, net.fc2]
    assert len(layers) == 9
    kinds = [type(m) for m in layers]
    assert kinds == [
        ConvGDN,
        ConvGDN,
        ResidualBlock,
        ConvGDN,
        ResidualBlock,
        ConvGDN,
        ResidualBlock,
        nn.Linear,
        nn.Linear,
    ]
    shapes = []
    x = net.stack_input(torch.zeros(2, 3, 256, 256), torch.zeros(2, 256, 256, dtype=torch.long))
    assert x.shape == (2, 4, 256, 256)
    for layer in net.features:
        x = layer(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes == [
        (32, 128, 128),
        (64, 64, 64),
        (64, 64, 64),
        (128, 32, 32),
        (128, 32, 32),
        (256, 16, 16),
        (256, 16, 16),
    ]
    # every strided conv carries a GDN over its own channels; 3x3 kernels throughout
    for layer, width in zip([net.features[i] for i in (0, 1, 3, 5)], (32, 64, 128, 256), strict=True):
        assert isinstance(layer.gdn, GDN) and layer.conv.kernel_size == (3, 3) and layer.conv.stride == (2, 2)
        assert layer.conv.out_channels == width
    assert net.features[0].conv.in_channels == 4
    assert (net.fc1.in_features, net.fc1.out_features, net.fc2.out_features) == (256 * 16, 256, 1)


def test_output_in_unit_interval_and_mask_matters() -> None:
    torch.manual_seed(0)
    model = MaskScorer(input_size=32, widths=(4, 8, 8, 8), hidden=8)
    image = torch.randn(3, 3, 32, 32)
    empty = torch.zeros(3, 32, 32, dtype=torch.long)
    full = torch.ones(3, 32, 32, dtype=torch.long)
    p0, p1 = model(image, empty), model(image, full)
    assert p0.shape == (3,) and ((p0 > 0) & (p0 < 1)).all()
    assert not torch.allclose(p0, p1)  # the mask channel reaches the output


def test_l2_loss_is_mse_of_the_sigmoid_output() -> None:
    torch.manual_seed(0)
    model = MaskScorer(input_size=16, widths=(2, 2, 2, 2), hidden=4)
    batch = {
        "image": torch.randn(4, 3, 16, 16),
        "mask": (torch.rand(4, 16, 16) > 0.5).long(),
        "target": torch.tensor([0.1, 0.5, 0.9, 1.0]),
    }
    loss, pred, _ = model._loss(batch)
    assert torch.allclose(loss, ((pred - batch["target"]) ** 2).mean())
    assert torch.allclose(loss, F.mse_loss(model(batch["image"], batch["mask"]), batch["target"]))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="optimizer"):
        MaskScorer(optimizer="rmsprop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="widths"):
        MaskScorerNet(widths=(4, 8, 8))
    net = MaskScorerNet(widths=(2, 2, 2, 2), hidden=2)
    with pytest.raises(ValueError, match="mask"):
        net(torch.zeros(1, 3, 16, 16), torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="image"):
        net(torch.zeros(1, 4, 16, 16), torch.zeros(1, 16, 16))


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
    from sal_lightning.scoring.stages import train_mask_scorer

    folder = write_scorer_samples(tmp_path / "samples", _samples(12))
    model = MaskScorer(input_size=32, widths=(4, 4, 8, 8), hidden=8, lr=1e-2, optimizer="adamw")
    before = [p.detach().clone() for p in model.parameters()]
    best = train_mask_scorer(
        folder,
        tmp_path / "ckpt",
        model,
        max_epochs=2,
        batch_size=4,
        val_fraction=0.25,
        progress=False,
        trainer_kwargs={"accelerator": "cpu"},
    )
    assert best.is_file()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    trained = model.trainer.callback_metrics
    assert {"val/loss", "val/pearson", "val/spearman", "val/mae"} <= set(trained)
    reloaded = MaskScorer.load_from_checkpoint(str(best), map_location="cpu")
    assert reloaded.hparams["input_size"] == 32 and tuple(reloaded.hparams["widths"]) == (4, 4, 8, 8)
    assert reloaded.hparams["optimizer"] == "adamw"
    # predict_step hands back ids and scores
    batch = {
        "image": torch.randn(2, 3, 32, 32),
        "mask": torch.ones(2, 32, 32, dtype=torch.long),
        "id": ["a", "b"],
    }
    out = reloaded.predict_step(batch, 0)
    assert out["id"] == ["a", "b"] and out["p"].shape == (2,)


def test_optimizer_choice() -> None:
    model = MaskScorer(input_size=16, widths=(2, 2, 2, 2), hidden=2, optimizer="sgd", lr=0.5, momentum=0.8)
    opt = model.configure_optimizers()
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["lr"] == 0.5 and opt.defaults["momentum"] == 0.8
    assert isinstance(MaskScorer(input_size=16).configure_optimizers(), torch.optim.Adam)
    assert MaskScorer(input_size=16).hparams["lr"] == 1e-5  # the paper's default


def test_top_level_export() -> None:
    import sal_lightning

    assert sal_lightning.MaskScorer is MaskScorer
    assert "MaskScorer" in dir(sal_lightning)
