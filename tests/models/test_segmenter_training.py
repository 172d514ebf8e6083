"""SALSegmenter through the real Trainer on synthetic VOC data: poly schedule, metrics, test, predict."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from sal_lightning import SALSegmenter, VOCSegmentationDataModule
from sal_lightning.callbacks import SegmentationPredictionWriter
from sal_lightning.data.io import read_label_png
from sal_lightning.models.metrics import iou_from_confusion


class LearningRates(pl.Callback):
    """Records every group's learning rate at the start of each training batch."""

    def __init__(self) -> None:
        self.seen: list[list[float]] = []

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self.seen.append([g["lr"] for g in trainer.optimizers[0].param_groups])


def trainer(tmp_path: Path, **kwargs: Any) -> pl.Trainer:
    options: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "default_root_dir": tmp_path,
    }
    return pl.Trainer(**{**options, **kwargs})


def test_fit_validate_test_predict(synthetic_voc: Path, tmp_path: Path) -> None:
    data = VOCSegmentationDataModule(
        str(synthetic_voc), train_split="train", crop_size=48, batch_size=4, eval_batch_size=4, num_workers=0
    )
    model = SALSegmenter(
        backbone="deeplabv3_resnet18",
        backbone_kwargs={"encoder_depth": 3, "decoder_channels": 16},
        lr=1e-3,
        test_scales=(0.5, 1.0),
    )
    rates = LearningRates()
    writer = SegmentationPredictionWriter(tmp_path / "pred")
    run = trainer(tmp_path, max_steps=3, check_val_every_n_epoch=5, callbacks=[rates, writer])
    run.fit(model, data)

    # poly schedule stepped per iteration, 10x / 20x for the new layers
    names = [g["name"] for g in run.optimizers[0].param_groups]
    assert names == ["backbone_weight", "backbone_bias", "head_weight", "head_bias"]
    factors = [(1 - k / 3) ** 0.9 for k in range(3)]
    expected = [[1e-3 * f, 1e-3 * f, 1e-2 * f, 2e-2 * f] for f in factors]
    np.testing.assert_allclose(rates.seen, expected, rtol=1e-6)

    # validation mIoU = the mean over defined classes of the logged per-class IoUs
    metrics = run.validate(model, data, verbose=False)[0]
    per_class = [v for k, v in metrics.items() if k.startswith("val/iou/")]
    assert per_class and metrics["val/mIoU"] == pytest.approx(float(np.mean(per_class)), abs=1e-6)
    assert set(model.class_iou) == set(model.class_names)

    # test: full inference, scored on the 6 val images at their own sizes
    test = run.test(model, data, verbose=False)[0]
    assert 0.0 <= test["test/mIoU"] <= 1.0

    # predict: one palette PNG per val id, at the image's size, labels in 0..20
    run.predict(model, data, return_predictions=False)
    val_ids = (synthetic_voc / "ImageSets" / "Segmentation" / "val.txt").read_text().split()
    assert sorted(writer.written_ids) == sorted(val_ids)
    for image_id in val_ids:
        labels = read_label_png(tmp_path / "pred" / f"{image_id}.png")
        assert labels.shape == (64, 64) and labels.max() <= 20

    # inference options are not fixed by the checkpoint; the trained settings are
    run.save_checkpoint(tmp_path / "model.ckpt")
    assert "test_scales" not in model.hparams and model.hparams["lambda_atten"] == 2.0
    loaded = SALSegmenter.load_from_checkpoint(tmp_path / "model.ckpt", crf=True, test_scales=(1.0,))
    assert (loaded.crf, loaded.test_scales, loaded.hparams["lr"]) == (True, (1.0,), 1e-3)
    assert SALSegmenter.load_from_checkpoint(tmp_path / "model.ckpt").test_scales == (0.5, 0.75, 1.0)


def test_poly_horizon_from_epochs_when_max_steps_is_unset(synthetic_voc: Path, tmp_path: Path) -> None:
    data = VOCSegmentationDataModule(
        str(synthetic_voc), train_split="train", crop_size=32, batch_size=6, num_workers=0
    )
    model = SALSegmenter(
        backbone="deeplabv3_resnet18", backbone_kwargs={"encoder_depth": 3, "decoder_channels": 8}
    )
    rates = LearningRates()
    run = trainer(tmp_path, max_epochs=1, limit_val_batches=0, callbacks=[rates])
    run.fit(model, data)
    # 12 training images in batches of 6: 2 steps in the epoch, so the factors are (1 - k/2)^0.9
    assert [r[0] for r in rates.seen] == pytest.approx([1e-3, 1e-3 * 0.5**0.9])


def test_writer_resolves_futures_in_order_and_refuses_repeats(tmp_path: Path) -> None:
    writer = SegmentationPredictionWriter(tmp_path / "out")
    writer.on_predict_start(None, None)  # type: ignore[arg-type]
    late: Future[np.ndarray] = Future()
    ready = torch.full((5, 7), 3, dtype=torch.uint8)
    writer.write_on_batch_end(None, None, {"id": ["a", "b"], "labels": [late, ready]}, None, None, 0, 0)  # type: ignore[arg-type]
    assert writer.written_ids == []  # "b" waits behind the unfinished "a": order is kept
    late.set_result(np.full((4, 6), 15, dtype=np.uint8))
    writer.on_predict_epoch_end(None, None)  # type: ignore[arg-type]
    assert writer.written_ids == ["a", "b"]
    assert read_label_png(tmp_path / "out" / "a.png").tolist() == np.full((4, 6), 15).tolist()
    assert read_label_png(tmp_path / "out" / "b.png").shape == (5, 7)
    with pytest.raises(ValueError, match="'a' predicted twice"):
        writer.write_on_batch_end(None, None, {"id": ["a"], "labels": [ready]}, None, None, 1, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid image id"):
        writer.write_on_batch_end(None, None, {"id": ["../x"], "labels": [ready]}, None, None, 2, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'id'"):
        writer.write_on_batch_end(None, None, [ready], None, None, 3, 0)  # type: ignore[arg-type]


def test_iou_of_a_perfect_prediction_is_one() -> None:
    confmat = torch.diag(torch.tensor([5, 0, 7]))
    assert iou_from_confusion(confmat)[[0, 2]].tolist() == [1.0, 1.0]
