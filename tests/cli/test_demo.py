"""``sal-lightning demo --fast``: the whole pipeline (step 1 included) on the built-in data."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _demo(workdir: Path, *extra: str) -> str:
    command = [sys.executable, "-m", "sal_lightning", "demo", "--fast", "--workdir", str(workdir), *extra]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    for banner in ("GPU available", "TPU available", "Tip:"):  # Lightning's, once per Trainer: silenced
        assert banner not in done.stdout + done.stderr
    return done.stdout


def test_fast_demo_runs_every_step_and_a_rerun_redoes_nothing(tmp_path: Path) -> None:
    out = _demo(tmp_path)
    assert re.search(r"^\[ 1/12\] proxies: started at \d\d:\d\d:\d\d$", out, re.M)
    assert re.search(r"^\[12/12\] report: done in .*: P1 [0-9.]+, P2 ", out, re.M)
    run = tmp_path / "run"
    manifest = json.loads((run / "manifest.json").read_text())["steps"]
    assert list(manifest) == [
        "proxies",
        "references",
        "coarse",
        "scorer",
        "fine",
        "select",
        "retrain-P2",
        "retrain-P3",
        "retrain-P4",
        "retrain-P5",
        "evaluate",
        "report",
    ]
    assert all(record["status"] == "done" for record in manifest.values())
    for column in ("sf", "sc"):  # every selection keeps its share: ceil(0.6 x 24) = 15, zeros never
        kept = manifest["select"]["result"][column]
        assert kept["of"] == 24 and kept["selected"] == min(15, 24 - kept["zeros"]), kept
        assert re.search(
            rf"selection {column} \(keep 0.6\): threshold \S+ selects {kept['selected']} of 24", out
        )
    results = json.loads((run / "evaluation" / "results.json").read_text())
    assert set(results) == {"P1", "P2", "P3", "P4", "P5"}
    assert all(0.0 <= v <= 1.0 for runs in results.values() for v in runs.values())
    report = (run / "report.md").read_text()
    for row in ("| P1 | step 1 network", "| P2 |", "| P5 | refined selection + attention loss"):
        assert row in report and row in out  # the demo prints the report
    assert "## Scorer quality (Fig. 9)" in report and "## Threshold sweep (Table IV)" in report
    for figure in ("correlations.png", "tau_sweep.png", "overlays.png"):
        assert (run / "figures" / figure).stat().st_size > 1000
    ids = (tmp_path / "data" / "ImageSets" / "Segmentation" / "train.txt").read_text().split()
    assert sorted(p.stem for p in (run / "step1" / "proxies").glob("*.png")) == sorted(ids)

    _demo(tmp_path)  # resume: every step is finished with the same configuration
    again = json.loads((run / "manifest.json").read_text())["steps"]
    assert {k: v["finished"] for k, v in again.items()} == {k: v["finished"] for k, v in manifest.items()}
    listing = _demo(tmp_path, "--list_steps")
    assert re.search(r"^retrain-P3 +done +took [0-9.]+ (s|min)", listing, re.M)
    _demo(tmp_path, "--only", "select")  # a new selection: what reads it is stale, P2 (all proxies) is not
    listing = _demo(tmp_path, "--list_steps")
    for step, status in [("retrain-P2", "done"), ("retrain-P3", "stale"), ("retrain-P5", "stale")]:
        assert re.search(rf"^{step} +{status} ", listing, re.M), listing
    assert re.search(r"^evaluate +stale ", listing, re.M) and re.search(r"^references +done ", listing, re.M)
    report = (run / "report.md").read_text()
    assert "built-in synthetic data, difficulty realistic, seed 0" in report
    assert "Measured with sal-lightning" in report and "torch " in report and "lightning " in report


def test_the_fast_demo_selects_on_other_data_seeds(tmp_path: Path) -> None:
    """Step 1 of the fast demo trains long enough to leave proxies worth selecting on other data
    (with 30 steps, data seeds 1-3 left every proxy empty and failed at select)."""
    _demo(tmp_path, "--seed", "3", "--until", "select")
    selected = json.loads((tmp_path / "run" / "manifest.json").read_text())["steps"]["select"]["result"]
    for column in ("sf", "sc"):
        assert selected[column]["of"] - selected[column]["zeros"] >= 5, selected[column]
        assert selected[column]["selected"] == min(15, 24 - selected[column]["zeros"])


def test_ctrl_c_exits_130_and_the_manifest_says_interrupted(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "sal_lightning", "demo", "--fast", "--workdir", str(tmp_path)]
    command += ["--proxies.cam_steps", "5000"]  # step 1 trains long enough to be stopped inside the loop
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "proxies: started" in line:
            break
    time.sleep(4.0)  # inside Trainer.fit by now: Lightning's own Ctrl-C handling
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "sal-lightning demo: interrupted (exit code 130)" in err
    record = json.loads((tmp_path / "run" / "manifest.json").read_text())["steps"]["proxies"]
    assert record["status"] == "interrupted"
    assert not (tmp_path / "run" / ".lock").exists()


def test_the_demo_runs_one_thread_unless_the_user_chose(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sal_lightning.cli.pipeline import pin_demo_threads

    environ = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS") and "SAL_" not in k}
    monkeypatch.setattr(os, "environ", environ)  # nothing set; the real environment stays untouched
    pin_demo_threads()
    assert environ["SAL_LIGHTNING_THREADS"] == "1" and "one torch thread" in capsys.readouterr().out
    del environ["SAL_LIGHTNING_THREADS"]
    environ["OMP_NUM_THREADS"] = "2"  # the user's choice is left alone
    pin_demo_threads()
    assert "SAL_LIGHTNING_THREADS" not in environ and capsys.readouterr().out == ""
    environ["SAL_LIGHTNING_THREADS"] = "auto"
    del environ["OMP_NUM_THREADS"]
    pin_demo_threads()
    assert environ["SAL_LIGHTNING_THREADS"] == "auto"
