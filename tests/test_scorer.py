"""MaskScorer: the nine-layer layout, the output range, the l2 loss and a real (tiny) Trainer run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sal_lightning.data.scorer_data import ScorerSample, write_scorer_samples
from sal_lightning.models.scorer import MaskScorer
from sal_lightning.nn import GDN
from sal_lightning.nn.mask_scorer import ARCHITECTURES, MaskScorerNet, ResidualBlock

#: Table I of the paper, transcribed by hand: module, stride, (in, out) channels, activation, output
TABLE_ONE = [
    ("conv", 1, (4, 128), "ReLU", (128, 256, 256)),
    ("resb", 1, (128, 192), "GDN", (192, 256, 256)),
    ("conv", 2, (192, 192), "ReLU", (192, 128, 128)),
    ("resb", 1, (192, 192), "GDN", (192, 128, 128)),
    ("conv", 2, (192, 192), "ReLU", (192, 64, 64)),
    ("resb", 1, (192, 192), "GDN", (192, 64, 64)),
    ("conv", 2, (192, 192), "ReLU", (192, 32, 32)),
    ("fc", 1, (192, 128), "GDN", (128,)),
    ("fc", 1, (128, 1), "ReLU", (1,)),
]


def _describe(layer: nn.Module) -> tuple[str, int, tuple[int, int]]:
    if isinstance(layer, nn.Conv2d):
        assert layer.kernel_size == (3, 3)
        return "conv", layer.stride[0], (layer.in_channels, layer.out_channels)
    if isinstance(layer, ResidualBlock):
        assert layer.conv1.stride == (1, 1) and layer.conv2.stride == (1, 1)
        assert layer.conv1.kernel_size == (3, 3) and layer.conv2.kernel_size == (3, 3)
        return "resb", 1, (layer.conv1.in_channels, layer.conv2.out_channels)
    assert isinstance(layer, nn.Linear)
    return "fc", 1, (layer.in_features, layer.out_features)


def test_table_one_layer_list_and_shapes_at_256() -> None:
    net = MaskScorerNet()  # the default is the paper's table
    assert len(net.layers) == len(net.activations) == 9
    for k, (layer, act, row) in enumerate(zip(net.layers, net.activations, TABLE_ONE, strict=True)):
        module, stride, channels, activation, _ = row
        assert _describe(layer) == (module, stride, channels), f"layer {k + 1}"
        assert ("GDN" if isinstance(act, GDN) else "ReLU" if isinstance(act, nn.ReLU) else "?") == activation
    # outputs at a 256 x 256 input, layer by layer (hooks on the activations)
    shapes: list[tuple[int, ...]] = []
    hooks = [
        a.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:]))) for a in net.activations
    ]
    with torch.no_grad():
        out = net(torch.zeros(1, 4, 256, 256))
    for h in hooks:
        h.remove()
    assert out.shape == (1,)
    assert shapes[:7] == [row[4] for row in TABLE_ONE[:7]]
    assert shapes[7] == (128, 1, 1) and shapes[8] == (1,)  # GDN on the 128-vector as on a 1 x 1 map


def test_residual_blocks_project_only_where_the_width_changes() -> None:
    net = MaskScorerNet()
    assert isinstance(net.layers[1].shortcut, nn.Conv2d) and net.layers[1].shortcut.kernel_size == (1, 1)
    for k in (3, 5):
        assert isinstance(net.layers[k].shortcut, nn.Identity)
    block = ResidualBlock(3, 3)
    x = torch.randn(2, 3, 8, 8)
    expected = x + block.conv2(torch.relu(block.conv1(x)))
    assert torch.allclose(block(x), expected)


def test_light_variant_has_the_same_layout_at_smaller_widths() -> None:
    light, table = MaskScorerNet("light"), MaskScorerNet("table1")
    assert [type(m) for m in light.layers] == [type(m) for m in table.layers]
    assert [type(m) for m in light.activations] == [type(m) for m in table.activations]
    stem, body, hidden = ARCHITECTURES["light"]
    assert _describe(light.layers[0])[2] == (4, stem) and _describe(light.layers[7])[2] == (body, hidden)
    assert sum(p.numel() for p in light.parameters()) < sum(p.numel() for p in table.parameters()) / 20


def test_score_is_clipped_to_the_unit_interval_and_mask_matters() -> None:
    torch.manual_seed(0)
    net = MaskScorerNet("light")
    image = torch.randn(3, 3, 32, 32)
    empty, full = torch.zeros(3, 32, 32, dtype=torch.long), torch.ones(3, 32, 32, dtype=torch.long)
    assert torch.allclose(net(net.stack_input(image, empty)), torch.full((3,), 0.5), atol=0.2)  # bias 0.5
    with torch.no_grad():
        net.layers[8].bias.fill_(3.0)
    p = net.score(image, empty)
    assert p.shape == (3,) and torch.equal(p, torch.ones(3))
    with torch.no_grad():
        net.layers[8].bias.fill_(0.5)
    assert not torch.allclose(net.score(image, empty), net.score(image, full))  # the mask reaches the output


def test_l2_loss_is_mse_of_the_raw_output() -> None:
    torch.manual_seed(0)
    model = MaskScorer(arch="light", input_size=16)
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
    with pytest.raises(ValueError, match="arch"):
        MaskScorerNet("huge")  # type: ignore[arg-type]
    net = MaskScorerNet("light")
    with pytest.raises(ValueError, match="mask"):
        net.score(torch.zeros(1, 3, 16, 16), torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="image"):
        net.score(torch.zeros(1, 4, 16, 16), torch.zeros(1, 16, 16))
    with pytest.raises(ValueError, match="x"):
        net(torch.zeros(1, 3, 16, 16))


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
    model = MaskScorer(arch="light", input_size=32, lr=1e-2, optimizer="adamw")
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


def test_optimizer_choice() -> None:
    model = MaskScorer(arch="light", input_size=16, optimizer="sgd", lr=0.5, momentum=0.8)
    opt = model.configure_optimizers()
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["lr"] == 0.5 and opt.defaults["momentum"] == 0.8
    assert isinstance(MaskScorer(input_size=16).configure_optimizers(), torch.optim.Adam)
    assert MaskScorer(input_size=16).hparams["lr"] == 1e-5  # the paper's default


def test_top_level_export() -> None:
    import sal_lightning

    assert sal_lightning.MaskScorer is MaskScorer
    assert "MaskScorer" in dir(sal_lightning)


def test_training_on_a_tiny_set_reduces_the_l2_loss(tmp_path: Path) -> None:
    """A real Trainer fit of the light scorer lowers Eq. 6's loss on its own (learnable) samples."""
    from sal_lightning.data.scorer_data import ScorerSampleDataset
    from sal_lightning.scoring.stages import train_mask_scorer

    folder = write_scorer_samples(tmp_path / "samples", _samples(16))  # target: the square's side
    data = ScorerSampleDataset(folder, input_size=24)
    batch = {k: torch.stack([data[i][k] for i in range(len(data))]) for k in ("image", "mask", "target")}
    torch.manual_seed(0)
    model = MaskScorer(arch="light", input_size=24, lr=3e-3)

    def l2() -> float:
        with torch.no_grad():
            return F.mse_loss(model(batch["image"], batch["mask"]), batch["target"]).item()

    before = l2()
    train_mask_scorer(
        folder, tmp_path / "ckpt", model, max_epochs=15, batch_size=4, val_fraction=0.0, progress=False,
        trainer_kwargs={"accelerator": "cpu"},
    )  # fmt: skip
    model.eval()
    assert l2() < 0.5 * before
