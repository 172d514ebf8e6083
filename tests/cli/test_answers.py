"""Help and configuration errors answer before the heavy imports: each command runs in a fresh
process and reports which of torch, Lightning, smp and albumentations it imported.

What is checked is *that* they are not imported (timings belong to ``benchmarks/``): importing
them takes seconds, 30 on a loaded machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "lightning", "segmentation_models_pytorch", "albumentations", "torchmetrics")
RUN = """
import json, sys
from sal_lightning.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as done:
    code = done.code
heavy = [m for m in {heavy!r} if m in sys.modules]
sys.stderr.write("\\nHEAVY " + json.dumps({{"code": code, "heavy": heavy}}) + "\\n")
"""


def answer(*argv: str, cwd: Path | None = None) -> tuple[int, list[str], str, str]:
    """``sal-lightning ARGV`` in a fresh process: its exit code, the heavy modules it imported, its
    stdout and its stderr (without the report line)."""
    done = subprocess.run(
        [sys.executable, "-c", RUN.format(heavy=HEAVY), *argv], capture_output=True, text=True, cwd=cwd
    )
    err, _, report = done.stderr.rpartition("\nHEAVY ")
    result = json.loads(report)
    return int(result["code"] or 0), result["heavy"], done.stdout, err


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["data", "--help"],
        ["data", "synth", "--help"],
        ["data", "check", "--help"],
        ["data", "download", "--help"],
        ["score", "--help"],
        ["score", "references", "--help"],
        ["score", "coarse", "--help"],
        ["score", "fine", "--help"],
        ["score", "select", "--help"],
        ["score", "sweep", "--help"],
        ["score", "folder", "--help"],
        ["proxies", "--help"],
        ["pipeline", "--help"],
        ["demo", "--help"],
        ["demo", "--print_config"],
    ],
    ids=" ".join,
)
def test_help_answers_without_heavy_imports(argv: list[str]) -> None:
    code, heavy, out, err = answer(*argv)
    assert code == 0 and heavy == [], err
    assert "usage:" in out or "root:" in out  # the help, or the demo's configuration


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pipeline", "--root", "/nonexistent", "--workdir", "w"], "root /nonexistent: not a VOC root"),
        (
            ["pipeline", "--root", "r", "--workdir", "w", "--select.tau", "1.5"],
            "select: tau: expected a number",
        ),
        (["pipeline", "--root", "r", "--workdir", "w", "--selct.tau", "1"], "selct.tau"),
        (["pipeline", "--root", "r"], "workdir"),
        (["data", "check", "--root", "/nonexistent"], "not a VOC root"),
        (["data", "synth", "--out", "o", "--n_train", "many"], "n_train"),
        (["score", "select", "--scores", "/nonexistent/scores.csv"], "scores"),
        (["proxies", "--root", "/nonexistent", "--workdir", "w", "--cam_steps", "0"], "cam_steps"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_configuration_errors_answer_without_heavy_imports(
    argv: list[str], message: str, tmp_path: Path
) -> None:
    code, heavy, _, err = answer(*argv, cwd=tmp_path)
    assert code == 2 and heavy == [], err
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_an_invalid_yaml_file_is_named_with_its_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("select:\n  tau: 0.8\n retrain:\n  max_steps: 10\n")
    code, heavy, _, err = answer("pipeline", "--config", str(config), "--root", "r", "--workdir", "w")
    assert code == 2 and heavy == []
    assert f"{config}, line 3, column 2: not valid YAML" in err and len(err.strip().splitlines()) == 1
