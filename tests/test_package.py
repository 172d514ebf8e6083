"""The package's surface: version, command line, lazy imports, shared helpers."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import sal_lightning
from sal_lightning._atomic import atomic_path, atomic_write_text
from sal_lightning._checks import check_tensor
from sal_lightning.cli import main


def test_version_from_module_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sal_lightning", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"sal-lightning {sal_lightning.__version__}"


def test_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "usage: sal-lightning" in capsys.readouterr().out


def test_unknown_subcommand_is_an_error() -> None:
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2


def test_bad_input_is_an_error_message_not_a_traceback(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["pipeline", "--config", str(missing), "--workdir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sal-lightning pipeline: error: --config:") and "nope.yaml not found" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("root: data\nretrian: {}\n")
    assert main(["pipeline", "--config", str(bad), "--workdir", str(tmp_path / "w")]) == 2
    assert "unknown settings ['retrian']" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()  # nothing written for a configuration that was refused


def test_building_blocks_do_not_import_lightning() -> None:
    code = (
        "import sys, sal_lightning.losses, sal_lightning.nn, sal_lightning.scoring\n"
        "from sal_lightning import SelectionLoss, AttentionLoss\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_top_level_name() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        _ = sal_lightning.NoSuchThing  # type: ignore[attr-defined]


def test_check_tensor_binds_symbols_across_tensors() -> None:
    dims: dict[str, int] = {}
    check_tensor(torch.zeros(2, 21, 5, 6), "logits", "B K H W", "float", dims)
    check_tensor(torch.zeros(2, 5, 6, dtype=torch.long), "target", "B H W", "int", dims)
    with pytest.raises(ValueError, match=r"target: expected shape \[B, H, W\]"):
        check_tensor(torch.zeros(2, 5, 7, dtype=torch.long), "target", "B H W", "int", dims)
    with pytest.raises(ValueError, match="target: expected a tensor"):
        check_tensor(torch.zeros(2, 5, 6), "target", "B H W", "int", dims)
    with pytest.raises(ValueError, match="got list"):
        check_tensor([1, 2], "x", "N")
    with pytest.raises(ValueError, match="expected a tensor"):
        check_tensor(torch.zeros(3, 4), "image", "3 H W")


def test_atomic_write_replaces_only_on_success(tmp_path) -> None:
    target = tmp_path / "sub" / "scores.csv"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["scores.csv"]
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".csv"
        tmp.write_text("new")
    assert target.read_text() == "new"
