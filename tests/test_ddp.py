"""Two DDP processes on the CPU (gloo) through the real Trainer: training, validation mIoU, predictions.

The DDP run happens in a subprocess running a small script (Lightning's DDP launcher starts the
second rank by re-running that script), so pytest itself is never forked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest

from sal_lightning import SALSegmenter, VOCSegmentationDataModule

SCRIPT = """
import json, sys
from pathlib import Path

import lightning.pytorch as pl
import torch

from sal_lightning import SALSegmenter, VOCSegmentationDataModule
from sal_lightning.callbacks import SegmentationPredictionWriter


def main(voc: str, out: Path) -> None:
    pl.seed_everything(0)
    data = VOCSegmentationDataModule(
        voc, train_split="train", crop_size=32, batch_size=2, eval_batch_size=2, num_workers=0
    )
    model = SALSegmenter(
        backbone="deeplabv3_resnet18",
        backbone_kwargs={"encoder_depth": 3, "decoder_channels": 8},
        test_scales=(1.0,),
        test_flip=False,
    )
    writer = SegmentationPredictionWriter(out / "pred")
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", max_steps=2, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, callbacks=[writer], default_root_dir=out,
    )
    trainer.fit(model, data)
    torch.manual_seed(1)  # the same on both ranks: a noisy head, so predictions vary between classes
    torch.nn.init.normal_(model.net.segmentation_head[0].weight, std=3.0)
    metrics = trainer.validate(model, data, verbose=False)[0]
    trainer.save_checkpoint(out / "model.ckpt")
    trainer.predict(model, data, return_predictions=False)
    report = {"world_size": trainer.world_size, "val_miou": metrics["val/mIoU"]}
    report["written"] = writer.written_ids
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
"""


def test_two_process_ddp_matches_single_process(synthetic_voc: Path, tmp_path: Path) -> None:
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, str(script), str(synthetic_voc), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in reports] == [2, 2]

    # prediction: the 6 val ids split over the ranks, each written exactly once
    val_ids = (synthetic_voc / "ImageSets" / "Segmentation" / "val.txt").read_text().split()
    written = reports[0]["written"] + reports[1]["written"]
    assert sorted(written) == sorted(val_ids) and reports[0]["written"] and reports[1]["written"]
    assert sorted(p.stem for p in (tmp_path / "pred").glob("*.png")) == sorted(val_ids)

    # validation: 6 images over 2 ranks (3 each, no padding); the synced confusion matrix gives the
    # same mIoU on every rank and the same as one process with the trained weights
    assert reports[0]["val_miou"] == reports[1]["val_miou"]
    model = SALSegmenter.load_from_checkpoint(tmp_path / "model.ckpt")
    single = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)

    def val_miou(split: str) -> float:
        data = VOCSegmentationDataModule(
            str(synthetic_voc), val_split=split, eval_batch_size=2, num_workers=0
        )
        return single.validate(model, data, verbose=False)[0]["val/mIoU"]

    assert val_miou("val") == pytest.approx(reports[0]["val_miou"], abs=1e-6)
    # each rank alone saw half of the images (the same shards as in predict): their own mIoUs differ
    # from the synced one, so the equality above needed the cross-process sum
    halves = []
    for r in (0, 1):
        (tmp_path / f"half{r}.txt").write_text("\n".join(reports[r]["written"]) + "\n")
        halves.append(val_miou(str(tmp_path / f"half{r}.txt")))
    assert any(abs(h - reports[0]["val_miou"]) > 1e-4 for h in halves), halves


def test_score_command_with_two_devices_matches_one(synthetic_voc: Path, tmp_path: Path) -> None:
    """``--trainer.devices N`` works beyond the pipeline: ``score folder`` on two CPU processes (gloo) writes
    the same table as one process (the command is re-run for rank 1 by Lightning's launcher). The
    coarse scores only: a scorer trained on two processes sees other batches than on one."""
    from sal_lightning.data.io import read_scores

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proxies = synthetic_voc / "SegmentationClassAug"  # any folder of pseudo-labels
    tables = {}
    for devices in ("1", "2"):
        scores = tmp_path / f"devices{devices}" / "scores.csv"
        command = [
            sys.executable,
            "-m",
            "sal_lightning",
            "score",
            "folder",
            "--root",
            str(synthetic_voc),
            "--proxies",
            str(proxies),
            "--split",
            "val",
            "--scores",
            str(scores),
            "--saliency",
            str(synthetic_voc / "saliency"),
            "--scorer",
            "null",
            "--trainer.accelerator",
            "cpu",
            "--trainer.devices",
            devices,
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-4000:]
        assert "scores of 6 pseudo-labels" in done.stdout
        tables[devices] = read_scores(scores)
    assert tables["2"] == tables["1"]


def test_a_pipeline_retraining_of_deeplab_v2_on_two_processes_keeps_batch_norm_frozen(
    synthetic_voc: Path, tmp_path: Path
) -> None:
    """``sal-lightning pipeline --only retrain-P2 --trainer.devices 2``: DeepLab v2 with frozen batch
    norm (weights calibrated here) trains on two CPU processes (gloo); the global batch of 4 is split
    2 + 2, rank zero alone prints it, the loss is finite and the batch norm stays as loaded."""
    import math

    import torch
    import yaml

    from sal_lightning.nn.calibrate import write_calibrated_backbone

    data = VOCSegmentationDataModule(str(synthetic_voc), val_split="train", eval_batch_size=4, num_workers=0)
    data.setup("validate")
    batches = [batch["image"] for batch in data.val_dataloader()]
    build = {"encoder_depth": 3}  # a shallow trunk: stride 8 without dilated stages
    weights = write_calibrated_backbone("deeplabv2_resnet18", tmp_path / "r18.pth", batches, **build)
    config = yaml.safe_load((Path(__file__).parent / "conf" / "pipeline.yaml").read_text())
    model = {"backbone": "deeplabv2_resnet18", "backbone_kwargs": build, "encoder_weights": str(weights)}
    config["retrain"]["model"] = {**model, "lr": 0.01}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    base = [
        sys.executable,
        "-m",
        "sal_lightning",
        "pipeline",
        "--config",
        str(tmp_path / "config.yaml"),
        "--root",
        str(synthetic_voc),
        "--workdir",
        str(tmp_path / "work"),
        "--proxies",
        str(synthetic_voc / "SegmentationClassAug"),
    ]
    ran = subprocess.run([*base, "--only", "proxies"], env=env, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-4000:]
    ddp = ["--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.batch_sizes", "global"]
    ran = subprocess.run(
        [*base, "--only", "retrain-P2", *ddp], env=env, capture_output=True, text=True, timeout=600
    )
    assert ran.returncode == 0, ran.stderr[-4000:]
    lines = [line for line in ran.stdout.splitlines() if "global batch" in line]
    assert lines == [
        "SALSegmenter: global batch 4 = 2 per device x 2 devices x 1 node x 1 accumulated; "
        "lr 0.01 (groups 0.01, 0.1, 0.2)"
    ], ran.stdout[-2000:]

    manifest = json.loads((tmp_path / "work" / "manifest.json").read_text())
    run = manifest["steps"]["retrain-P2"]["result"]["seed0"]
    assert run["steps"] == config["retrain"]["max_steps"] and math.isfinite(run["loss"])
    trained = torch.load(tmp_path / "work" / "retrain" / "P2" / "seed0.ckpt", map_location="cpu")[
        "state_dict"
    ]
    loaded = torch.load(weights, map_location="cpu")
    norms = [
        k
        for k in loaded
        if (".bn" in k or k.startswith("bn") or ".downsample.1." in k)
        and not k.endswith("num_batches_tracked")
    ]
    assert norms and all(torch.equal(trained[f"net.encoder.{k}"], loaded[k]) for k in norms)
    assert not torch.equal(trained["net.encoder.conv1.weight"], loaded["conv1.weight"])  # the convs trained
