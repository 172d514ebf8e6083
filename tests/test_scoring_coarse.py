"""Coarse scores of a dataset: batched AC/CD/SC, the predict loop writing scores.csv, SC tracking true AC."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from sal_lightning.data.io import read_label_png, read_scores, scores_sidecar, write_label_png
from sal_lightning.data.layout import read_split
from sal_lightning.data.voc import IGNORE_INDEX
from sal_lightning.scoring import mask_objectness
from sal_lightning.scoring.coarse import CoarseConfig, CoarseScoringDataset, score_samples
from sal_lightning.scoring.corruption import corrupt_labels, make_corrupted_proxies
from sal_lightning.scoring.references import read_reference
from sal_lightning.scoring.reports import score_correlations, true_quality
from sal_lightning.scoring.stages import score_coarse

CPU = {"accelerator": "cpu"}


def _paper_ac(ref: np.ndarray, fg: np.ndarray) -> float:
    """Eq. 3 as printed, by hand: prec = |H∩B|/|H|, rec = |H∩B|/|H∪B|."""
    both, union = (ref & fg).sum(), (ref | fg).sum()
    prec = both / ref.sum() if ref.sum() else 0.0
    rec = both / union if union else 0.0
    return 2 * prec * rec / (prec + rec) if prec + rec else 0.0


def test_score_samples_groups_sizes_and_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(0)
    samples = []
    for k, (h, w) in enumerate([(20, 24), (16, 16), (20, 24), (16, 16), (18, 10)]):
        proxy = np.zeros((h, w), dtype=np.uint8)
        proxy[2 : h - 3, 3 : w // 2 + k] = 1 + k
        proxy[0, :] = IGNORE_INDEX
        proxy[h - 2, 1:4] = 7  # a few pixels of an untagged class
        ref = np.zeros((h, w), dtype=bool)
        ref[4:h, 2 : w // 2] = True
        tags = np.zeros(20, dtype=np.float32)
        tags[k] = 1.0
        samples.append(
            {
                "id": f"i{k}",
                "image": torch.from_numpy(rng.integers(0, 255, (3, h, w), dtype=np.uint8)),
                "proxy": torch.from_numpy(proxy),
                "reference": torch.from_numpy(ref),
                "tags": torch.from_numpy(tags),
            }
        )
    out = score_samples(samples, CoarseConfig())
    assert out["id"] == [f"i{k}" for k in range(5)]
    for k, s in enumerate(samples):
        proxy, ref = s["proxy"].numpy(), s["reference"].numpy()
        fg = (proxy > 0) & (proxy != IGNORE_INDEX)
        f = float(mask_objectness(s["image"][None], s["proxy"][None].long())[0])
        assert float(out["ac"][k]) == pytest.approx(_paper_ac(ref, fg) * f**0.1, rel=1e-5)
        expected_cd = ((proxy == k + 1).sum()) / fg.sum()
        assert float(out["cd"][k]) == pytest.approx(expected_cd, rel=1e-6)
        assert float(out["sc"][k]) == pytest.approx(float(out["ac"][k]) * expected_cd, rel=1e-5)
    plain = score_samples(samples, CoarseConfig(objectness=None, definition="fmeasure"))
    fg0 = (samples[0]["proxy"].numpy() > 0) & (samples[0]["proxy"].numpy() != IGNORE_INDEX)
    ref0 = samples[0]["reference"].numpy()
    f1 = 2 * (ref0 & fg0).sum() / (ref0.sum() + fg0.sum())
    assert float(plain["ac"][0]) == pytest.approx(f1, rel=1e-5)


def test_corruptions_have_the_intended_effect() -> None:
    rng = np.random.default_rng(0)
    labels = np.zeros((40, 40), dtype=np.uint8)
    labels[10:30, 8:28] = 3
    labels[9, 8:28] = IGNORE_INDEX
    assert np.array_equal(corrupt_labels(labels, "none", 0.0, rng), np.where(labels == 255, 0, labels))
    assert (corrupt_labels(labels, "erode", 0.2, rng) > 0).sum() < 400
    grown = corrupt_labels(labels, "dilate", 0.2, rng)
    assert (grown > 0).sum() > 400 and set(np.unique(grown)) == {0, 3}
    assert (corrupt_labels(labels, "drop", 1.0, rng) == 0).all()
    relabelled = corrupt_labels(labels, "relabel", 0.25, rng)
    other = (relabelled > 0) & (relabelled != 3)
    assert (relabelled > 0).sum() == 400 and abs(other.sum() - 100) <= 10
    shifted = corrupt_labels(labels, "shift", 0.25, rng)
    assert (shifted > 0).sum() <= 400 and ((shifted > 0) & (labels == 3)).sum() < 400  # moved
    with pytest.raises(ValueError, match="op"):
        corrupt_labels(labels, "smudge", 0.1, rng)  # type: ignore[arg-type]


def test_sc_tracks_the_true_ac_and_a_broken_scorer_fails(
    make_voc: Callable[..., Path], tmp_path: Path
) -> None:
    """Proxies of known quality: Pearson(SC, true AC) must clear 0.65; with every image scored
    against another image's reference (a broken scorer) it must not."""
    root = make_voc(n_train=40, n_val=0, size=64, seed=0)
    ids = read_split(root, "train")
    ops = ("none", "erode", "dilate", "shift", "drop", "blob")
    done = make_corrupted_proxies(root, ids, tmp_path / "proxies", seed=0, ops=ops, progress=False)
    assert len({op for op, _ in done.values()}) >= 5
    scores_csv = tmp_path / "scores.csv"
    rows = score_coarse(
        root,
        tmp_path / "proxies",
        scores_csv,
        "train",
        reference_dir=tmp_path / "refs",
        saliency=root / "saliency",
        batch_size=6,
        trainer_kwargs=CPU,
        progress=False,
    )
    written = read_scores(scores_csv)
    assert sorted(written) == sorted(ids) and sorted(rows) == sorted(ids)
    assert all(math.isnan(r["p"]) and math.isnan(r["weight"]) for r in written.values())
    assert all(r["sc"] == pytest.approx(r["ac"] * r["cd"]) for r in written.values())
    sidecar = json.loads(scores_sidecar(scores_csv).read_text())["writes"][-1]
    assert sidecar["config"]["step"] == "coarse" and sidecar["config"]["coarse"]["b"] == 0.1
    assert all((tmp_path / "refs" / f"{i}.png").is_file() for i in ids)  # references cached

    truth = true_quality(root, ids, tmp_path / "proxies", progress=False)
    good = score_correlations(written, truth.ac, ("sc",))["sc"]["pearson"]
    assert good > 0.65

    dataset = CoarseScoringDataset(root, ids, tmp_path / "proxies", tmp_path / "refs")
    samples = [dataset[k] for k in range(len(dataset))]
    refs = [s["reference"] for s in samples]
    for k, s in enumerate(samples):
        s["reference"] = refs[(k + 7) % len(refs)]
    broken = score_samples(samples, CoarseConfig())
    broken_rows = {i: {"sc": float(v)} for i, v in zip(broken["id"], broken["sc"], strict=True)}
    assert score_correlations(broken_rows, truth.ac, ("sc",))["sc"]["pearson"] < 0.65


def test_cd_follows_relabelling_and_references_are_built_when_missing(
    synthetic_voc: Path, tmp_path: Path
) -> None:
    ids = read_split(synthetic_voc, "val")[:4]
    done = make_corrupted_proxies(
        synthetic_voc, ids, tmp_path / "p", seed=0, ops=("relabel",), progress=False
    )
    rows = score_coarse(
        synthetic_voc, tmp_path / "p", tmp_path / "s.csv", ids, tmp_path / "refs", None, trainer_kwargs=CPU,
        progress=False,
    )  # fmt: skip
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
