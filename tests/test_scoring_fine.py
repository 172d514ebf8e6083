"""Fine scores, selection, reports, and the ``sal-lightning score`` command end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sal_lightning.cli import main
from sal_lightning.data.io import read_scores, write_scores
from sal_lightning.data.layout import read_split
from sal_lightning.scoring.reports import TrueQuality, score_correlations, tau_sweep
from sal_lightning.scoring.stages import apply_selection


def test_apply_selection_fills_sf_and_weights(tmp_path: Path) -> None:
    path = tmp_path / "scores.csv"
    write_scores(
        path,
        {
            "a": {"ac": 0.9, "cd": 1.0, "sc": 0.9, "p": 0.8},
            "b": {"ac": 0.5, "cd": 0.5, "sc": 0.25, "p": 0.9},
            "c": {"ac": 0.2, "cd": 1.0, "sc": 0.2, "p": 0.3},
        },
    )
    rows = apply_selection(path, tau=0.45)
    assert [rows[i]["sf"] for i in "abc"] == pytest.approx([0.8, 0.45, 0.3])
    assert [rows[i]["weight"] for i in "abc"] == [1.0, 1.0, 0.0]  # Eq. 9: sf >= tau
    assert read_scores(path)["b"]["weight"] == 1.0
    soft = apply_selection(path, tau=0.45, mode="soft", temperature=0.1)
    assert soft["b"]["weight"] == pytest.approx(0.5)
    assert soft["a"]["weight"] == pytest.approx(float(torch.sigmoid(torch.tensor(3.5))))
    coarse = apply_selection(path, tau=0.5, score="sc")
    assert [coarse[i]["weight"] for i in "abc"] == [1.0, 0.0, 0.0]
    write_scores(tmp_path / "empty.csv", {"a": {"ac": 0.5}})
    with pytest.raises(ValueError, match="'sf' is empty"):
        apply_selection(tmp_path / "empty.csv", 0.5)


def test_tau_sweep_and_correlations_by_hand() -> None:
    scores = {"a": {"sf": 0.9}, "b": {"sf": 0.6}, "c": {"sf": 0.2}, "d": {"sf": math.nan}}
    confusion = {
        "a": torch.tensor([[5, 0], [0, 5]]),
        "b": torch.tensor([[4, 1], [1, 4]]),
        "c": torch.tensor([[0, 5], [5, 0]]),
        "d": torch.tensor([[5, 0], [0, 5]]),
    }
    truth = TrueQuality({"a": 0.95, "b": 0.7, "c": 0.1, "d": 0.9}, confusion)
    rows = tau_sweep(scores, "sf", (0.0, 0.5, 0.95), truth)
    assert [r["selected"] for r in rows] == [3, 2, 0]  # NaN never selected
    assert rows[1]["mean_true_ac"] == pytest.approx(0.825)
    # a + b: per class TP 9, FP 1, FN 1 -> IoU 9 / 11 for both classes
    assert rows[1]["miou"] == pytest.approx(9 / 11)
    assert math.isnan(rows[2]["miou"])
    corr = score_correlations(scores, truth.ac, ("sf", "sc"))
    assert set(corr) == {"sf"} and corr["sf"]["n"] == 3
    x, y = np.array([0.9, 0.6, 0.2]), np.array([0.95, 0.7, 0.1])
    assert corr["sf"]["pearson"] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-6)
    assert corr["sf"]["spearman"] == pytest.approx(1.0, abs=1e-5)


def _run(*argv: str | Path) -> int:
    return main(["score", *[str(a) for a in argv]])


def test_command_line_end_to_end(
    synthetic_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, proxies, refs = synthetic_voc, tmp_path / "proxies", tmp_path / "refs"
    scores, samples, ckpt = tmp_path / "scores.csv", tmp_path / "samples", tmp_path / "ckpt"
    cpu = ("--accelerator", "cpu")
    assert _run("corrupt", "--root", root, "--out", proxies, "--split", "train") == 0
    assert (
        _run("references", "--root", root, "--out", refs, "--split", "train", "--saliency", root / "saliency")
        == 0
    )
    ids = read_split(root, "train")
    assert sorted(p.stem for p in refs.glob("*.png")) == sorted(ids)
    assert (
        _run(
            "coarse",
            "--root",
            root,
            "--proxy-dir",
            proxies,
            "--scores",
            scores,
            "--reference-dir",
            refs,
            *cpu,
        )
        == 0
    )
    assert sorted(read_scores(scores)) == sorted(ids)
    assert _run("trainset", "--root", root, "--proxy-dir", proxies, "--reference-dir", refs, "--out", samples,
                "--scores", scores, "--cutpaste-share", "0.5") == 0  # fmt: skip
    assert (samples / "samples.csv").is_file()
    tiny = ("--epochs", "1", "--input-size", "32", "--arch", "light", "--lr", "1e-3")
    assert (
        _run("train-scorer", "--samples", samples, "--out", ckpt, *tiny, "--val-fraction", "0.2", *cpu) == 0
    )
    best = capsys.readouterr().out.strip().splitlines()[-1].split("best checkpoint: ")[-1]
    assert Path(best).is_file()

    assert _run("fine", "--root", root, "--proxy-dir", proxies, "--checkpoint", best, "--scores", scores,
                "--tau", "0.5", *cpu) == 0  # fmt: skip
    rows = read_scores(scores)
    for row in rows.values():
        assert 0.0 < row["p"] < 1.0
        assert row["sf"] == pytest.approx(row["p"] * row["cd"], rel=1e-6)
        assert row["weight"] == float(row["sf"] >= 0.5)

    report = tmp_path / "report"
    assert _run("sweep", "--scores", scores, "--out", report, "--root", root, "--proxy-dir", proxies) == 0
    assert "Correlation with the true AC" in (report / "report.md").read_text()
    assert (report / "correlations.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # any folder of pseudo-labels, one command, no pipeline
    folder_scores = tmp_path / "folder" / "scores.csv"
    folder_args = ("--checkpoint", best, "--scores", folder_scores, "--saliency", root / "saliency")
    assert _run("folder", "--root", root, "--proxy-dir", proxies, *folder_args, "--tau", "0.4", *cpu) == 0
    folder_rows = read_scores(folder_scores)
    assert sorted(folder_rows) == sorted(ids)
    for image_id, row in folder_rows.items():
        assert all(not math.isnan(row[c]) for c in ("ac", "cd", "sc", "p", "sf", "weight"))
        assert row["p"] == pytest.approx(rows[image_id]["p"], abs=1e-5)
        assert row["weight"] == float(row["sf"] >= 0.4)

    # no checkpoint: the scorer is trained on the folder it scores (here the reference network)
    trained = tmp_path / "trained" / "scores.csv"
    own = (
        "--scores",
        trained,
        "--saliency",
        root / "saliency",
        "--scorer-epochs",
        "1",
        "--scorer-input-size",
        "32",
    )
    assert _run("folder", "--root", root, "--proxy-dir", proxies, *own, "--tau", "0.4", *cpu) == 0
    trained_rows = read_scores(trained)
    assert sorted(trained_rows) == sorted(ids)
    assert all(0 <= r["p"] <= 1 and r["sf"] == pytest.approx(r["p"] * r["cd"]) for r in trained_rows.values())
    assert list((trained.parent / "scorer" / "checkpoints").glob("*.ckpt"))
    assert len(list((trained.parent / "references").glob("*.png"))) == len(ids)
    coarse_only = tmp_path / "coarse_only" / "scores.csv"
    assert _run("folder", "--root", root, "--proxy-dir", proxies, "--scores", coarse_only, "--saliency",
                root / "saliency", "--scorer-method", "none", "--tau", "0.4", *cpu) == 0  # fmt: skip
    assert all(
        math.isnan(r["p"]) and r["weight"] == float(r["sc"] >= 0.4) for r in read_scores(coarse_only).values()
    )

    assert _run("select", "--scores", folder_scores, "--tau", "0.3", "--score", "sc") == 0
    assert all(r["weight"] == float(r["sc"] >= 0.3) for r in read_scores(folder_scores).values())
    capsys.readouterr()
    assert _run("fine", "--root", root, "--proxy-dir", proxies, "--checkpoint", tmp_path / "no.ckpt",
                "--scores", scores, *cpu) == 2  # fmt: skip
    assert "no.ckpt" in capsys.readouterr().err
    assert _run("references", "--root", tmp_path, "--out", refs) == 2
    assert "not a VOC root" in capsys.readouterr().err


def test_score_folder_writes_a_fresh_table(
    synthetic_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing scores.csv keeps nothing of its earlier run: no stale row, no old p / sf."""
    from sal_lightning.scoring.corruption import make_corrupted_proxies

    ids = read_split(synthetic_voc, "train")[:5]
    proxies, scores = tmp_path / "proxies", tmp_path / "scores.csv"
    make_corrupted_proxies(synthetic_voc, ids, proxies, seed=0, progress=False)
    earlier = {i: {"ac": 0.1, "cd": 1.0, "sc": 0.1, "p": 0.99, "sf": 0.99, "weight": 0.0} for i in ids}
    write_scores(scores, {**earlier, "synth_000011": {"sc": 0.5, "p": 0.9, "sf": 0.9, "weight": 1.0}})
    capsys.readouterr()
    args = ("--root", synthetic_voc, "--proxy-dir", proxies, "--scores", scores, "--tau", "0.3")
    assert (
        _run(
            "folder",
            *args,
            "--saliency",
            synthetic_voc / "saliency",
            "--scorer-method",
            "none",
            "--accelerator",
            "cpu",
        )
        == 0
    )
    assert "scores of 5 pseudo-labels" in capsys.readouterr().out
    rows = read_scores(scores)
    assert sorted(rows) == ids  # the stale row is gone
    for row in rows.values():
        assert math.isnan(row["p"]) and math.isnan(row["sf"])  # no scorer: no p, no sf
        assert row["weight"] == float(row["sc"] >= 0.3) and row["sc"] != 0.1
    writes = json.loads((tmp_path / "scores.json").read_text())["writes"]
    assert [w["config"]["step"] for w in writes] == ["coarse", "select"]  # this run's history only
    assert not list(tmp_path.glob(".*partial*"))


def test_an_unwritable_output_fails_before_any_work(
    synthetic_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    args = ("--root", synthetic_voc, "--proxy-dir", synthetic_voc / "SegmentationClassAug")
    assert _run("folder", *args, "--scores", blocker / "out" / "scores.csv") == 2
    err = capsys.readouterr().err
    assert "--scores: cannot write in" in err and "Not a directory" in err
    assert _run("references", "--root", synthetic_voc, "--out", blocker / "refs") == 2
    assert "--out: cannot write in" in capsys.readouterr().err
