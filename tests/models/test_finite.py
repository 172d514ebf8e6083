"""Never train on NaN: DeepLab v2 trains finite from its default initialisation, and a non-finite
loss stops every LightningModule at once with one line (exit code 2 from the command line)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch

from sal_lightning import SALSegmenter, VOCSegmentationDataModule
from sal_lightning.cli import main
from sal_lightning.models import AgreementNet, CAMClassifier, MaskScorer, ProxyNet
from sal_lightning.models.finite import NonFiniteLossError
from tests.cli.test_lightning import CONFIG_DIR, tiny_overrides


class Losses(pl.Callback):
    """Records the training loss of every step."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_batch_end(self, trainer: pl.Trainer, module: Any, outputs: Any, *args: Any) -> None:
        self.values.append(float(outputs["loss"]))


def _fit(model: pl.LightningModule, voc: Path, tmp_path: Path, steps: int) -> Losses:
    data = VOCSegmentationDataModule(
        str(voc), train_split="train", crop_size=65, batch_size=2, eval_batch_size=2, num_workers=0
    )
    losses = Losses()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[losses],
    )
    trainer.fit(model, data)
    return losses


@pytest.mark.parametrize("backbone", ["deeplabv2_resnet101", "deeplabv2_caffe_resnet101"])
def test_deeplab_v2_without_weights_trains_20_finite_steps(
    backbone: str, synthetic_voc: Path, tmp_path: Path
) -> None:
    """The real ResNet-101 depth at 65 x 65 crops: batch norm trains (no statistics to freeze)."""
    torch.manual_seed(0)
    model = SALSegmenter(backbone=backbone, encoder_weights=None, lr=1e-3, test_scales=(1.0,))
    assert not model.net.frozen_bn
    losses = _fit(model, synthetic_voc, tmp_path, steps=20)
    assert len(losses.values) == 20
    assert all(torch.isfinite(torch.tensor(losses.values))), losses.values
    assert max(losses.values) < 100  # no explosion either (frozen, the first loss was ~5e4)


def test_frozen_batch_norm_without_weights_stops_with_its_cause(synthetic_voc: Path, tmp_path: Path) -> None:
    """The configuration that used to train on NaN: torchvision's ResNet-101, frozen, no weights."""
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="freeze_bn: deeplabv2_resnet101 loads no weights"):
        model = SALSegmenter(
            backbone="deeplabv2_resnet101", backbone_kwargs={"freeze_bn": True}, lr=1e-3, test_scales=(1.0,)
        )
    with pytest.raises(NonFiniteLossError) as info:
        _fit(model, synthetic_voc, tmp_path, steps=20)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("SALSegmenter: training stopped at global step ")
    assert "L_sel (selection loss, Eq. 13) is" in message or "L_atten" in message
    assert "likely cause:" in message


def test_a_diverging_fit_exits_2_with_one_line(
    synthetic_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(CONFIG_DIR / "synthetic_tiny.yaml")
    args = [
        "fit",
        "--config",
        config,
        *tiny_overrides(synthetic_voc, tmp_path),
        "--model.init_args.lr=1.0e+30",
    ]
    assert main(args) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, errors
    line = errors[0]
    assert line.startswith("sal-lightning fit: error: SALSegmenter: training stopped at global step 1: ")
    assert "L_sel (selection loss, Eq. 13) is nan" in line
    assert "likely cause:" in line and "lower the learning rate (lr=1e+30)" in line


def _nan_image(shape: tuple[int, ...]) -> torch.Tensor:
    image = torch.randn(*shape)
    image[0, 0, 0, 0] = float("nan")
    return image


@pytest.mark.parametrize("kind", ["cam", "proxy", "scorer", "agreement", "segmenter"])
def test_every_module_names_its_term(kind: str) -> None:
    tags = torch.zeros(2, 20)
    tags[:, 3] = 1
    mask = torch.zeros(2, 33, 33, dtype=torch.long)
    batch = {"image": _nan_image((2, 3, 33, 33)), "mask": mask, "tags": tags, "weight": torch.ones(2)}
    if kind == "cam":
        module: Any = CAMClassifier(backbone="deeplabv3_resnet18", backbone_kwargs={"encoder_depth": 3})
        term = "CAM (multi-label soft margin)"
    elif kind == "proxy":
        module = ProxyNet(
            backbone="deeplabv2_resnet18", backbone_kwargs={"encoder_depth": 3}, constrain_weight=0
        )
        term = "seed (SEC / DSRG seed loss)"
    elif kind == "scorer":
        module = MaskScorer(arch="light", input_size=16)
        batch = {"image": _nan_image((2, 3, 16, 16)), "mask": torch.ones(2, 16, 16), "target": torch.ones(2)}
        term = "scorer (l2 loss, Eq. 6)"
    elif kind == "agreement":
        module = AgreementNet(input_size=32)
        batch = {"image": _nan_image((2, 3, 32, 32)), "mask": torch.zeros(2, 32, 32, dtype=torch.long)}
        term = "agreement (cross-entropy)"
    else:
        module = SALSegmenter(backbone="deeplabv2_resnet18", backbone_kwargs={"encoder_depth": 3})
        term = "L_sel (selection loss, Eq. 13)"
    with pytest.raises(NonFiniteLossError, match=r"global step 0: (.*) is nan") as info:
        module.train().training_step(batch, 0)
    assert term in str(info.value)
    assert "likely cause: the batch's images hold NaN or inf values" in str(info.value)
