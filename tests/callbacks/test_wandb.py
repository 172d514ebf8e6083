"""Weights & Biases through LightningCLI, offline: the run directory holds what was logged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import wandb
import yaml
from PIL import Image
from wandb.proto import wandb_internal_pb2 as pb

from sal_lightning.cli import main

ROOT = Path(__file__).resolve().parents[2]


def read_wandb_records(path: Path) -> list[pb.Record]:
    """Records of an offline ``run-*.wandb`` file: a 7-byte header, then a LevelDB-style block log."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    pos, block, pending, chunks = 7, 32768, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 1:  # full record
            chunks.append(chunk)
        elif kind == 2:  # first
            pending = chunk
        elif kind == 3:  # middle
            pending += chunk
        elif kind == 4:  # last
            chunks.append(pending + chunk)
        elif kind == 0 and length == 0:
            break
    return [pb.Record.FromString(c) for c in chunks]


def test_offline_run_holds_config_losses_miou_table_and_masks(
    synthetic_voc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    config = str(ROOT / "examples" / "configs" / "synthetic_tiny.yaml")
    code = main(
        [
            "fit",
            "--config",
            config,
            f"--data.init_args.root={synthetic_voc}",
            "--data.init_args.crop_size=32",
            "--data.init_args.batch_size=4",
            "--data.init_args.eval_batch_size=3",
            "--model.init_args.backbone_kwargs={encoder_depth: 3, decoder_channels: 8}",
            "--trainer.max_steps=2",
            "--trainer.limit_train_batches=2",
            "--trainer.check_val_every_n_epoch=1",
            "--trainer.log_every_n_steps=1",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.logger=lightning.pytorch.loggers.WandbLogger",
            f"--trainer.logger.save_dir={tmp_path}",
            "--trainer.logger.offline=true",
            "--trainer.logger.project=sal-lightning-test",
            "--trainer.callbacks+=sal_lightning.callbacks.WandbSegmentationImages",
            "--trainer.callbacks.num_images=2",
        ]
    )
    assert code == 0
    wandb.finish()  # the command line's process exit would do this; flushes the run's log
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    files = run_dir / "files"

    # the resolved config, as the run's config and as a file
    saved = yaml.safe_load((files / "config.lightning.yaml").read_text())
    assert saved["model"]["init_args"]["lambda_atten"] == 2.0
    records = read_wandb_records(next(run_dir.glob("run-*.wandb")))
    config_items = {i.key: i.value_json for r in records if r.HasField("config") for i in r.config.update}
    logged_config = json.loads(config_items["config"])
    assert logged_config["model"]["class_path"].endswith("SALSegmenter")
    assert logged_config["trainer"]["max_steps"] == 2

    # losses, mIoU, per-class IoU, images and the table in the history
    keys = {i.key or "/".join(i.nested_key) for r in records if r.HasField("history") for i in r.history.item}
    for key in ("train/loss", "train/loss_sel", "train/loss_atten", "val/mIoU", "val/iou/background"):
        assert key in keys, key
    for media in ("val/images/", "val/class_iou/"):  # media items are logged as nested dicts
        assert any(key.startswith(media) for key in keys), media

    # two validation images, each with prediction and ground-truth masks (files named by content)
    logged = {
        i.key or "/".join(i.nested_key): json.loads(i.value_json)
        for r in records
        if r.HasField("history")
        for i in r.history.item
    }
    assert logged["val/images/count"] == 2 and len(logged["val/images/filenames"]) == 2
    for name in logged["val/images/filenames"]:
        assert Image.open(files / name).size == (64, 64)
    for masks in logged["val/images/all_masks"]:
        assert set(masks) == {"prediction", "ground_truth"}
        for mask in masks.values():
            assert np.asarray(Image.open(files / mask["path"])).shape == (64, 64)

    # the per-class IoU table: 21 VOC classes
    (table_file,) = (files / "media" / "table" / "val").glob("class_iou_*.table.json")
    table = json.loads(table_file.read_text())
    assert table["columns"] == ["class", "iou"]
    assert [row[0] for row in table["data"]][:2] == ["background", "aeroplane"] and len(table["data"]) == 21
