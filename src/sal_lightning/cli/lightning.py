"""``sal-lightning fit | validate | test | predict --config FILE``: the Lightning trainer commands.

A LightningCLI in subclass mode for both the model and the data, so a config names any
LightningModule and LightningDataModule by class path; the library's own (:data:`MODELS`,
:data:`DATAMODULES`) also by their short names, and ``fit --help`` lists them::

    model:
      class_path: SALSegmenter          # or sal_lightning.SALSegmenter
      init_args: {backbone: deeplabv2_resnet101, lr: 1.0e-4}
    data:
      class_path: VOCSegmentationDataModule
      init_args: {root: data/VOCdevkit/VOC2012}

    sal-lightning fit --model SALSegmenter --data VOCSegmentationDataModule --print_config
    sal-lightning fit --model.help SALSegmenter

Before any class is built (so before a network's weights are downloaded), the data's paths are
checked (``root``, unless ``download: true``; ``proxies``, ``scores``, ``saliency``, ``samples``)
and the accelerator and devices against this machine; the torch threads are chosen then.

Every run is seeded (``seed_everything``, a random seed when unset, written into the saved config),
and the resolved config is saved as ``config.yaml`` in the run's log directory (the logger's
versioned folder for CSV/TensorBoard, its ``save_dir`` for W&B, overwritten by the next run there)
and handed to every logger (for Weights & Biases it becomes the run's config, and the YAML is kept
in the run's files).

The class list comes from the data: when the model has a ``num_classes`` setting (K, background
included) left unset, it is the DataModule's root's (its ``classes.txt``, VOC's 21 without one), and
an unset ``class_names`` becomes that file's names, so a config for a COCO root (81 classes) names
neither; a model given another count stops at ``setup`` with the fix.

What a run leaves and says: ``fit`` always saves a checkpoint of its last step (``save_last`` on
the checkpoint callbacks that do not set it), runs a validation at the end when none ran during
training (a short ``--trainer.max_steps``), and ends with one line giving the steps, ``val/mIoU``
and the checkpoint's path; ``predict`` ends with where it wrote. A bad option or config value is
reported as one line (see :mod:`sal_lightning.cli.main`), not as the parser's usage text.
"""

from __future__ import annotations

import argparse
import importlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path

from jsonargparse import Namespace
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from sal_lightning._threads import apply_threads
from sal_lightning.callbacks.writers import SegmentationPredictionWriter
from sal_lightning.cli.errors import parser_error_line
from sal_lightning.cli.help import SentenceHelpFormatter
from sal_lightning.data.layout import resolve_voc_root, root_classes
from sal_lightning.stages.trainer import check_accelerator, cpu_processes

LIGHTNING_COMMANDS: tuple[str, ...] = ("fit", "validate", "test", "predict")
"""The trainer subcommands this module serves."""
#: the library's LightningModules, known to the CLI by their short names
MODELS: dict[str, str] = {
    "SALSegmenter": "sal_lightning.models.segmenter",
    "MaskScorer": "sal_lightning.models.scorer",
    "AgreementNet": "sal_lightning.models.agreement_net",
    "CAMClassifier": "sal_lightning.models.cam",
    "ProxyNet": "sal_lightning.models.proxy",
}
#: the library's LightningDataModules, known to the CLI by their short names
DATAMODULES: dict[str, str] = {
    "VOCSegmentationDataModule": "sal_lightning.data.datamodules",
    "VOCClassificationDataModule": "sal_lightning.data.datamodules",
    "MaskScorerDataModule": "sal_lightning.data.datamodules",
}
#: data settings that name a file or folder which must exist before a run starts
DATA_PATHS: tuple[str, ...] = ("proxies", "scores", "saliency", "samples", "cls_labels", "strong_ids")


def register() -> None:
    """Import :data:`MODELS` and :data:`DATAMODULES`: jsonargparse resolves a short class name
    among the imported subclasses of ``LightningModule`` / ``LightningDataModule``."""
    for module in {*MODELS.values(), *DATAMODULES.values()}:
        importlib.import_module(module)


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
        register()
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
            parser_kwargs={
                "prog": "sal-lightning",
                "exit_on_error": False,
                "formatter_class": SentenceHelpFormatter,
            },
            args=None if args is None else list(args),
            run=run,
        )

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        check_data(config)
        trainer = config.get("trainer") or Namespace()
        accelerator, devices = trainer.get("accelerator", "auto"), trainer.get("devices", "auto")
        check_accelerator(accelerator, devices)
        fill_classes_from_data(config)

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer = config.get("trainer") or Namespace()
        apply_threads(cpu_processes(trainer.get("accelerator", "auto"), trainer.get("devices", "auto")))

    def before_fit(self) -> None:
        for callback in self.trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.save_last is None:
                callback.save_last = True  # a short run still leaves a checkpoint of its last step

    def after_fit(self) -> None:
        trainer = self.trainer
        if "val/mIoU" not in trainer.callback_metrics and _has_val_data(trainer):
            trainer.validate(self.model, datamodule=self.datamodule)  # prints the validation table
        miou = trainer.callback_metrics.get("val/mIoU")
        checkpoint = next(
            (
                c.last_model_path or c.best_model_path
                for c in trainer.checkpoint_callbacks
                if isinstance(c, ModelCheckpoint)
            ),
            "",
        )
        parts = [f"{trainer.global_step} steps"]
        if miou is not None:
            parts.append(f"val/mIoU {100 * float(miou):.1f}%")
        parts.append(
            f"checkpoint: {checkpoint}" if checkpoint else "no checkpoint saved (checkpointing is off)"
        )
        _say("fit finished: " + "; ".join(parts))

    def after_predict(self) -> None:
        callbacks = getattr(self.trainer, "callbacks", [])
        writers = [c for c in callbacks if isinstance(c, SegmentationPredictionWriter)]
        for writer in writers:
            count = len(list(writer.output_dir.glob("*.png")))
            _say(f"predict finished: {count} label PNGs in {writer.output_dir}")
        if not writers:
            _say(
                "predict finished; no prediction writer is configured, so nothing was written: add "
                "sal_lightning.callbacks.SegmentationPredictionWriter to trainer.callbacks"
            )


def check_data(config: Namespace) -> None:
    """Raise ``FileNotFoundError`` naming the setting when the data's root (unless ``download``) or a
    file or folder it names (:data:`DATA_PATHS`) does not exist: before the model is built."""
    data = config.get("data")
    args = data.get("init_args") if isinstance(data, Namespace) else None
    if not isinstance(args, Namespace):
        return
    root = args.get("root")
    if isinstance(root, str) and not args.get("download"):
        try:
            resolve_voc_root(root)
        except FileNotFoundError as err:
            raise FileNotFoundError(f"data.init_args.root: {err}") from err
    for key in DATA_PATHS:
        value = args.get(key)
        if isinstance(value, str) and not Path(value).expanduser().exists():
            raise FileNotFoundError(f"data.init_args.{key}: {value} not found")


def fill_classes_from_data(config: Namespace) -> None:
    """Set the model's unset ``num_classes`` (and ``class_names``) from the data root's class list.

    ``config``: a parsed LightningCLI config (``model`` / ``data`` with ``class_path`` and
    ``init_args``). Nothing changes when the model has no such setting, the data no ``root``, or
    the root is still to be downloaded (then VOC's 21 classes, the models' default).
    """
    model, data = config.get("model"), config.get("data")
    args = model.get("init_args") if isinstance(model, Namespace) else None
    root = data.get("init_args", Namespace()).get("root") if isinstance(data, Namespace) else None
    if not isinstance(args, Namespace) or "num_classes" not in args or root is None:
        return
    if not Path(root).expanduser().exists():
        return
    classes = root_classes(root)
    if args.get("num_classes") is None:
        args["num_classes"] = len(classes)
    if "class_names" in args and args.get("class_names") is None and args["num_classes"] == len(classes):
        args["class_names"] = list(classes)


@rank_zero_only
def _say(line: str) -> None:
    print(line, flush=True)


def _has_val_data(trainer: Trainer) -> bool:
    datamodule = getattr(trainer, "datamodule", None)
    return trainer.limit_val_batches not in (0, 0.0) and hasattr(datamodule, "val_dataloader")


def _trainer_prefix_hint(argv: Sequence[str]) -> str:
    """``"; Trainer settings take the trainer. prefix: --trainer.devices"`` when a word of ``argv`` is a
    bare ``Trainer`` argument (``--devices 2`` instead of ``--trainer.devices 2``), else ``""``."""
    import inspect

    names = set(inspect.signature(Trainer.__init__).parameters) - {"self"}
    bare = [w.split("=")[0] for w in argv if w.startswith("--") and w[2:].split("=")[0] in names]
    if not bare:
        return ""
    return "; Trainer settings take the trainer. prefix: " + ", ".join(f"--trainer.{w[2:]}" for w in bare)


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
        try:
            SALLightningCLI(args=[command, *argv])
        except argparse.ArgumentError as error:
            hint = _trainer_prefix_hint(argv)
            raise ValueError(
                f"{parser_error_line(error)}{hint} (see: sal-lightning {command} --help)"
            ) from error
    return 0
