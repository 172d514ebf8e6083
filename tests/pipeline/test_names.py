"""One name per setting: a pipeline section is the settings class of its stage function (and so its
keys are the flags of the stage's command), with the same defaults."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from typing import Any

import pytest

from sal_lightning.cli.args import dataclass_of
from sal_lightning.pipeline.config import PipelineSettings
from sal_lightning.stages.coarse import score_coarse
from sal_lightning.stages.evaluate import evaluate
from sal_lightning.stages.fine import score_fine
from sal_lightning.stages.proxies import run_proxies
from sal_lightning.stages.references import build_references
from sal_lightning.stages.report import write_report
from sal_lightning.stages.retrain import retrain
from sal_lightning.stages.scorer import train_scorer
from sal_lightning.stages.select import select_scores

#: section -> the stage function it configures
STAGES: dict[str, Callable[..., Any]] = {
    "proxies": run_proxies,
    "references": build_references,
    "coarse": score_coarse,
    "scorer": train_scorer,
    "fine": score_fine,
    "select": select_scores,
    "retrain": retrain,
    "evaluate": evaluate,
    "report": write_report,
}


def test_every_section_is_named() -> None:
    hints = typing.get_type_hints(PipelineSettings)
    sections = {n for n in hints if dataclass_of(hints[n]) is not None or n == "proxies"} - {"trainer"}
    assert sections == set(STAGES)


@pytest.mark.parametrize("section", sorted(STAGES))
def test_a_section_is_the_settings_its_stage_function_takes(section: str) -> None:
    """The section's class is the type of the stage function's ``settings`` argument (so its keys are
    the flags of the stage's command), and the function's default is those settings' defaults."""
    fn = STAGES[section]
    hint = typing.get_type_hints(PipelineSettings)[section]
    settings = dataclass_of(hint) or next(t for t in typing.get_args(hint) if dataclasses.is_dataclass(t))
    assert dataclass_of(typing.get_type_hints(fn)["settings"]) is settings, f"{section}: {fn.__name__}"
    assert inspect.signature(fn).parameters["settings"].default is None  # None: the class's defaults


def test_the_step_passes_its_section_as_the_settings() -> None:
    """Each step of a default configuration holds its section's settings as ``settings``."""
    tree = PipelineSettings(root="voc")
    for step in tree.steps():
        section = step.kind
        assert getattr(step, "settings", None) == getattr(tree, section), section
