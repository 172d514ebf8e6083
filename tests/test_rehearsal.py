"""A rehearsal at real size: the paper's ResNet-101 pipeline configuration on 500 x 375 images.

``examples/configs/pipeline_voc_resnet101.yaml`` as a user runs it (its networks, crops, test
scales, Table I scorer, batch and devices settings), overridden only where a CPU test must be small:
two training images and one validation image of VOC's size, one or two steps per training, one
epoch of the scorer, a share ``keep`` for the selection (the paper's taus are on another score
scale), the retrainings P2, P3 and P5 (P4 is P5 without the attention loss), single-scale proxies
(the evaluation keeps the paper's three scales), no worker processes, and weights files made here
(the networks the configuration names, their batch-norm statistics estimated on the images, since
frozen batch norm needs meaningful ones).
Step 1 runs first (with P1); its networks, two steps old, label everything background, so the
later stages run on corrupted ground truth imported as pseudo-labels (the configuration's
``--proxies FOLDER``), where the selection has objects to choose from. Every step must finish with
finite losses; what the small runs of the other tests cannot show (sizes, strides, memory, the
frozen batch norm of the real trunk) shows here.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from sal_lightning.data.datamodules import VOCSegmentationDataModule
from sal_lightning.data.io import read_label_png
from sal_lightning.data.synthetic import make_synthetic_voc
from sal_lightning.nn.calibrate import write_calibrated_backbone
from sal_lightning.pipeline.config import build_pipeline, load_config
from sal_lightning.stages.corrupt import make_corrupted_proxies

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "configs" / "pipeline_voc_resnet101.yaml"
HEIGHT, WIDTH = 375, 500  # a typical PASCAL VOC image


def _weights(root: Path, folder: Path, networks: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """A calibrated backbone file per network (setting -> (backbone name, build arguments)), one per
    distinct network."""
    data = VOCSegmentationDataModule(str(root), val_split="train", eval_batch_size=1, num_workers=0)
    data.setup("validate")
    images = [batch["image"] for batch in data.val_dataloader()]  # whole images, normalised as in training
    files: dict[str, str] = {}
    out: dict[str, str] = {}
    for setting, (name, build) in networks.items():
        key = json.dumps([name, build], sort_keys=True)
        if key not in files:
            files[key] = str(write_calibrated_backbone(name, folder / f"{setting}.pth", images, **build))
        out[setting] = files[key]
    return out


def test_the_paper_resnet101_pipeline_runs_at_real_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_synthetic_voc(tmp_path / "voc", n_train=2, n_val=1, size=(HEIGHT, WIDTH), seed=0)
    raw = yaml.safe_load(CONFIG.read_text())
    paper = load_config(CONFIG, root=str(root))
    assert not isinstance(paper.proxies, str)
    model = paper.retrain.model
    weights = _weights(
        root,
        tmp_path / "weights",
        {
            "cam": (paper.proxies.cam_backbone, dict(paper.proxies.cam_backbone_kwargs)),
            "proxy": (paper.proxies.proxy_backbone, dict(paper.proxies.proxy_backbone_kwargs)),
            "retrain": (model["backbone"], dict(model.get("backbone_kwargs", {}))),
        },
    )
    overrides = {
        "root": str(root),
        "train_split": "train",
        "val_split": "val",
        "saliency": str(root / "saliency"),
        "trainer": {**raw["trainer"], "accelerator": "cpu", "enable_progress_bar": False},
        "proxies": {
            **raw["proxies"],
            "cam_encoder_weights": weights["cam"],
            "num_workers": 0,
            "proxy_encoder_weights": weights["proxy"],
            "cam_steps": 1,
            "cam_batch_size": 1,
            "cam_crop_size": 321,
            "cam_scales": [1.0],
            "proxy_steps": 2,
            "proxy_batch_size": 1,
            "test_scales": [1.0],
            "crf_processes": 0,
        },
        "references": {**raw["references"], "processes": 0},
        "coarse": {**raw["coarse"], "batch_size": 2, "num_workers": 0},
        "scorer": {**raw["scorer"], "max_epochs": 1, "batch_size": 2},
        "select": {"mode": raw["select"]["mode"], "keep": 0.5, "keep_coarse": 0.5},  # shares, not taus
        "retrain": {
            **raw["retrain"],
            "max_steps": 2,
            "variants": ["P2", "P3", "P5"],  # none, SC, SF + attention
            "model": {**model, "encoder_weights": weights["retrain"], "crf_processes": 0},
            "data": {**raw["retrain"]["data"], "batch_size": 1, "num_workers": 0},
        },
    }
    config = load_config(CONFIG, **overrides)
    assert config.retrain.data["crop_size"] == config.proxies.proxy_crop_size == 321  # type: ignore[union-attr]
    assert config.evaluate.test_scales == (0.5, 0.75, 1.0) and config.evaluate.crf  # the paper's test time
    assert config.scorer.method == "regression" and config.scorer.model["input_size"] == 256

    # step 1 at real size (P1 included); its networks after two steps label everything background,
    # so the later stages rehearse on pseudo-labels that hold objects: the ground truth, corrupted
    step1 = build_pipeline(config, tmp_path / "step1").run(until="proxies")["steps"]["proxies"]
    proxies = tmp_path / "proxies"
    make_corrupted_proxies(root, proxies, split="train", seed=0, progress=False)
    work = tmp_path / "work"
    records = build_pipeline(load_config(CONFIG, **{**overrides, "proxies": str(proxies)}), work).run()[
        "steps"
    ]
    assert step1["status"] == "done" and all(r["status"] == "done" for r in records.values()), records

    # every training ended on finite losses, and said what it trained on
    losses = {"cam": step1["result"]["cam_loss"], "proxynet": step1["result"]["proxynet_loss"]}
    losses["scorer"] = json.loads((work / "scorer" / "checkpoints" / "training.json").read_text())["loss"]
    for variant in config.retrain.variants:
        run = records[f"retrain-{variant}"]["result"]["seed0"]
        assert run["steps"] == 2
        losses[variant] = run["loss"]
    assert all(isinstance(v, float) and math.isfinite(v) for v in losses.values()), losses
    assert 0.0 <= step1["result"]["p1_val_miou"] <= 1.0
    lines = re.findall(r"^(\w+): global batch (\d+) = ", capsys.readouterr().out, re.M)
    assert sorted(lines) == sorted(
        [("CAMClassifier", "1"), ("ProxyNet", "1"), ("MaskScorer", "2")]
        + [("SALSegmenter", "1")] * len(config.retrain.variants)
    ), lines

    # real sizes throughout, the Table I scorer, and a frozen batch norm that stayed frozen
    train_id = "synth_000000"
    assert read_label_png(tmp_path / "step1" / "step1" / "proxies" / f"{train_id}.png").shape == (
        HEIGHT,
        WIDTH,
    )
    assert read_label_png(work / "references" / f"{train_id}.png").shape == (HEIGHT, WIDTH)
    scorer = torch.load(work / "scorer" / "scorer.ckpt", map_location="cpu", weights_only=False)
    assert scorer["hyper_parameters"]["arch"] == "table1"
    trained = torch.load(work / "retrain" / "P5" / "seed0.ckpt", map_location="cpu", weights_only=False)
    state = trained["state_dict"]
    calibrated = torch.load(weights["retrain"], map_location="cpu", weights_only=True)
    stats = [k for k in calibrated if k.endswith(("running_mean", "running_var"))]
    prefix = next(key[: -len(stats[0])] for key in state if key.endswith("." + stats[0]))
    assert all(torch.equal(state[prefix + k], calibrated[k]) for k in stats)
    results = json.loads((work / "evaluation" / "results.json").read_text())
    assert set(results) == set(config.retrain.variants)
    assert all(0.0 <= run <= 1.0 for runs in results.values() for run in runs.values())
