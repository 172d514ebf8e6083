"""What the ``sal-lightning`` commands print besides their own lines.

Lightning announces the hardware ("GPU available: ...", "TPU available: ...") and advertises its
cloud products ("Tip: ... litlogger") every time a ``Trainer`` is built: a pipeline builds dozens.
:func:`quiet_lightning` drops those lines (and only those) from Lightning's info logger; warnings,
progress bars and everything else stay.
"""

from __future__ import annotations

import logging
import warnings

#: the starts of Lightning's repeated info lines that :func:`quiet_lightning` drops
REPEATED_BANNERS: tuple[str, ...] = (
    "GPU available:",
    "TPU available:",
    "HPU available:",
    "💡 Tip:",
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
