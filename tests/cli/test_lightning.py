"""``sal-lightning fit | validate | test | predict --config FILE`` through LightningCLI."""

from __future__ import annotations

import re
from pathlib import Path

import lightning.pytorch  # noqa: F401  (its log handler binds to the real stderr, not to a test's capture)
import pytest
import torch
import yaml

from sal_lightning.cli import main
from sal_lightning.data.io import read_label_png

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "examples" / "configs"
# every segmenter config, alone or on top of the one it amends
CONFIG_STACKS = [
    ("synthetic_tiny.yaml",),
    ("voc_vgg16.yaml",),
    ("voc_resnet101.yaml",),
    ("voc_vgg16.yaml", "voc_vgg16_released.yaml"),
    ("voc_resnet101.yaml", "wandb.yaml"),
    ("coco_resnet101.yaml",),
]


def tiny_overrides(voc: Path, out: Path) -> list[str]:
    """Shrink examples/configs/synthetic_tiny.yaml to a few seconds on the test data."""
    return [
        f"--data.init_args.root={voc}",
        "--data.init_args.crop_size=32",
        "--data.init_args.batch_size=4",
        "--data.init_args.eval_batch_size=3",
        "--model.init_args.backbone_kwargs={encoder_depth: 3, decoder_channels: 8}",
        "--model.init_args.test_scales=[1.0]",
        "--trainer.max_steps=2",
        "--trainer.limit_train_batches=2",
        "--trainer.check_val_every_n_epoch=1",
        "--trainer.log_every_n_steps=1",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={out}",
        f"--trainer.logger.init_args.save_dir={out}",
        f"--trainer.callbacks.init_args.output_dir={out / 'predictions'}",
    ]


def test_fit_then_validate_test_and_predict_from_the_checkpoint(synthetic_voc: Path, tmp_path: Path) -> None:
    config = str(ROOT / "examples" / "configs" / "synthetic_tiny.yaml")
    overrides = tiny_overrides(synthetic_voc, tmp_path)
    assert main(["fit", "--config", config, *overrides]) == 0

    run_dir = tmp_path / "synthetic_tiny" / "version_0"
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())  # the resolved config, with the seed
    assert saved["seed_everything"] == 0
    assert saved["model"]["class_path"].endswith("SALSegmenter")
    assert saved["model"]["init_args"]["lambda_atten"] == 2.0
    assert saved["trainer"]["max_steps"] == 2
    metrics = (run_dir / "metrics.csv").read_text().splitlines()
    assert "val/mIoU" in metrics[0] and "train/loss_atten" in metrics[0]
    checkpoint = next((run_dir / "checkpoints").glob("*.ckpt"))

    for command in ("validate", "predict"):
        args = [command, "--config", config, *overrides, f"--ckpt_path={checkpoint}"]
        args.append(f"--trainer.logger.init_args.name={command}")  # a run folder of its own
        assert main(args) == 0
    val_ids = (synthetic_voc / "ImageSets" / "Segmentation" / "val.txt").read_text().split()
    written = sorted(p.stem for p in (tmp_path / "predictions").glob("*.png"))
    assert written == sorted(val_ids)
    assert read_label_png(tmp_path / "predictions" / f"{val_ids[0]}.png").shape == (64, 64)


@pytest.mark.parametrize("stack", CONFIG_STACKS, ids="+".join)
def test_example_configs_parse(stack: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    args = [word for name in stack for word in ("--config", str(CONFIG_DIR / name))]
    with pytest.raises(SystemExit) as info:
        main(["fit", *args, "--print_config"])
    assert info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    model = printed["model"]["init_args"]
    assert printed["seed_everything"] == 0
    if "voc_vgg16.yaml" in stack:
        assert (model["backbone"], model["lr"], printed["trainer"]["max_steps"]) == (
            "vgg16_aspp",
            1e-3,
            27000,
        )
    if "voc_resnet101.yaml" in stack:
        assert (model["backbone"], model["lr"], printed["trainer"]["max_steps"]) == (
            "deeplabv2_caffe_resnet101",
            1e-4,
            15000,
        )
        assert model["encoder_weights"] == "coco"  # parses without the file: the run looks for it
    if "voc_vgg16_released.yaml" in stack:
        assert (model["attention_refine"], model["branch_combine"], model["test_fuse"]) == (
            False,
            "released",
            "max",
        )
    if "coco_resnet101.yaml" in stack:
        assert (model["backbone"], printed["data"]["init_args"]["crop_size"]) == ("deeplabv2_resnet101", 321)
        assert printed["trainer"]["max_steps"] == 100000 and model["num_classes"] is None  # from classes.txt
    if "wandb.yaml" in stack:
        assert printed["trainer"]["logger"]["class_path"].endswith("WandbLogger")


def test_every_example_config_is_exercised() -> None:
    segmenter = {p.name for p in CONFIG_DIR.glob("*.yaml") if "SALSegmenter" in p.read_text()}
    assert {name for stack in CONFIG_STACKS for name in stack} == segmenter | {"wandb.yaml"}


def test_help_names_the_trainer_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in ("fit", "validate", "test", "predict"):
        assert command in out
    assert main(["fit", "--config", str(ROOT / "no-such.yaml")]) == 2


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["--config", "no-such.yaml"], r"File does not exist: .*no-such.yaml"),
        (["--model.init_args.backbon=x"], r"SALSegmenter: Option 'backbon' is not accepted"),
        (["--devices", "2"], r"unrecognized arguments: --devices 2; .* prefix: --trainer.devices"),
    ],
)
def test_trainer_command_errors_are_one_line_with_exit_code_2(
    words: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config", str(CONFIG_DIR / "synthetic_tiny.yaml")] if "--config" not in words else []
    assert main(["fit", *config, *words]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("sal-lightning fit: error: ")
    assert re.search(message, err) and "sal-lightning fit --help" in err


def test_short_fit_saves_a_checkpoint_and_reports_val_miou(
    synthetic_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fit that stops before its first validation (check_val_every_n_epoch: 5) still validates once
    and leaves a checkpoint; predict says where it wrote."""
    config = str(CONFIG_DIR / "synthetic_tiny.yaml")
    overrides = [o for o in tiny_overrides(synthetic_voc, tmp_path) if "check_val_every" not in o]
    assert main(["fit", "--config", config, *overrides]) == 0
    last = tmp_path / "synthetic_tiny" / "version_0" / "checkpoints" / "last.ckpt"
    assert last.is_file()
    out = capsys.readouterr().out
    assert re.search(rf"fit finished: 2 steps; val/mIoU \d+\.\d%; checkpoint: {re.escape(str(last))}", out)
    assert main(["predict", "--config", config, *overrides, f"--ckpt_path={last}"]) == 0
    assert f"predict finished: 6 label PNGs in {tmp_path / 'predictions'}" in capsys.readouterr().out


def test_the_library_classes_by_their_short_names(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["fit", "--model", "SALSegmenter", "--data", "VOCSegmentationDataModule", "--print_config"])
    assert info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"] == "sal_lightning.SALSegmenter"
    assert printed["data"]["class_path"] == "sal_lightning.VOCSegmentationDataModule"
    with pytest.raises(SystemExit):
        main(["fit", "--model.help", "SALSegmenter"])
    assert "--model.backbone" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = capsys.readouterr().out
    for name in ("SALSegmenter", "MaskScorer", "VOCSegmentationDataModule", "MaskScorerDataModule"):
        assert name in text
    assert "<class '" not in text  # group titles read as words


def test_the_data_is_checked_before_the_model_is_built(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config whose model downloads ImageNet weights stops on the missing data first, without
    building the model (offline, the download alone retries for a minute)."""
    from sal_lightning.models.segmenter import SALSegmenter

    built: list[str] = []
    original = SALSegmenter.__init__

    def spy(self: SALSegmenter, *args: object, **kwargs: object) -> None:
        built.append("model")
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SALSegmenter, "__init__", spy)
    config = str(CONFIG_DIR / "voc_resnet101.yaml")
    assert main(["fit", "--config", config, "--data.init_args.root", "/nonexistent/VOC2012"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        len(err.splitlines()) == 1 and "data.init_args.root: root /nonexistent/VOC2012: not a VOC root" in err
    )
    assert built == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the answer on a machine without a GPU")
def test_an_accelerator_this_machine_lacks_fails_before_anything_is_built(
    synthetic_voc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(CONFIG_DIR / "synthetic_tiny.yaml")
    argv = ["fit", "--config", config, f"--data.init_args.root={synthetic_voc}", "--trainer.accelerator=gpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "trainer.accelerator: 'gpu' is not available on this machine" in err


def test_a_model_that_cannot_be_built_is_one_line_naming_the_setting(
    synthetic_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(CONFIG_DIR / "synthetic_tiny.yaml")
    argv = ["fit", "--config", config, f"--data.init_args.root={synthetic_voc}"]
    argv += [f"--model.init_args.encoder_weights={tmp_path / 'missing.pth'}"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Union subtypes" not in err and len(err) < 400
    assert "model (SALSegmenter): encoder_weights: no such file" in err
    assert "set model.init_args.encoder_weights to a local weights file, or null" in err
