"""DataModules: the batch contract, hard selection, the semi-supervised mix, YAML configs, a Trainer run."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import yaml
from jsonargparse import ArgumentParser

from sal_lightning.data.datamodules import (
    MaskScorerDataModule,
    VOCClassificationDataModule,
    VOCSegmentationDataModule,
)
from sal_lightning.data.io import read_id_list, read_image, write_id_list, write_label_png, write_scores
from sal_lightning.data.scorer_data import ScorerSampleDataset, write_scorer_samples
from sal_lightning.scoring.synthesis import ScorerSample


def _check_contract(batch: dict, batch_size: int, height: int, width: int) -> None:
    assert batch["image"].shape == (batch_size, 3, height, width) and batch["image"].dtype == torch.float32
    assert batch["mask"].shape == (batch_size, height, width) and batch["mask"].dtype == torch.long
    assert batch["tags"].shape == (batch_size, 20) and batch["tags"].dtype == torch.float32
    assert batch["weight"].shape == (batch_size,) and batch["weight"].dtype == torch.float32
    assert isinstance(batch["id"], list) and len(batch["id"]) == batch_size


def test_segmentation_batches(synthetic_voc: Path) -> None:
    dm = VOCSegmentationDataModule(
        str(synthetic_voc),
        crop_size=48,
        batch_size=4,
        eval_batch_size=3,
        num_workers=0,
        predict_split="train_aug",
    )
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    _check_contract(batch, 4, 48, 48)
    assert len(dm.train_dataloader()) == 3  # 12 train_aug images, batch 4
    val = next(iter(dm.val_dataloader()))
    _check_contract(val, 3, 64, 64)
    assert val["size"].tolist() == [[64, 64]] * 3
    dm.setup("predict")
    predict = next(iter(dm.predict_dataloader()))
    assert (predict["mask"] == 255).all() and predict["id"] == [f"synth_{i:06d}" for i in range(3)]
    with pytest.raises(RuntimeError, match=r"call setup\('test'\)"):
        dm.test_dataloader()


def test_hard_selection_draws_only_selected_images(synthetic_voc: Path, tmp_path: Path) -> None:
    ids = read_id_list(synthetic_voc / "ImageSets/Segmentation/train_aug.txt")
    selected = set(ids[::3])
    write_scores(tmp_path / "scores.csv", {i: {"sf": 0.5, "weight": float(i in selected)} for i in ids})
    dm = VOCSegmentationDataModule(
        str(synthetic_voc),
        scores=str(tmp_path / "scores.csv"),
        crop_size=32,
        batch_size=2,
        num_workers=0,
    )
    dm.setup("fit")
    seen = [i for batch in dm.train_dataloader() for i in batch["id"]]
    assert sorted(seen) == sorted(selected)  # one epoch = each selected image once, no zero-weight passes
    assert all(float(w) == 1.0 for batch in dm.train_dataloader() for w in batch["weight"])


def test_semi_supervised_mix(synthetic_voc: Path, tmp_path: Path) -> None:
    ids = read_id_list(synthetic_voc / "ImageSets/Segmentation/train_aug.txt")
    for image_id in ids:  # proxies that say "background" everywhere
        write_label_png(tmp_path / "proxies" / f"{image_id}.png", np.zeros((64, 64), np.uint8))
    write_scores(tmp_path / "scores.csv", {i: {"weight": 0.25} for i in ids})
    write_id_list(tmp_path / "strong.txt", ids[:4])
    dm = VOCSegmentationDataModule(
        str(synthetic_voc),
        proxies=str(tmp_path / "proxies"),
        scores=str(tmp_path / "scores.csv"),
        strong_ids=str(tmp_path / "strong.txt"),
        crop_size=64,
        scale_range=(1.0, 1.0),
        batch_size=12,
        num_workers=0,
    )
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    for image_id, mask, weight in zip(batch["id"], batch["mask"], batch["weight"], strict=True):
        if image_id in ids[:4]:
            assert weight == 1.0 and (mask > 0).any() and (mask != 255).any()  # ground truth has objects
        else:
            assert weight == 0.25 and set(mask.unique().tolist()) <= {0, 255}


def test_classification_batches(synthetic_voc: Path) -> None:
    dm = VOCClassificationDataModule(
        str(synthetic_voc), crop_size=40, batch_size=5, num_workers=0, masks=True
    )
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    _check_contract(batch, 5, 40, 40)
    assert (batch["mask"] == 255).all() and (batch["tags"].sum(1) >= 1).all()
    val = next(iter(dm.val_dataloader()))
    assert (val["mask"] != 255).any()  # masks=True: ground truth for measuring CAM quality


def test_yaml_config_builds_the_datamodule(synthetic_voc: Path) -> None:
    config = {
        "data": {
            "root": str(synthetic_voc),
            "train_split": "train",
            "crop_size": 32,
            "scale_range": [0.75, 1.25],
            "gt_dirs": ["SegmentationClassAug"],
            "batch_size": 2,
            "num_workers": 0,
        }
    }
    parser = ArgumentParser()
    parser.add_class_arguments(VOCSegmentationDataModule, "data")
    cfg = parser.parse_string(yaml.safe_dump(config))
    dm = parser.instantiate(cfg).data
    assert isinstance(dm, VOCSegmentationDataModule)
    assert dm.scale_range == (0.75, 1.25) and dm.gt_dirs == ("SegmentationClassAug",)
    dm.setup("validate")
    assert not (next(iter(dm.val_dataloader()))["mask"] == 255).any()  # SBD-style masks: no void band


class _TinySegmenter(pl.LightningModule):
    """A 1x1-conv segmenter that checks the batch contract in a real Trainer loop."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Conv2d(3, 21, 1)
        self.seen: list[str] = []

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        _check_contract(batch, 2, 32, 32)
        ce = torch.nn.functional.cross_entropy(
            self.head(batch["image"]), batch["mask"], ignore_index=255, reduction="none"
        )
        return (ce.mean((1, 2)) * batch["weight"]).mean()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.seen += batch["id"]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_trainer_fit_with_workers(synthetic_voc: Path) -> None:
    dm = VOCSegmentationDataModule(str(synthetic_voc), crop_size=32, batch_size=2, num_workers=1)
    model = _TinySegmenter()
    trainer = pl.Trainer(
        max_steps=3,
        limit_val_batches=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 3 and model.seen[:2] == ["synth_000012", "synth_000013"]


def _scorer_samples(root: Path) -> list[ScorerSample]:
    samples = []
    for k in range(6):
        image = read_image(root / f"JPEGImages/synth_{k:06d}.jpg")
        mask = np.zeros(image.shape[:2], bool)
        mask[: 8 + 4 * k, :20] = True
        for copy in range(2):
            samples.append(
                ScorerSample(f"s{k}_{copy}", image, mask, target=k / 10, image_id=f"synth_{k:06d}")
            )
    return samples


def test_mask_scorer_data(synthetic_voc: Path, tmp_path: Path) -> None:
    samples = _scorer_samples(synthetic_voc)
    folder = write_scorer_samples(tmp_path / "samples", samples)
    in_memory = ScorerSampleDataset(samples, input_size=32)
    from_disk = ScorerSampleDataset(folder, input_size=32)
    a, b = in_memory[3], from_disk[3]
    assert torch.equal(a["mask"], b["mask"]) and a["target"].item() == pytest.approx(0.1)
    assert (a["image"] - b["image"]).abs().mean() < 0.05  # JPEG round trip
    assert a["mask"].shape == (32, 32) and a["mask"][:6, :10].eq(1).all() and a["mask"][:, 12:].eq(0).all()

    dm = MaskScorerDataModule(
        samples=str(folder), input_size=32, val_fraction=0.34, batch_size=4, num_workers=0
    )
    dm.setup("fit")
    assert dm.train_dataset is not None and dm.val_dataset is not None
    train_images = {r["image_id"] for r in dm.train_dataset.rows}
    val_images = {r["image_id"] for r in dm.val_dataset.rows}
    assert len(val_images) == 2 and not train_images & val_images  # split by source image
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32) and batch["mask"].shape == (4, 32, 32)
    assert batch["target"].shape == (4,) and batch["target"].dtype == torch.float32
    with pytest.raises(ValueError, match="duplicate sample_id 's0_0'"):
        write_scorer_samples(folder, samples[:1])

    for k in range(12):  # proxies to score: label 7 on the left half
        labels = np.zeros((64, 64), np.uint8)
        labels[:, :32] = 7
        labels[0, 40] = 255  # void is not foreground
        write_label_png(tmp_path / "proxies" / f"synth_{k:06d}.png", labels)
    dm = MaskScorerDataModule(
        root=str(synthetic_voc), proxies=str(tmp_path / "proxies"), input_size=16, num_workers=0
    )
    dm.setup("predict")
    batch = next(iter(dm.predict_dataloader()))
    assert batch["mask"].shape == (12, 16, 16) and batch["size"].tolist() == [[64, 64]] * 12
    assert batch["mask"][:, :, :8].eq(1).all() and batch["mask"][:, :, 8:].eq(0).all()
    with pytest.raises(ValueError, match="samples is needed"):
        dm.setup("fit")
