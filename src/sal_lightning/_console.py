"""What the ``sal-lightning`` commands print besides their own lines.

Lightning announces the hardware ("GPU available: ...", "TPU available: ..."), advertises its
cloud products ("Tip: ... litlogger") and says why a fit stopped every time a ``Trainer`` is built
or fitted: a pipeline builds dozens. :func:`quiet_lightning` drops those lines (and only those)
from Lightning's info logger; warnings, progress and everything else stay.

:func:`step_label` names the pipeline step that runs (``[ 9/13] retrain-P4``) for the progress
lines of the loops inside it (:func:`current_step`); :func:`format_seconds` writes durations.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: the starts of Lightning's repeated info lines that :func:`quiet_lightning` drops
REPEATED_BANNERS: tuple[str, ...] = (
    "GPU available:",
    "TPU available:",
    "HPU available:",
    "💡 Tip:",
    "`Trainer.fit` stopped:",
)
_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class _DropBanners(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(REPEATED_BANNERS)


_FILTER = _DropBanners()


def quiet_lightning() -> None:
    """Drop Lightning's per-``Trainer`` hardware banners and product tips from this process's output.

    Idempotent; affects only the lines listed in :data:`REPEATED_BANNERS`. Also silences the
    deprecation warning that Lightning's own ``_pytree`` module raises on recent torch releases
    (nothing a user can act on).
    """
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")


_STEP: ContextVar[str] = ContextVar("sal_lightning_step", default="")


@contextmanager
def step_label(label: str) -> Iterator[None]:
    """Within the block, progress lines start with ``label`` (the pipeline step that runs)."""
    token = _STEP.set(label)
    try:
        yield
    finally:
        _STEP.reset(token)


def progress_for_logs(interval: float = 20.0) -> None:
    """When stderr is not a terminal (a log file, a pipe), progress bars drawn with tqdm update at
    most every ``interval`` seconds instead of several times a second (``TQDM_MININTERVAL``, unless
    set)."""
    if not sys.stderr.isatty():
        os.environ.setdefault("TQDM_MININTERVAL", str(interval))


def current_step() -> str:
    """The label of the step that runs (see :func:`step_label`), ``""`` outside a pipeline."""
    return _STEP.get()


def format_seconds(seconds: float) -> str:
    """``"0.4 s"``, ``"12 s"``, ``"3 min 05 s"``, ``"2 h 03 min"``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
