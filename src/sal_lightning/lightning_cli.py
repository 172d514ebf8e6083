"""``sal-lightning fit | validate | test | predict --config FILE``: the Lightning trainer commands.

A :class:`~lightning.pytorch.cli.LightningCLI` in subclass mode for both the model and the data, so a
config names any LightningModule and LightningDataModule by class path::

    model:
      class_path: sal_lightning.SALSegmenter
      init_args: {backbone: deeplabv2_resnet101, lr: 1.0e-4}
    data:
      class_path: sal_lightning.data.VOCSegmentationDataModule
      init_args: {root: data/VOCdevkit/VOC2012}

Every run is seeded (``seed_everything``, a random seed when unset, written into the saved config),
and the resolved config is saved as ``config.yaml`` in the run's log directory (the logger's
versioned folder for CSV/TensorBoard, its ``save_dir`` for W&B, overwritten by the next run there)
and handed to every logger (for Weights & Biases it becomes the run's config, and the YAML is kept
in the run's files).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path

from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger

LIGHTNING_COMMANDS: dict[str, str] = {
    "fit": "Train a model (LightningCLI: --config FILE, --print_config, --help).",
    "validate": "Evaluate a model on the validation split (LightningCLI).",
    "test": "Evaluate a model on the test split, with multi-scale/flip/CRF inference (LightningCLI).",
    "predict": "Write one VOC-palette label PNG per image id (LightningCLI).",
}
"""The trainer subcommands this module serves -> their one-line help."""


class LoggerSaveConfigCallback(SaveConfigCallback):
    """Saves ``config.yaml`` in the trainer's log directory (Lightning's behaviour) and logs it.

    Every logger gets the resolved config as a nested dict under ``config`` (so a W&B run's config
    holds the full ``model``/``data``/``trainer`` settings); a W&B run also keeps the YAML file itself
    as ``files/config.lightning.yaml``. Runs on rank zero only.
    """

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        resolved = json.loads(self.parser.dump(self.config, skip_none=False, format="json"))
        for logger in trainer.loggers:
            logger.log_hyperparams({"config": resolved})
            if isinstance(logger, WandbLogger):
                path = Path(logger.experiment.dir) / "config.lightning.yaml"
                self.parser.save(self.config, str(path), skip_none=False, overwrite=True)


class SALLightningCLI(LightningCLI):
    """LightningCLI with sal-lightning's defaults: subclass mode for model and data, the config logged.

    The model owns its optimiser and schedule (``configure_optimizers``), so the CLI's automatic
    ``optimizer``/``lr_scheduler`` options are off.
    """

    def __init__(self, args: Sequence[str] | None = None, run: bool = True) -> None:
        super().__init__(
            model_class=LightningModule,
            datamodule_class=LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_callback=LoggerSaveConfigCallback,
            # versioned loggers (CSV, TensorBoard) never clash; W&B's and no logger's folder is shared
            # by every run, and each W&B run keeps its own copy of the config
            save_config_kwargs={"overwrite": True},
            auto_configure_optimizers=False,
            parser_kwargs={"prog": "sal-lightning"},
            args=None if args is None else list(args),
            run=run,
        )


def run_argv(command: str, argv: Sequence[str]) -> int:
    """Run ``sal-lightning <command> <argv...>`` through :class:`SALLightningCLI`; returns 0.

    ``command`` is one of :data:`LIGHTNING_COMMANDS`; ``argv`` are the remaining command-line words
    (``--config FILE``, ``--trainer.max_steps 10``, ``--help`` ...).
    """
    if command not in LIGHTNING_COMMANDS:
        raise ValueError(f"command: expected one of {', '.join(LIGHTNING_COMMANDS)}, got {command!r}")
    with warnings.catch_warnings():
        # the words come from our own command line, not a second source
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        SALLightningCLI(args=[command, *argv])
    return 0
