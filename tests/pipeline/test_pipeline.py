"""The whole pipeline through the ``sal-lightning pipeline`` command (``tests/conf/pipeline.yaml``):
killed mid-step and resumed, up to the fine scores, with imported proxies that change, and
configurations refused before any step runs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from sal_lightning.data.io import read_scores
from sal_lightning.data.layout import read_split
from sal_lightning.stages.corrupt import make_corrupted_proxies

CONF = Path(__file__).resolve().parents[1] / "conf" / "pipeline.yaml"


def _pipeline(root: Path, workdir: Path, proxies: Path, strong: Path, *extra: str | Path) -> list[str]:
    """``sal-lightning pipeline`` with ``tests/conf/pipeline.yaml`` on the synthetic root."""
    return [
        sys.executable,
        "-m",
        "sal_lightning",
        "pipeline",
        "--config",
        str(CONF),
        "--root",
        str(root),
        "--saliency",
        str(root / "saliency"),
        "--workdir",
        str(workdir),
        "--proxies",
        str(proxies),
        "--retrain.strong_ids",
        str(strong),
        *map(str, extra),
    ]


def _status(workdir: Path, step: str) -> str | None:
    try:
        return json.loads((workdir / "manifest.json").read_text())["steps"].get(step, {}).get("status")
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def test_pipeline_killed_mid_step_resumes_to_the_same_artefacts(synthetic_voc: Path, tmp_path: Path) -> None:
    proxies = tmp_path / "proxies"
    train = read_split(synthetic_voc, "train")
    make_corrupted_proxies(synthetic_voc, proxies, split=train, seed=0, progress=False)
    strong = tmp_path / "strong.txt"
    strong.write_text("\n".join(train[:2]) + "\n")
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    proc = subprocess.Popen(
        _pipeline(synthetic_voc, killed, proxies, strong),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    while _status(killed, "retrain-P3") != "running" and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the pipeline ended before it could be killed mid-step"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = json.loads((killed / "manifest.json").read_text())["steps"]
    assert before["retrain-P3"]["status"] == "running" and before["retrain-P2"]["status"] == "done"

    subprocess.run(
        _pipeline(synthetic_voc, killed, proxies, strong), env=env, check=True, capture_output=True
    )
    subprocess.run(_pipeline(synthetic_voc, clean, proxies, strong), env=env, check=True, capture_output=True)

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
    # what ran, from the configuration that ran it (tests/conf/pipeline.yaml)
    assert "Evaluation: single scale 1, no flip, dense CRF." in report
    assert "Fine scorer: method `regression` (MaskScorer), 1 epochs, batch 8" in report
    assert re.search(
        r"\| P4, P5: refined \(SF\) \| keep 0.5 \| [\d.]+ \| 6 \| 50.0 \| \d+ \| 6.0 \| [\d.]+ \| 31.2 ",
        report,
    )
    assert re.search(r"\| oracle: P4's weights by true quality \| - \| - \| 6 \| 50.0 \|", report)
    assert not list(killed.rglob("*.tmp*")) and not list(killed.rglob("*.partial*"))


def test_until_fine_with_the_reference_scorer(synthetic_voc: Path, tmp_path: Path) -> None:
    """``--until fine`` with ``--scorer.method agreement``: SC and SF for every proxy, nothing after;
    the scorer's settings given as flags (the keys of the configuration)."""
    proxies = tmp_path / "proxies"
    train = read_split(synthetic_voc, "train")
    make_corrupted_proxies(synthetic_voc, proxies, split=train, seed=3, progress=False)
    (tmp_path / "strong.txt").write_text(train[0] + "\n")
    work = tmp_path / "work"
    scorer = ("--scorer", "{method: agreement, model: {input_size: 32}, max_epochs: 2, batch_size: 4}")
    command = _pipeline(synthetic_voc, work, proxies, tmp_path / "strong.txt", *scorer, "--until", "fine")
    subprocess.run(command, check=True, capture_output=True)
    rows = read_scores(work / "fine" / "scores.csv")
    assert sorted(rows) == sorted(train)
    assert all(
        0 <= r["sc"] <= 1 and 0 <= r["sf"] <= 1 and r["sf"] == pytest.approx(r["p"] * r["cd"])
        for r in rows.values()
    )
    steps = json.loads((work / "manifest.json").read_text())["steps"]
    assert list(steps) == ["proxies", "references", "coarse", "scorer", "fine"]
    assert steps["scorer"]["result"]["method"] == "agreement"


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

    proxies, work = tmp_path / "proxies", tmp_path / "work"
    train = read_split(synthetic_voc, "train")
    make_corrupted_proxies(synthetic_voc, proxies, split=train, seed=0, progress=False)
    base = ("--config", CONF, "--root", synthetic_voc, "--workdir", work, "--proxies", proxies)
    source, copy = proxies / f"{train[0]}.png", work / "step1" / "proxies" / f"{train[0]}.png"

    first = cli(*base, "--only", "proxies")
    assert first.returncode == 0, first.stderr
    assert re.search(r"\[ 1/\d+\] proxies: done in .*: imported 12", first.stdout)
    assert np.array_equal(read_label_png(copy), read_label_png(source))
    assert re.search(r"^proxies +done +took ", cli(*base, "--list_steps").stdout, re.M)

    write_label_png(source, np.zeros_like(read_label_png(source)))  # the user replaces one proxy
    assert re.search(r"^proxies +changed ", cli(*base, "--list_steps").stdout, re.M)
    assert cli(*base, "--no_resume", "--only", "proxies").returncode == 0
    assert not read_label_png(copy).any()  # the new one, not the old copy

    Image.fromarray(np.full((64, 64), 99, np.uint8), mode="L").save(source)  # a broken proxy...
    failed = cli(*base, "--only", "proxies")
    assert failed.returncode == 2 and f"{train[0]}.png: label values must be 0..20" in failed.stderr
    write_label_png(source, np.ones((64, 64), np.uint8))  # ...fixed
    assert cli(*base, "--only", "proxies").returncode == 0
    assert (read_label_png(copy) == 1).all()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ("--retrain.model.backbone", "resnet_nope"),
            r"^retrain-P2: model: name: expected .*got 'resnet_nope'",
        ),
        (
            ("--retrain.model.backbon", "x"),
            r"^retrain: model: unknown setting\(s\) \['backbon'\]; SALSegmenter",
        ),
        (
            ("--retrain.model.use_attention", "false"),
            r"model: \['use_attention'\] are set by the step itself",
        ),
        (
            ("--retrain.data.batchsize", "4"),
            r"data: unknown setting\(s\) \['batchsize'\]; VOCSegmentationDataModule",
        ),
        (
            ("--retrain.data.batch_size", "-1"),
            r"^retrain-P2: data: batch_size and eval_batch_size must be >= 1",
        ),
        (("--retrain.max_steps", "0"), r"^retrain: max_steps: expected an integer >= 1, got 0"),
        (("--select.tau", "1.5"), r"^select: tau: expected a number in \[0, 1\], got 1.5"),
        (("--select.keep", "0"), r"^select: keep: expected a number in \(0, 1\], got 0"),
        (("--select.tau", "0.8"), r"^select: tau and keep: both are set \(tau 0.8, keep 0.5\)"),
        (("--select.mode", "score"), r"^select: keep: mode 'score' weighs every proxy by its score"),
        (("--select.temperature", "0.1"), r"^select: temperature: only mode 'soft' uses it"),
        (("--coarse.batch_size", "-8"), r"^coarse: batch_size: expected an integer >= 1"),
        (("--scorer.model.widths", "x"), r"^scorer: model: unknown setting"),
        (("--proxies.cam_backbone", "nope"), r"^proxies: cam_backbone: name: expected"),
        (("--proxies.cam_step", "3"), r"proxies.*cam_step"),
        (("--evaluate.test_scales", "[]"), r"^evaluate: test_scales: expected one or more positive numbers"),
        (("--trainer.devices", "0"), r"^trainer: devices: expected a number >= 1"),
        (
            ("--proxies.cam_steps", "2"),
            r"^proxies: saliency: step 1 seeds the background .*--saliency FOLDER",
        ),
        (
            ("--trainer.batch_sizes", "global", "--trainer.devices", "3"),
            r"^scorer: batch_size: the global batch 8 \(trainer.batch_sizes: global\) does not split over 3 "
            r"device\(s\) x 1 accumulated batch\(es\); .*accumulate_grad_batches.*batch_sizes: per_device",
        ),
        (
            ("--trainer.batch_sizes", "global", "--trainer.accumulate_grad_batches", "8"),
            r"^retrain-P2: data.batch_size: the global batch 4 \(trainer.batch_sizes: global\)",
        ),
    ],
)
def test_a_bad_configuration_fails_before_any_step(
    synthetic_voc: Path, tmp_path: Path, cli: Callable[..., Ran], flags: tuple[str, ...], message: str
) -> None:
    (tmp_path / "strong.txt").write_text("synth_000000\n")
    argv = ["--config", CONF, "--root", synthetic_voc, "--workdir", tmp_path / "work"]
    argv += ["--retrain.strong_ids", tmp_path / "strong.txt"]
    if not flags[0].startswith("--proxies"):
        argv += ["--proxies", synthetic_voc / "SegmentationClassAug"]
    run = cli(*argv, *flags)
    error = run.stderr.strip().removeprefix("sal-lightning pipeline: error: ")
    assert run.returncode == 2 and len(error.splitlines()) == 1 and re.search(message, error), run.stderr
    assert not (tmp_path / "work" / "manifest.json").exists()  # no step ran


def test_an_unwritable_workdir_fails_before_any_step(
    synthetic_voc: Path, tmp_path: Path, cli: Callable[..., Ran]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    run = cli(
        "--config",
        CONF,
        "--root",
        synthetic_voc,
        "--workdir",
        blocker / "work",
        "--proxies",
        synthetic_voc / "SegmentationClassAug",
    )
    assert (
        run.returncode == 2 and "workdir: cannot write in" in run.stderr and "Not a directory" in run.stderr
    )


def test_the_oracle_without_ground_truth_fails_before_any_step(
    synthetic_voc: Path, tmp_path: Path, cli: Callable[..., Ran]
) -> None:
    import shutil

    root = tmp_path / "root"
    shutil.copytree(synthetic_voc, root)
    train = read_split(root, "train")
    for folder in ("SegmentationClass", "SegmentationClassAug"):
        (root / folder / f"{train[0]}.png").unlink(missing_ok=True)
    run = cli(
        "--config",
        CONF,
        "--root",
        root,
        "--workdir",
        tmp_path / "work",
        "--proxies",
        synthetic_voc / "SegmentationClassAug",
        "--retrain.strong_ids",
        "null",
    )
    assert run.returncode == 2 and "'oracle' ranks proxies by their true quality" in run.stderr, run.stderr
    assert not (tmp_path / "work" / "manifest.json").exists()


def test_a_selection_that_keeps_too_few_fails_at_select_before_any_retraining(
    synthetic_voc: Path, tmp_path: Path, cli: Callable[..., Ran]
) -> None:
    """Paper-style thresholds (tau, not keep) that keep nothing on this score scale: ``select``
    fails with exit 2, naming the ``keep`` setting of the paper's Table IV share; nothing retrains."""
    work = tmp_path / "work"
    run = cli(
        "--config",
        CONF,
        "--root",
        synthetic_voc,
        "--workdir",
        work,
        "--proxies",
        synthetic_voc / "SegmentationClassAug",
        "--retrain.strong_ids",
        "null",
        "--select.keep",
        "null",
        "--select.tau",
        "1.0",
        "--select.tau_coarse",
        "1.0",
    )
    last = run.stderr.strip().splitlines()[-1]  # after the progress bars of the steps that ran
    error = last.removeprefix("sal-lightning pipeline: error: ")
    assert run.returncode == 2 and error != last and run.stderr.count("error:") == 1, run.stderr
    assert re.search(r"^select: the .* selection \(tau 1 on S[CF]\) keeps \d+ of 12 proxies", error), error
    assert re.search(r"below min_share 0.05; the paper's Table IV keeps .*`keep(_coarse)?: 0\.3[14]`", error)
    steps = json.loads((work / "manifest.json").read_text())["steps"]
    assert steps["select"]["status"] == "failed" and not any(name.startswith("retrain") for name in steps)
    assert not (work / "scores.csv").exists()


def _without_ground_truth(root: Path, out: Path) -> Path:
    """A copy of ``root`` with every ground-truth folder deleted."""
    import shutil

    from sal_lightning.data.layout import GT_DIRS

    copy = Path(shutil.copytree(root, out))
    for folder in GT_DIRS:
        shutil.rmtree(copy / folder)
    return copy


def test_up_to_select_nothing_sees_the_ground_truth_and_the_soft_oracle_matches_p4(
    synthetic_voc: Path, tmp_path: Path, cli: Callable[..., Ran]
) -> None:
    """The pipeline up to ``select`` gives the same SC, SF and selections with every ground-truth
    folder deleted; with ground truth, ``select: {keep: 0.6, mode: soft}`` gives the oracle the same
    total weight as P4."""
    proxies = tmp_path / "proxies"
    make_corrupted_proxies(
        synthetic_voc, proxies, split=read_split(synthetic_voc, "train"), seed=2, progress=False
    )
    blind = _without_ground_truth(synthetic_voc, tmp_path / "blind")
    flags = ("--select.keep", "0.6", "--select.mode", "soft", "--retrain.variants", "[P2, P3, P4]")
    for root, work in ((synthetic_voc, tmp_path / "seen"), (blind, tmp_path / "unseen")):
        run = cli(
            "--config",
            CONF,
            "--root",
            root,
            "--saliency",
            root / "saliency",
            "--workdir",
            work,
            "--proxies",
            proxies,
            *flags,
            "--until",
            "select",
        )
        assert run.returncode == 0, run.stderr
    seen, unseen = tmp_path / "seen", tmp_path / "unseen"
    for table in ("coarse/scores.csv", "fine/scores.csv", "scores.csv", "selection/coarse.csv"):
        assert read_scores(seen / table) == read_scores(unseen / table), table
    assert not (unseen / "selection" / "oracle.csv").exists()
    p4, oracle = read_scores(seen / "scores.csv"), read_scores(seen / "selection" / "oracle.csv")
    assert 0 < sum(r["weight"] for r in p4.values()) < len(p4)
    assert sum(r["weight"] for r in oracle.values()) == pytest.approx(sum(r["weight"] for r in p4.values()))
    assert sorted(r["weight"] for r in oracle.values()) == pytest.approx(
        sorted(r["weight"] for r in p4.values())
    )
    summary = json.loads((seen / "selection" / "summary.json").read_text())
    assert summary["oracle"]["weight"] == pytest.approx(summary["sf"]["weight"])
    assert summary["sf"]["selected"] == min(8, 12 - summary["sf"]["zeros"])  # ceil(0.6 x 12), zeros never
    assert "selection sf (keep 0.6, soft (temperature 0.05)): threshold" in run.stdout
