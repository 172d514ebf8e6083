"""The package's surface: version, command line, lazy imports, shared helpers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
    assert err.startswith('sal-lightning pipeline: error: Parser key "config"') and "nope.yaml" in err
    assert len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("root: data\nretrian: {}\n")
    assert main(["pipeline", "--config", str(bad), "--workdir", str(tmp_path / "w")]) == 2
    assert "unknown settings ['retrian']" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()  # nothing written for a configuration that was refused


def test_check_writable_refuses_a_read_only_folder(tmp_path) -> None:
    import os

    from sal_lightning._atomic import check_writable

    if os.name == "posix" and os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
    else:  # root writes anywhere on a normal file system; /sys is read-only even for root
        folder = Path("/sys/sal-lightning-write-test")
    try:
        with pytest.raises(PermissionError, match=r"--out: cannot write in .*choose a writable folder"):
            check_writable(folder, "--out")
    finally:
        if folder.is_relative_to(tmp_path):
            folder.chmod(0o755)
    assert check_writable(tmp_path / "new" / "folder", "--out") == tmp_path / "new" / "folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["read-only"] * (folder.parent == tmp_path)
    # nothing created, the probe is gone


def test_tracebacks_only_when_asked_for(tmp_path, monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["data", "check", "--root", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not a VOC root" in err
    with pytest.raises(FileNotFoundError, match="not a VOC root"):
        main([*args, "--traceback"])
    monkeypatch.setenv("SAL_LIGHTNING_TRACEBACK", "1")
    with pytest.raises(FileNotFoundError):
        main(args)


def test_a_missing_extra_is_one_line_naming_the_install_command(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pydensecrf not installed (a stand-in that fails to import): one line, exit code 2."""
    blocker = tmp_path / "block" / "pydensecrf"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named pydensecrf')\n")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from sal_lightning.cli import main; "
        "raise SystemExit(main(['demo', '--fast', '--workdir', sys.argv[2]]))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "block"), str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install "sal-lightning[crf]"' in lines[0], run.stderr
    assert not (tmp_path / "demo" / "run" / "manifest.json").exists()  # refused before any step


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
    check_tensor(torch.zeros(2, 21, 5, 6), "logits", "B K H W", "float", dims=dims)
    check_tensor(torch.zeros(2, 5, 6, dtype=torch.long), "target", "B H W", "int", dims=dims)
    with pytest.raises(ValueError, match=r"target: expected shape \[B, H, W\]"):
        check_tensor(torch.zeros(2, 5, 7, dtype=torch.long), "target", "B H W", "int", dims=dims)
    with pytest.raises(ValueError, match="target: expected a tensor"):
        check_tensor(torch.zeros(2, 5, 6), "target", "B H W", "int", dims=dims)
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
