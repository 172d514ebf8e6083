"""The Trainer settings checked against this machine before any work; the Trainer factory's progress."""

from __future__ import annotations

import pytest
import torch

from sal_lightning.callbacks.progress import ProgressLines
from sal_lightning.stages.trainer import TrainerOptions, check_accelerator, cpu_processes, make_trainer

NO_GPU = not torch.cuda.is_available()


@pytest.mark.skipif(not NO_GPU, reason="checks the answer on a machine without a GPU")
@pytest.mark.parametrize("accelerator", ["gpu", "cuda"])
def test_a_gpu_asked_for_on_a_machine_without_one_names_the_fix(accelerator: str) -> None:
    with pytest.raises(
        ValueError,
        match=rf"trainer.accelerator: '{accelerator}' is not available on this machine; use --trainer.acc",
    ):
        check_accelerator(accelerator, 1)
    with pytest.raises(ValueError, match="not available"):
        TrainerOptions(accelerator=accelerator).check()


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
    user = make_trainer(TrainerOptions(enable_progress_bar=True), progress=True)
    assert user.progress_bar_callback is not None
    assert not [c for c in user.callbacks if isinstance(c, ProgressLines)]
