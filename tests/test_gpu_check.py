"""``benchmarks/gpu_check.py`` (``nox -s gpu``) stays runnable: its CPU dry run measures every part,
and without CUDA its default run stops at once with one line."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_the_dry_run_measures_every_part_and_writes_the_tables(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--out", str(tmp_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    rows = {(r["network"], r["precision"]) for r in report["train"]}
    assert rows == {(n, p) for n in ("DeepLab v2", "P2", "P5") for p in ("fp32", "bf16")}
    assert all(r["steps_per_s"] > 0 and math.isfinite(r["last_loss"]) for r in report["train"])
    assert all(r["images_per_s"] == r["steps_per_s"] * 2 for r in report["train"])  # the tiny batch
    loop = report["loop"][0]
    assert loop["devices"] == 1 and loop["steps_per_s"] > 0 and math.isfinite(loop["loss"])
    assert [r["what"] for r in report["inference"]][-2:] == [
        "dense CRF, 1 process",
        f"dense CRF, pool of {os.cpu_count()}",
    ]
    assert all(r["images_per_s"] > 0 for r in report["inference"])
    assert [r["precision"] for r in report["scorer"]] == ["fp32", "bf16"]
    markdown = (tmp_path / "gpu_check.md").read_text()
    assert markdown.startswith("GPU check: CPU") and "| P5 | bf16 |" in markdown
    assert "SALSegmenter: global batch 2 = 2 per device x 1 device" in done.stdout


def test_without_cuda_it_stops_at_once_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and not any(tmp_path.iterdir())
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no CUDA device is visible to torch")
    assert "--device cpu --tiny" in lines[0]
