"""``sal-lightning proxies``: step 1 from the command line, driven by ``tests/conf/proxies.yaml``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sal_lightning.cli import main
from sal_lightning.data.io import read_gray_png, read_label_png
from sal_lightning.data.layout import read_xml_tags
from sal_lightning.models.proxy import ProxyNet

CONF = Path(__file__).resolve().parents[1] / "conf" / "proxies.yaml"


def test_proxies_command_runs_cam_seeds_proxynet_and_proxies(synthetic_voc: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "step1"
    argv = [
        "proxies",
        "--config",
        CONF,
        "--root",
        synthetic_voc,
        "--workdir",
        workdir,
        "--saliency",
        synthetic_voc / "saliency",
        "--val_split",
        "val",
        "--predict_with_tags",
        "true",
    ]
    assert main(list(map(str, argv))) == 0
    ids = (synthetic_voc / "ImageSets" / "Segmentation" / "train.txt").read_text().split()
    for image_id in ids:
        tags = read_xml_tags(synthetic_voc / "Annotations" / f"{image_id}.xml")
        tagged = set((np.flatnonzero(tags) + 1).tolist())
        with np.load(workdir / "cams" / f"{image_id}.npz") as data:
            cams, labels = data["cams"], data["labels"]
        assert set(labels.tolist()) == tagged and cams.dtype == np.float16
        assert cams.shape[1:] == (64, 64)
        peaks = cams.reshape(len(labels), -1).max(1)  # each map divided by its maximum (0: never active)
        assert np.isin(peaks, [0.0, 1.0]).all() and cams.min() >= 0
        seeds = read_label_png(workdir / "seeds" / f"{image_id}.png")
        saliency = read_gray_png(synthetic_voc / "saliency" / f"{image_id}.png")
        assert set(np.unique(seeds).tolist()) <= tagged | {0, 255}
        assert (saliency[seeds == 0] < 0.06 * 255).all()  # background seeds: low saliency only
        proxies = read_label_png(workdir / "proxies" / f"{image_id}.png")
        assert proxies.shape == (64, 64) and set(np.unique(proxies).tolist()) <= tagged | {0}
    assert not list(workdir.glob(".*todo.txt"))  # the lists of ids still to predict are cleaned up
    report = json.loads((workdir / "proxies.json").read_text())
    assert report["seeds"]["images"] == len(ids) and report["proxies"]["coverage"] == 1.0
    assert 0 <= report["proxies"]["miou"] <= 1 and report["config"]["proxy_steps"] == 2
    model = ProxyNet.load_from_checkpoint(workdir / "proxynet.ckpt", map_location="cpu")
    assert model.hparams.backbone == "deeplabv3_resnet18" and model.hparams.grow

    # P1: the network on val, without the tags
    val_ids = (synthetic_voc / "ImageSets" / "Segmentation" / "val.txt").read_text().split()
    assert sorted(p.stem for p in (workdir / "p1" / "proxies").glob("*.png")) == sorted(val_ids)
    assert report["p1"]["images"] == len(val_ids)

    # resume: the per-image files are kept, nothing is rewritten
    stamps = {p: p.stat().st_mtime_ns for p in (workdir / "proxies").iterdir()}
    assert main([*map(str, argv), "--steps", "[cams, seeds, predict]", "--resume"]) == 0
    assert {p: p.stat().st_mtime_ns for p in (workdir / "proxies").iterdir()} == stamps


def test_proxies_command_without_saliency_fails_at_once_naming_the_flag(
    synthetic_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["proxies", "--config", CONF, "--root", synthetic_voc, "--workdir", tmp_path / "step1"]
    assert main(list(map(str, argv))) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("sal-lightning proxies: error: saliency: ")
    assert "give --saliency FOLDER" in error and not (tmp_path / "step1" / "cam.ckpt").exists()
