"""The paper's settings in one place: the values a "paper" configuration must hold, and the table of
every setting with the paper's, the released code's and this library's choice.

- :data:`PAPER` holds, per network (``"vgg16"``, ``"resnet101"``), the values SAL-Net states
  (Sec. III, Sec. IV-A, Tables IV-VIII), under the names the configurations use; :data:`RELEASED`
  the released code's values that fill what the paper leaves open (the library's configs use them).
- :func:`pipeline_settings` and :func:`segmenter_settings` read those names out of a pipeline
  configuration (``sal-lightning pipeline``) or a LightningCLI one (``sal-lightning fit``),
  defaults included; :func:`differences` compares them with the paper.
- :data:`ROWS` is the table of ``docs/fidelity.md``; :func:`fidelity_table` renders it (the "paper"
  cells take their numbers from :data:`PAPER`, so the page cannot drift from the checked values).
  ``python -m sal_lightning.paper`` prints it.

Modules: :mod:`~sal_lightning.paper.values` (the data), :mod:`~sal_lightning.paper.rows` (the
table's rows), :mod:`~sal_lightning.paper.settings` (reading configurations),
:mod:`~sal_lightning.paper.table` (rendering).

Example::

    from sal_lightning.paper import differences, pipeline_settings
    from sal_lightning.pipeline.config import load_config

    config = load_config("examples/configs/pipeline_voc_resnet101.yaml")
    assert differences(pipeline_settings(config), "resnet101") == {}
"""

from sal_lightning.paper.rows import ROWS, Row
from sal_lightning.paper.settings import differences, pipeline_settings, segmenter_settings
from sal_lightning.paper.table import fidelity_table
from sal_lightning.paper.values import NETWORKS, PAPER, RELEASED

__all__ = [
    "NETWORKS",
    "PAPER",
    "RELEASED",
    "ROWS",
    "Row",
    "differences",
    "fidelity_table",
    "pipeline_settings",
    "segmenter_settings",
]
