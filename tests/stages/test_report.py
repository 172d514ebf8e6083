"""The reports: the pipeline's ablation table and verdict, its figures, and the tau sweep tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sal_lightning.stages.evaluate import summarise
from sal_lightning.stages.report import ablation_table, plot_overlays, verdict
from sal_lightning.stages.sweep import sweep_report, sweep_table


def test_summary_and_verdict() -> None:
    runs = {"P2": {"seed0": 0.50, "seed1": 0.54}, "P5": {"seed0": 0.60, "seed1": 0.62}, "P3": {"seed0": 0.52}}
    summary = summarise(runs)
    assert summary["P2"]["mean"] == pytest.approx(0.52) and summary["P2"]["std"] == pytest.approx(
        0.0282843, 1e-5
    )
    text = verdict(summary)
    assert "P5 (refined selection + attention loss) improves on P2: +9.0 points" in text
    assert "P3 (coarse selection (SC)) is within" not in text  # one seed: no spread to compare with
    table = ablation_table(summary, runs)
    assert "| P2 | retrain on all proxies | 52.0 ± 2.8 | 2 | 50.0, 54.0 | 62.2 |" in table
    oracle = ablation_table(summarise({"oracle": {"seed0": 0.7}}), {"oracle": {"seed0": 0.7}})
    assert oracle.endswith("| 70.0 | 1 | 70.0 | - |")  # the paper has no oracle row
    assert verdict({"P3": summary["P3"]}).startswith("P2 was not run")


def test_overlays_carry_a_class_colour_legend(synthetic_voc: Path, tmp_path: Path) -> None:
    from PIL import Image

    from sal_lightning.data.io import read_label_png
    from sal_lightning.data.voc import VOC_PALETTE

    ids = ["synth_000012", "synth_000013"]
    gt = synthetic_voc / "SegmentationClassAug"
    path = plot_overlays(str(synthetic_voc), ids, columns={"P2": gt}, path=tmp_path / "overlays.png")
    figure = np.asarray(Image.open(path).convert("RGB"))
    labels = {int(v) for i in ids for v in np.unique(read_label_png(gt / f"{i}.png"))} - {0}
    is_class = np.zeros(figure.shape[:2], bool)
    for label in labels:
        is_class |= (figure == VOC_PALETTE[label]).all(-1)
    rows = np.nonzero(is_class.any(1))[0]
    bottom = rows[-1]
    top = bottom
    while top - 1 in set(rows.tolist()):
        top -= 1
    assert bottom - top < 40  # the lowest coloured band is a row of legend swatches, not a mask panel
    band = figure[top : bottom + 1]
    for label in labels:
        assert (band == VOC_PALETTE[label]).all(-1).any(), label  # a swatch for each class shown


def test_sweep_tables_give_shares_and_miou_in_percent(tmp_path: Path) -> None:
    """One unit across the pipeline's report and `score sweep`: shares and mIoU in %, scores in 0..1."""
    from sal_lightning.data.io import write_scores

    rows = [{"tau": 0.5, "selected": 3.0, "fraction": 0.75, "mean_true_ac": 0.8, "miou": 0.625}]
    table = sweep_table(rows)
    assert (
        table.splitlines()[0] == "| tau | selected | selected (%) | mean true AC | mIoU of the selected (%) |"
    )
    assert table.splitlines()[2] == "| 0.50 | 3 | 75.0 | 0.800 | 62.5 |"
    write_scores(tmp_path / "scores.csv", {f"i{k}": {"sf": k / 4} for k in range(4)})
    sweep_report(tmp_path / "scores.csv", tmp_path / "report", taus=(0.5,))
    assert "| 0.50 | 2 | 50.0 |" in (tmp_path / "report" / "report.md").read_text()


def test_the_report_says_what_ran_and_the_papers_shares() -> None:
    from sal_lightning.stages.evaluate import describe_inference
    from sal_lightning.stages.report import inference_line, scorer_line
    from sal_lightning.stages.sweep import selection_table

    used = {"test_scales": [0.5, 0.75, 1.0], "test_fuse": "mean", "test_flip": False, "crf": True}
    assert describe_inference(used) == "scales 0.5, 0.75, 1 fused by mean, no flip, dense CRF"
    single = {"test_scales": [1.0], "test_fuse": "max", "test_flip": True, "crf": False}
    assert describe_inference(single) == "single scale 1, fused with its flipped copy, no CRF"
    same = {"P2": {"seed0": used, "seed1": used}, "P4": {"seed0": used}}
    assert inference_line(same) == "Evaluation: scales 0.5, 0.75, 1 fused by mean, no flip, dense CRF."
    mixed = inference_line({"P2": {"seed0": used}, "P4": {"seed0": single}})
    assert mixed.startswith("Evaluation: P2: scales") and "P4: single scale 1" in mixed
    trained = {"method": "agreement", "network": "AgreementNet", "max_epochs": 10, "batch_size": 16}
    line = scorer_line({**trained, "samples": 400})
    assert (
        line == "Fine scorer: method `agreement` (AgreementNet), 10 epochs, batch 16, 400 training samples."
    )

    summary = {
        "sf": {
            "threshold": 0.466,
            "selected": 240,
            "of": 400,
            "weight": 240.0,
            "zeros": 3,
            "rule": "keep 0.6",
            "mean_true_miou": 0.75,
        },
        "sc": {
            "threshold": 0.8,
            "selected": 50,
            "of": 400,
            "weight": 50.0,
            "zeros": 3,
            "rule": "tau 0.8",
            "mean_true_miou": 0.7,
        },
        "oracle": {"selected": 240, "weight": 240.0, "mean_true_miou": 0.8},
        "all": {"of": 400, "mean_true_miou": 0.65},
    }
    table = selection_table(summary).splitlines()
    assert (
        table[2] == "| P3: coarse (SC) | tau 0.8 | 0.800 | 50 | 12.5 | 3 | 50.0 | 70.0 | 34.4 (SC >= 0.8) |"
    )
    assert table[3] == (
        "| P4, P5: refined (SF) | keep 0.6 | 0.466 | 240 | 60.0 | 3 | 240.0 | 75.0 | "
        "31.2 (ResNet-101, SF >= 0.85); 71.7 (VGG16, SF >= 0.55) |"
    )
    assert table[4].startswith("| oracle: P4's weights by true quality | - | - | 240 | 60.0 |")
    assert table[5] == "| all proxies (P2) | - | - | 400 | 100.0 | - | 400.0 | 65.0 | - |"
