"""The Trainer factory: global batches on N devices, the line every training prints, final losses,
the accelerator checked before any work, progress lines."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from sal_lightning.callbacks.progress import ProgressLines
from sal_lightning.stages.retrain import RetrainSettings, retrain
from sal_lightning.stages.trainer import TrainerSettings, check_accelerator, cpu_processes, make_trainer

NO_GPU = not torch.cuda.is_available()
TINY = {"backbone": "deeplabv3_resnet18", "backbone_kwargs": {"encoder_depth": 3, "decoder_channels": 8}}


def test_world_size_counts_devices_and_nodes() -> None:
    assert TrainerSettings(devices=2, num_nodes=3).world_size() == 6
    assert TrainerSettings(devices="0,1").world_size() == 2
    assert TrainerSettings(devices="3").world_size() == 3
    assert TrainerSettings(accelerator="cpu", devices="auto").world_size() == 1  # as Lightning resolves it


def test_global_batches_are_divided_or_refused_with_the_ways_out() -> None:
    per_device = TrainerSettings(devices=4)
    assert per_device.local_batch(7) == 7  # Lightning's convention: 7 on each of 4 devices
    assert TrainerSettings(devices=2, batch_sizes="global").local_batch(8) == 4
    assert (
        TrainerSettings(devices=2, num_nodes=2, accumulate_grad_batches=2, batch_sizes="global").local_batch(
            8
        )
        == 1
    )
    assert TrainerSettings(accumulate_grad_batches=7, batch_sizes="global").local_batch(7) == 1
    with pytest.raises(ValueError) as error:
        TrainerSettings(devices=2, batch_sizes="global").local_batch(7, "data.batch_size")
    message = str(error.value)
    assert message.startswith(
        "data.batch_size: the global batch 7 (trainer.batch_sizes: global) does not split"
    )
    assert "divisible by 2" in message and "accumulate_grad_batches" in message
    assert "batch_sizes: per_device (then 7 per device, a global batch of 14)" in message
    with pytest.raises(ValueError, match="batch_sizes: expected 'per_device' or 'global', got 'total'"):
        TrainerSettings(batch_sizes="total")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="accumulate_grad_batches: expected an integer >= 1, got 0"):
        TrainerSettings(accumulate_grad_batches=0)


def test_a_retraining_prints_its_global_batch_and_reports_its_loss(
    synthetic_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A global batch of 4 over 2 accumulated batches: 2 images per step on the one device, one line
    naming the split and the learning rates, and the last step's finite loss in the result."""
    settings = RetrainSettings(
        seeds=(0,),
        max_steps=2,
        model={**TINY, "lr": 0.01},
        data={"crop_size": 32, "batch_size": 4, "num_workers": 0},
    )
    options = TrainerSettings(
        accelerator="cpu", accumulate_grad_batches=2, batch_sizes="global", enable_progress_bar=False
    )
    proxies = synthetic_voc / "SegmentationClassAug"  # any folder of label PNGs
    result = retrain(
        synthetic_voc, proxies, out=tmp_path / "P2", settings=settings, train_split="train", trainer=options
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if "global batch" in line]
    assert len(lines) == 1, lines
    assert re.fullmatch(
        r"SALSegmenter: global batch 4 = 2 per device x 1 device x 1 node x 2 accumulated; "
        r"lr 0\.01 \(groups 0\.01, 0\.1, 0\.2\)",
        lines[0],
    ), lines[0]
    run = result["seed0"]
    assert run["steps"] == 2 and run["images"] == 12 and math.isfinite(run["loss"]) and run["loss"] > 0


@pytest.mark.skipif(not NO_GPU, reason="checks the answer on a machine without a GPU")
@pytest.mark.parametrize("accelerator", ["gpu", "cuda"])
def test_a_gpu_asked_for_on_a_machine_without_one_names_the_fix(accelerator: str) -> None:
    with pytest.raises(
        ValueError,
        match=rf"trainer.accelerator: '{accelerator}' is not available on this machine; use --trainer.acc",
    ):
        check_accelerator(accelerator, 1)
    with pytest.raises(ValueError, match="not available"):
        TrainerSettings(accelerator=accelerator).check()


def test_more_devices_than_the_machine_has_and_unknown_names() -> None:
    if not NO_GPU:
        count = torch.cuda.device_count()
        with pytest.raises(ValueError, match=rf"{count + 1} gpu devices asked for, this machine has {count}"):
            check_accelerator("gpu", count + 1)
    with pytest.raises(ValueError, match="trainer.accelerator: expected one of .*cpu.*gpu.*got 'gpus'"):
        check_accelerator("gpus", 1)
    check_accelerator("cpu", 4)  # CPU DDP: any number of processes
    check_accelerator("auto", 8)


def test_cpu_processes_count_the_ddp_ranks_sharing_the_cpus() -> None:
    assert cpu_processes("cpu", 3) == 3 and cpu_processes("cpu", 1) == 1 and cpu_processes("cpu", "auto") == 1
    assert cpu_processes("gpu", 4) == 1


def test_the_factory_shows_progress_lines_unless_the_user_chose_a_bar() -> None:
    lines = [c for c in make_trainer(progress="seed 1").callbacks if isinstance(c, ProgressLines)]
    assert len(lines) == 1 and lines[0].task == "seed 1"
    assert not make_trainer().progress_bar_callback  # no progress asked for: no bar either
    user = make_trainer(TrainerSettings(enable_progress_bar=True), progress=True)
    assert user.progress_bar_callback is not None
    assert not [c for c in user.callbacks if isinstance(c, ProgressLines)]
