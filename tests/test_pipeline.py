"""The SAL-Net pipeline: configuration -> steps, selection thresholds, the report's verdict, and the
whole pipeline through the ``sal-lightning pipeline`` command, killed mid-step and resumed."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from sal_lightning.data.io import read_scores
from sal_lightning.pipeline.config import build_steps
from sal_lightning.pipeline.report import ablation_table, verdict
from sal_lightning.pipeline.steps import ImportProxies, MakeProxies, Retrain, summarise, threshold_for


def test_build_steps_orders_the_four_steps() -> None:
    steps = build_steps({"root": "voc", "retrain": {"variants": ["P2", "P5"], "seeds": [0, 1]}})
    assert [s.name for s in steps] == [
        "proxies",
        "references",
        "coarse-scores",
        "scorer",
        "fine-scores",
        "select",
        "retrain-P2",
        "retrain-P5",
        "evaluate",
        "report",
    ]
    first = steps[0]
    assert isinstance(first, MakeProxies) and first.overrides == {"train_split": "train_aug"}
    retrain = steps[7]
    assert isinstance(retrain, Retrain) and retrain.seeds == (0, 1) and retrain.inputs()[-1] == "scores.csv"
    assert steps[6].inputs() == ("step1/proxies",)  # P2 trains on every proxy


def test_build_steps_imports_a_proxy_folder() -> None:
    steps = build_steps({"root": "voc", "train_split": "train", "proxies": {"import": "my/labels"}})
    assert (
        isinstance(steps[0], ImportProxies) and steps[0].folder == "my/labels" and steps[0].split == "train"
    )
    assert "step1" not in steps[-2].inputs()  # no P1 without the step 1 network


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "'root'"),
        ({"root": "v", "retrian": {}}, r"unknown settings \['retrian'\]"),
        ({"root": "v", "select": {"tua": 0.5}}, r"section 'select'.*settings are \[.*'tau'"),
        ({"root": "v", "scorer": [1, 2]}, "section 'scorer': expected a mapping"),
        ({"root": "v", "retrain": {"variants": ["P9"]}}, "variant: expected one of"),
        ({"root": "v", "proxies": {"import": "x", "preset": "paper"}}, "'import' takes no other settings"),
    ],
)
def test_bad_configurations_say_what_is_wrong(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_steps(config)


def test_threshold_for_keep_share_and_fixed_tau() -> None:
    values = [0.9, 0.1, math.nan, 0.5, 0.7]
    assert threshold_for(values, 0.85, None) == 0.85
    assert threshold_for(values, 0.85, 0.5) == 0.7  # the best 2 of 4 finite scores
    assert threshold_for(values, 0.85, 1.0) == 0.1
    with pytest.raises(ValueError, match="keep"):
        threshold_for(values, 0.85, 0.0)


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
    assert verdict({"P3": summary["P3"]}).startswith("P2 was not run")


def _tiny_config(root: Path, strong_ids: Path) -> dict[str, Any]:
    return {
        "root": str(root),
        "train_split": "train",
        "val_split": "val",
        "saliency_dir": str(root / "saliency"),
        "trainer": {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False},
        "references": {"workers": 0},
        "coarse": {"batch_size": 6},
        "scorer": {
            "model": {"arch": "light", "input_size": 32, "lr": 1e-3},
            "max_epochs": 1,
            "batch_size": 8,
        },
        "select": {"keep": 0.5},
        "retrain": {
            "variants": ["P2", "P3", "P5", "oracle"],
            "seeds": [0],
            "max_steps": 3,
            "model": {
                "backbone": "deeplabv3_resnet18",
                "backbone_kwargs": {"encoder_depth": 3, "decoder_channels": 16},
                "lr": 0.01,
            },
            "data": {"crop_size": 48, "batch_size": 4, "num_workers": 0},
            "strong_ids": str(strong_ids),  # the semi-supervised setting: their ground truth, weight 1
        },
        "evaluate": {"test_scales": [1.0], "crf": True, "batch_size": 6},
        "report": {"overlays": 2},
    }


def _pipeline(config: Path, workdir: Path, proxies: Path) -> list[str]:
    return [
        sys.executable, "-m", "sal_lightning", "pipeline", "--config", str(config),
        "--workdir", str(workdir), "--proxies", str(proxies),
    ]  # fmt: skip


def _status(workdir: Path, step: str) -> str | None:
    try:
        return json.loads((workdir / "manifest.json").read_text())["steps"].get(step, {}).get("status")
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def test_pipeline_killed_mid_step_resumes_to_the_same_artefacts(synthetic_voc: Path, tmp_path: Path) -> None:
    from sal_lightning.data.layout import read_split
    from sal_lightning.scoring.corruption import make_corrupted_proxies

    proxies = tmp_path / "proxies"
    train = read_split(synthetic_voc, "train")
    make_corrupted_proxies(synthetic_voc, train, proxies, seed=0, progress=False)
    strong = tmp_path / "strong.txt"
    strong.write_text("\n".join(train[:2]) + "\n")
    config = tmp_path / "pipeline.yaml"
    config.write_text(yaml.safe_dump(_tiny_config(synthetic_voc, strong)))
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    proc = subprocess.Popen(_pipeline(config, killed, proxies), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 600
    while _status(killed, "retrain-P3") != "running" and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the pipeline ended before it could be killed mid-step"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = json.loads((killed / "manifest.json").read_text())["steps"]
    assert before["retrain-P3"]["status"] == "running" and before["retrain-P2"]["status"] == "done"

    subprocess.run(_pipeline(config, killed, proxies), env=env, check=True, capture_output=True)
    subprocess.run(_pipeline(config, clean, proxies), env=env, check=True, capture_output=True)

    after = json.loads((killed / "manifest.json").read_text())["steps"]
    for name, record in before.items():
        if record["status"] == "done":  # nothing finished was redone
            assert after[name]["finished"] == record["finished"], name
    assert all(r["status"] == "done" for r in after.values())
    assert read_scores(killed / "scores.csv") == read_scores(clean / "scores.csv")
    results = json.loads((killed / "evaluation" / "results.json").read_text())
    assert results == json.loads((clean / "evaluation" / "results.json").read_text())
    assert set(results) == {"P2", "P3", "P5", "oracle"}
    coarse = read_scores(killed / "selection" / "coarse.csv")
    selected = {i for i, row in coarse.items() if row["weight"] > 0}
    assert 0 < len(selected) < len(train)
    assert after["retrain-P3"]["result"]["seed0"]["images"] == len(selected | set(train[:2]))
    assert after["retrain-P2"]["result"]["seed0"]["images"] == len(train)
    # the oracle keeps as many proxies as the SF selection, the best by their true mIoU
    oracle = read_scores(killed / "selection" / "oracle.csv")
    kept = {i for i, row in oracle.items() if row["weight"] > 0}
    assert len(kept) == sum(row["weight"] > 0 for row in read_scores(killed / "scores.csv").values())
    assert after["select"]["result"]["oracle"]["selected"] == len(kept)
    assert after["retrain-oracle"]["result"]["seed0"]["images"] == len(kept | set(train[:2]))
    for variant in results:
        folder = Path("evaluation") / variant / "seed0"
        pngs = sorted(p.name for p in (clean / folder).glob("*.png"))
        assert len(pngs) == 6
        assert all((killed / folder / n).read_bytes() == (clean / folder / n).read_bytes() for n in pngs)
    report = (killed / "report.md").read_text()
    assert "| P3 | coarse selection (SC) |" in report and (killed / "figures" / "overlays.png").is_file()
    assert "| oracle | oracle selection" in report and "oracle mIoU at that count (%)" in report
    assert not list(killed.rglob("*.tmp*")) and not list(killed.rglob("*.partial*"))


def test_until_fine_scores_with_the_reference_scorer(synthetic_voc: Path, tmp_path: Path) -> None:
    """``--until fine-scores`` with ``scorer.method: reference``: SC and SF for every proxy, nothing after."""
    from sal_lightning.data.layout import read_split
    from sal_lightning.scoring.corruption import make_corrupted_proxies

    proxies = tmp_path / "proxies"
    train = read_split(synthetic_voc, "train")
    make_corrupted_proxies(synthetic_voc, train, proxies, seed=3, progress=False)
    config = _tiny_config(synthetic_voc, tmp_path / "strong.txt")
    (tmp_path / "strong.txt").write_text(train[0] + "\n")
    config["scorer"] = {"method": "reference", "model": {"input_size": 32}, "max_epochs": 2, "batch_size": 4}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    work = tmp_path / "work"
    subprocess.run(
        [*_pipeline(path, work, proxies), "--until", "fine-scores"], check=True, capture_output=True
    )
    rows = read_scores(work / "fine" / "scores.csv")
    assert sorted(rows) == sorted(train)
    assert all(
        0 <= r["sc"] <= 1 and 0 <= r["sf"] <= 1 and r["sf"] == pytest.approx(r["p"] * r["cd"])
        for r in rows.values()
    )
    steps = json.loads((work / "manifest.json").read_text())["steps"]
    assert list(steps) == ["proxies", "references", "coarse-scores", "scorer", "fine-scores"]
    assert steps["scorer"]["result"]["method"] == "reference"


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """``cli(*words)``: ``sal-lightning pipeline <words>`` through the entry function, with its output."""
    from sal_lightning.cli import main

    def run(*args: str | Path) -> Ran:
        capsys.readouterr()
        code = main(["pipeline", *map(str, args)])
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def test_imported_proxies_follow_their_source_folder(
    synthetic_voc: Path, tmp_path: Path, cli: Callable[..., Ran]
) -> None:
    """After the user replaces pseudo-labels in --proxies DIR, a rerun uses the new ones."""
    from PIL import Image

    from sal_lightning.data.io import read_label_png, write_label_png
    from sal_lightning.data.layout import read_split
    from sal_lightning.scoring.corruption import make_corrupted_proxies

    proxies, work = tmp_path / "proxies", tmp_path / "work"
    train = read_split(synthetic_voc, "train")
    make_corrupted_proxies(synthetic_voc, train, proxies, seed=0, progress=False)
    config = tmp_path / "pipeline.yaml"
    config.write_text(yaml.safe_dump({**_tiny_config(synthetic_voc, tmp_path), "retrain": {}}))
    base = ("--config", config, "--workdir", work, "--proxies", proxies)
    source, copy = proxies / f"{train[0]}.png", work / "step1" / "proxies" / f"{train[0]}.png"

    first = cli(*base, "--only", "proxies")
    assert first.returncode == 0, first.stderr
    assert re.search(r"\[ 1/\d+\] proxies: done in .*: imported 12", first.stdout)
    assert np.array_equal(read_label_png(copy), read_label_png(source))
    assert re.search(r"^proxies +done +took ", cli(*base, "--list-steps").stdout, re.M)

    write_label_png(source, np.zeros_like(read_label_png(source)))  # the user replaces one proxy
    assert re.search(r"^proxies +changed ", cli(*base, "--list-steps").stdout, re.M)
    assert cli(*base, "--no-resume", "--only", "proxies").returncode == 0
    assert not read_label_png(copy).any()  # the new one, not the old copy

    Image.fromarray(np.full((64, 64), 99, np.uint8), mode="L").save(source)  # a broken proxy...
    failed = cli(*base, "--only", "proxies")
    assert failed.returncode == 2 and f"{train[0]}.png: label values must be 0..20" in failed.stderr
    write_label_png(source, np.ones((64, 64), np.uint8))  # ...fixed
    assert cli(*base, "--only", "proxies").returncode == 0
    assert (read_label_png(copy) == 1).all()


def _with(config: dict[str, Any], section: str, key: str, value: Any) -> dict[str, Any]:
    """``config`` with ``section[.sub].key`` set (``section`` may be ``"retrain.model"``)."""
    out = yaml.safe_load(yaml.safe_dump(config))
    node = out
    for part in section.split("."):
        node = node.setdefault(part, {})
    node[key] = value
    return out


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("retrain.model", "backbone", "resnet_nope", r"retrain-P2: model: name: expected .*got 'resnet_nope'"),
        (
            "retrain.model",
            "backbon",
            "x",
            r"retrain-P2: model: unknown setting\(s\) \['backbon'\]; SALSegmenter",
        ),
        ("retrain.model", "use_attention", False, r"model: \['use_attention'\] are set by the step itself"),
        (
            "retrain.data",
            "batchsize",
            4,
            r"data: unknown setting\(s\) \['batchsize'\]; VOCSegmentationDataModule",
        ),
        ("retrain.data", "batch_size", -1, r"retrain-P2: data: batch_size and eval_batch_size must be >= 1"),
        ("retrain", "max_steps", 0, r"retrain-P2: max_steps: expected an integer >= 1, got 0"),
        ("select", "tau", 1.5, r"select: tau: expected a number in \[0, 1\], got 1.5"),
        ("select", "keep", 0, r"select: keep: expected a number in \(0, 1\], got 0"),
        ("coarse", "batch_size", -8, r"coarse-scores: batch_size: expected an integer >= 1"),
        ("scorer", "model", {"widths": "x"}, r"scorer: model: "),
        ("proxies", "overrides", {"cam_backbone": "nope"}, r"proxies: cam_backbone: name: expected"),
        (
            "proxies",
            "overrides",
            {"cam_step": 3},
            r"proxies: overrides: .*cam_step.*the settings of step 1 are",
        ),
        ("evaluate", "test_scales", [], r"evaluate: test_scales: expected one or more positive numbers"),
    ],
)
def test_a_bad_configuration_fails_before_any_step(
    synthetic_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str, key: str,
    value: Any, message: str,
) -> None:  # fmt: skip
    from sal_lightning.cli import main

    config = _with(_tiny_config(synthetic_voc, tmp_path / "strong.txt"), section, key, value)
    (tmp_path / "strong.txt").write_text("synth_000000\n")
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    argv = ["pipeline", "--config", str(path), "--workdir", str(tmp_path / "work")]
    if section != "proxies":
        argv += ["--proxies", str(synthetic_voc / "SegmentationClassAug")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err
    assert not (tmp_path / "work" / "manifest.json").exists()  # no step ran


def test_an_unwritable_workdir_fails_before_any_step(
    synthetic_voc: Path, tmp_path: Path, cli: Callable[..., Ran]
) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text(yaml.safe_dump({**_tiny_config(synthetic_voc, tmp_path), "retrain": {}}))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    run = cli(
        "--config", config, "--workdir", blocker / "work", "--proxies", synthetic_voc / "SegmentationClassAug"
    )
    assert (
        run.returncode == 2 and "workdir: cannot write in" in run.stderr and "Not a directory" in run.stderr
    )


def test_overlays_carry_a_class_colour_legend(synthetic_voc: Path, tmp_path: Path) -> None:
    from PIL import Image

    from sal_lightning.data.io import read_label_png
    from sal_lightning.data.voc import VOC_PALETTE
    from sal_lightning.pipeline.report import plot_overlays

    ids = ["synth_000012", "synth_000013"]
    gt = synthetic_voc / "SegmentationClassAug"
    path = plot_overlays(str(synthetic_voc), ids, {"P2": gt}, tmp_path / "overlays.png")
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
    from sal_lightning.scoring.reports import sweep_table, write_report

    rows = [{"tau": 0.5, "selected": 3.0, "fraction": 0.75, "mean_true_ac": 0.8, "miou": 0.625}]
    table = sweep_table(rows)
    assert (
        table.splitlines()[0] == "| tau | selected | selected (%) | mean true AC | mIoU of the selected (%) |"
    )
    assert table.splitlines()[2] == "| 0.50 | 3 | 75.0 | 0.800 | 62.5 |"
    write_scores(tmp_path / "scores.csv", {f"i{k}": {"sf": k / 4} for k in range(4)})
    write_report(tmp_path / "scores.csv", tmp_path / "report", taus=(0.5,))
    assert "| 0.50 | 2 | 50.0 |" in (tmp_path / "report" / "report.md").read_text()
