"""``sal-lightning score``: every action end to end on the synthetic root, through the entry function."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sal_lightning.cli import main
from sal_lightning.data.io import read_scores, write_scores
from sal_lightning.data.layout import read_split
from sal_lightning.stages.corrupt import make_corrupted_proxies

CPU = ("--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false")


def _run(*argv: str | Path) -> int:
    return main(["score", *[str(a) for a in argv]])


def test_command_line_end_to_end(
    synthetic_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, proxies, refs = synthetic_voc, tmp_path / "proxies", tmp_path / "refs"
    scores, samples, ckpt = tmp_path / "scores.csv", tmp_path / "samples", tmp_path / "ckpt"
    assert _run("corrupt", "--root", root, "--out", proxies, "--split", "train") == 0
    assert (
        _run("references", "--root", root, "--out", refs, "--split", "train", "--saliency", root / "saliency")
        == 0
    )
    ids = read_split(root, "train")
    assert sorted(p.stem for p in refs.glob("*.png")) == sorted(ids)
    assert (
        _run("coarse", "--root", root, "--proxies", proxies, "--scores", scores, "--references", refs, *CPU)
        == 0
    )
    assert sorted(read_scores(scores)) == sorted(ids)
    assert (
        _run(
            "trainset",
            "--root",
            root,
            "--proxies",
            proxies,
            "--references",
            refs,
            "--out",
            samples,
            "--scores",
            scores,
            "--cutpaste_share",
            "0.5",
        )
        == 0
    )
    assert (samples / "samples.csv").is_file()
    tiny = ("--max_epochs", "1", "--model.input_size", "32", "--model.arch", "light", "--model.lr", "1e-3")
    assert (
        _run("train-scorer", "--samples", samples, "--out", ckpt, *tiny, "--val_fraction", "0.2", *CPU) == 0
    )
    best = capsys.readouterr().out.strip().splitlines()[-1].split("best checkpoint: ")[-1]
    assert Path(best).is_file()

    assert (
        _run("fine", "--root", root, "--proxies", proxies, "--checkpoint", best, "--scores", scores, *CPU)
        == 0
    )
    # a threshold inside the scores of this briefly trained scorer (their scale moves with the stack)
    tau = round(float(np.median([row["sf"] for row in read_scores(scores).values()])), 4)
    assert _run("select", "--scores", scores, "--tau", str(tau)) == 0
    rows = read_scores(scores)
    for row in rows.values():
        assert 0.0 < row["p"] < 1.0
        assert row["sf"] == pytest.approx(row["p"] * row["cd"], rel=1e-6)
        assert row["weight"] == float(row["sf"] >= tau)
    assert sum(row["weight"] for row in rows.values()) >= len(rows) / 2

    report = tmp_path / "report"
    assert _run("sweep", "--scores", scores, "--out", report, "--root", root, "--proxies", proxies) == 0
    assert "Correlation with the true AC" in (report / "report.md").read_text()
    assert (report / "correlations.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # any folder of pseudo-labels, one command, no pipeline
    folder_scores = tmp_path / "folder" / "scores.csv"
    folder_args = ("--checkpoint", best, "--scores", folder_scores, "--saliency", root / "saliency")
    assert _run("folder", "--root", root, "--proxies", proxies, *folder_args, "--tau", "0.4", *CPU) == 0
    folder_rows = read_scores(folder_scores)
    assert sorted(folder_rows) == sorted(ids)
    for image_id, row in folder_rows.items():
        assert all(not math.isnan(row[c]) for c in ("ac", "cd", "sc", "p", "sf", "weight"))
        assert row["p"] == pytest.approx(rows[image_id]["p"], abs=1e-5)
        assert row["weight"] == float(row["sf"] >= 0.4)

    # no checkpoint: the scorer is trained on the folder it scores (here the reference network)
    trained = tmp_path / "trained" / "scores.csv"
    own = ("--scores", trained, "--saliency", root / "saliency", "--scorer.max_epochs", "1")
    own += ("--scorer.model.input_size", "32")
    assert _run("folder", "--root", root, "--proxies", proxies, *own, "--tau", "0.4", *CPU) == 0
    trained_rows = read_scores(trained)
    assert sorted(trained_rows) == sorted(ids)
    assert all(0 <= r["p"] <= 1 and r["sf"] == pytest.approx(r["p"] * r["cd"]) for r in trained_rows.values())
    assert list((trained.parent / "scorer" / "checkpoints").glob("*.ckpt"))
    assert len(list((trained.parent / "references").glob("*.png"))) == len(ids)
    coarse_only = tmp_path / "coarse_only" / "scores.csv"
    assert (
        _run(
            "folder",
            "--root",
            root,
            "--proxies",
            proxies,
            "--scores",
            coarse_only,
            "--saliency",
            root / "saliency",
            "--scorer",
            "null",
            "--tau",
            "0.4",
            *CPU,
        )
        == 0
    )
    assert all(
        math.isnan(r["p"]) and r["weight"] == float(r["sc"] >= 0.4) for r in read_scores(coarse_only).values()
    )

    assert _run("select", "--scores", folder_scores, "--tau", "0.3", "--column", "sc") == 0
    assert all(r["weight"] == float(r["sc"] >= 0.3) for r in read_scores(folder_scores).values())
    capsys.readouterr()
    assert (
        _run(
            "fine",
            "--root",
            root,
            "--proxies",
            proxies,
            "--checkpoint",
            tmp_path / "no.ckpt",
            "--scores",
            scores,
            *CPU,
        )
        == 2
    )
    assert "no.ckpt" in capsys.readouterr().err
    assert _run("references", "--root", tmp_path, "--out", refs) == 2
    assert "not a VOC root" in capsys.readouterr().err


def test_score_folder_writes_a_fresh_table(
    synthetic_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing scores.csv keeps nothing of its earlier run: no stale row, no old p / sf."""
    ids = read_split(synthetic_voc, "train")[:5]
    proxies, scores = tmp_path / "proxies", tmp_path / "scores.csv"
    make_corrupted_proxies(synthetic_voc, proxies, split=ids, seed=0, progress=False)
    earlier = {i: {"ac": 0.1, "cd": 1.0, "sc": 0.1, "p": 0.99, "sf": 0.99, "weight": 0.0} for i in ids}
    write_scores(scores, {**earlier, "synth_000011": {"sc": 0.5, "p": 0.9, "sf": 0.9, "weight": 1.0}})
    capsys.readouterr()
    args = ("--root", synthetic_voc, "--proxies", proxies, "--scores", scores, "--tau", "0.3")
    assert _run("folder", *args, "--saliency", synthetic_voc / "saliency", "--scorer", "null", *CPU) == 0
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
    args = ("--root", synthetic_voc, "--proxies", synthetic_voc / "SegmentationClassAug")
    assert _run("folder", *args, "--scores", blocker / "out" / "scores.csv") == 2
    err = capsys.readouterr().err
    assert "--scores: cannot write in" in err and "Not a directory" in err
    assert _run("references", "--root", synthetic_voc, "--out", blocker / "refs") == 2
    assert "--out: cannot write in" in capsys.readouterr().err


def test_every_action_shows_its_defaults_and_choices(capsys: pytest.CaptureFixture[str]) -> None:
    for action in ("references", "coarse", "trainset", "train-scorer", "fine", "select", "sweep", "folder"):
        with pytest.raises(SystemExit):
            _run(action, "--help")
        text = capsys.readouterr().out
        assert "default:" in text, action
    with pytest.raises(SystemExit):
        _run("select", "--help")
    assert "{hard,soft,score}" in capsys.readouterr().out


def test_score_folder_never_sees_the_ground_truth(
    synthetic_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every ground-truth folder deleted from a copy of the root: the same scores and weights."""
    import shutil

    from sal_lightning.data.layout import GT_DIRS

    proxies = tmp_path / "proxies"
    make_corrupted_proxies(
        synthetic_voc, proxies, split=read_split(synthetic_voc, "train"), seed=4, progress=False
    )
    blind = Path(shutil.copytree(synthetic_voc, tmp_path / "blind"))
    for folder in GT_DIRS:
        shutil.rmtree(blind / folder)
    tables = []
    for root in (synthetic_voc, blind):
        scores = tmp_path / root.name / "scores.csv"
        args = ("--root", root, "--proxies", proxies, "--scores", scores, "--saliency", root / "saliency")
        scorer = ("--scorer.max_epochs", "2", "--scorer.model.input_size", "32", "--keep", "0.5")
        assert _run("folder", *args, *scorer, *CPU) == 0
        tables.append(read_scores(scores))
    assert tables[0] == tables[1] and sum(r["weight"] for r in tables[0].values()) == 6
    assert "come from the ground-truth masks" not in capsys.readouterr().err  # tags from the XML


def test_settings_that_would_do_nothing_are_refused(
    synthetic_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scores = tmp_path / "scores.csv"
    write_scores(scores, {"a": {"sf": 0.9}, "b": {"sf": 0.0}})
    capsys.readouterr()
    assert _run("select", "--scores", scores, "--tau", "0.5", "--keep", "0.5") == 2
    assert "tau and keep: both are set (tau 0.5, keep 0.5)" in capsys.readouterr().err
    assert _run("select", "--scores", scores, "--keep", "0.5") == 0
    assert capsys.readouterr().out.startswith(
        "1 of 2 proxies selected (keep 0.5: threshold 0.9; 1 zero scores"
    )
    args = ("--root", synthetic_voc, "--proxies", synthetic_voc / "SegmentationClassAug", "--scores", scores)
    assert _run("folder", *args, "--checkpoint", tmp_path / "x.ckpt", "--scorer.method", "regression") == 2
    assert "checkpoint and scorer: a trained checkpoint scores the proxies" in capsys.readouterr().err
