"""Coarse scores of a folder of proxies: the predict loop writing scores.csv, its dataset, and SC
tracking the true AC of proxies of known quality."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sal_lightning.data.io import read_label_png, read_reference, read_scores, scores_sidecar, write_label_png
from sal_lightning.data.layout import read_split
from sal_lightning.data.proxy_data import CoarseScoringDataset
from sal_lightning.scoring.coarse import score_samples
from sal_lightning.stages.coarse import CoarseSettings, score_coarse
from sal_lightning.stages.corrupt import make_corrupted_proxies
from sal_lightning.stages.quality import true_quality
from sal_lightning.stages.sweep import score_correlations
from sal_lightning.stages.trainer import TrainerSettings

CPU = TrainerSettings(accelerator="cpu", enable_progress_bar=False)


def test_sc_tracks_the_true_ac_and_a_broken_scorer_fails(
    make_voc: Callable[..., Path], tmp_path: Path
) -> None:
    """Proxies of known quality: Pearson(SC, true AC) must clear 0.65; with every image scored
    against another image's reference (a broken scorer) it must not."""
    root = make_voc(n_train=40, n_val=0, size=64, seed=0)
    ids = read_split(root, "train")
    ops = ("none", "erode", "dilate", "shift", "drop", "blob")
    done = make_corrupted_proxies(root, tmp_path / "proxies", split=ids, seed=0, ops=ops, progress=False)
    assert len({op for op, _ in done.values()}) >= 5
    scores_csv = tmp_path / "scores.csv"
    rows = score_coarse(
        root,
        tmp_path / "proxies",
        scores=scores_csv,
        split="train",
        references=tmp_path / "refs",
        saliency=root / "saliency",
        settings=CoarseSettings(batch_size=6),
        trainer=CPU,
    )
    written = read_scores(scores_csv)
    assert sorted(written) == sorted(ids) and sorted(rows) == sorted(ids)
    assert all(math.isnan(r["p"]) and math.isnan(r["weight"]) for r in written.values())
    assert all(r["sc"] == pytest.approx(r["ac"] * r["cd"]) for r in written.values())
    sidecar = json.loads(scores_sidecar(scores_csv).read_text())["writes"][-1]
    assert sidecar["config"]["step"] == "coarse" and sidecar["config"]["coarse"]["b"] == 0.1
    assert all((tmp_path / "refs" / f"{i}.png").is_file() for i in ids)  # references cached

    truth = true_quality(root, ids, proxies=tmp_path / "proxies", progress=False)
    good = score_correlations(written, truth.ac, columns=("sc",))["sc"]["pearson"]
    assert good > 0.65

    dataset = CoarseScoringDataset(root, ids, tmp_path / "proxies", tmp_path / "refs")
    samples = [dataset[k] for k in range(len(dataset))]
    refs = [s["reference"] for s in samples]
    for k, s in enumerate(samples):
        s["reference"] = refs[(k + 7) % len(refs)]
    broken = score_samples(samples)
    broken_rows = {i: {"sc": float(v)} for i, v in zip(broken["id"], broken["sc"], strict=True)}
    assert score_correlations(broken_rows, truth.ac, columns=("sc",))["sc"]["pearson"] < 0.65


def test_cd_follows_relabelling_and_references_are_built_when_missing(
    synthetic_voc: Path, tmp_path: Path
) -> None:
    ids = read_split(synthetic_voc, "val")[:4]
    done = make_corrupted_proxies(
        synthetic_voc, tmp_path / "p", split=ids, seed=0, ops=("relabel",), progress=False
    )
    rows = score_coarse(
        synthetic_voc,
        tmp_path / "p",
        scores=tmp_path / "s.csv",
        split=ids,
        references=tmp_path / "refs",
        trainer=CPU,
    )
    for image_id, (_, strength) in done.items():
        assert rows[image_id]["cd"] == pytest.approx(1.0 - strength, abs=0.06)
        assert read_reference(tmp_path / "refs" / f"{image_id}.png").shape == (64, 64)  # built-in saliency


def test_bad_inputs_are_named(synthetic_voc: Path, tmp_path: Path) -> None:
    ids = read_split(synthetic_voc, "val")[:3]
    (tmp_path / "p").mkdir()
    with pytest.raises(FileNotFoundError, match=r"3 of 3 proxy annotations missing"):
        CoarseScoringDataset(synthetic_voc, ids, tmp_path / "p")
    for image_id in ids:
        write_label_png(tmp_path / "p" / f"{image_id}.png", np.zeros((10, 12), np.uint8))
    dataset = CoarseScoringDataset(synthetic_voc, ids, tmp_path / "p", saliency=synthetic_voc / "saliency")
    with pytest.raises(ValueError, match="differs from the image"):
        dataset[0]
    with pytest.raises(ValueError, match="duplicate"):
        CoarseScoringDataset(synthetic_voc, [ids[0], ids[0]], tmp_path / "p")
    with pytest.raises(FileNotFoundError, match="saliency maps missing"):
        CoarseScoringDataset(synthetic_voc, ids, tmp_path / "p", saliency=synthetic_voc / "JPEGImages")
    assert read_label_png(tmp_path / "p" / f"{ids[0]}.png").shape == (10, 12)
