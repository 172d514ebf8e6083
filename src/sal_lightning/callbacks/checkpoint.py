"""A callback that writes one entry into every checkpoint a training saves.

The scorer training names its method in its checkpoints with it, so that
:func:`~sal_lightning.stages.scorer.load_scorer` reads which LightningModule to build from the
file itself.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer


class CheckpointEntry(Callback):
    """Writes ``checkpoint[key] = value`` into every checkpoint saved during the training.

    Args:
        key: the entry's name in the checkpoint dict (beside ``state_dict``, ``hyper_parameters``).
        value: a picklable value (a string, a number).
    """

    def __init__(self, key: str, value: Any) -> None:
        self.key, self.value = key, value

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[self.key] = self.value
