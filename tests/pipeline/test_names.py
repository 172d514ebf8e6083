"""One name per setting: a pipeline section's keys are its stage function's arguments (and so the
flags of its command), with the same defaults."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from typing import Any

import pytest

from sal_lightning.cli.args import dataclass_of
from sal_lightning.pipeline.config import PipelineConfig
from sal_lightning.stages.coarse import score_coarse
from sal_lightning.stages.evaluate import evaluate
from sal_lightning.stages.fine import score_fine
from sal_lightning.stages.proxies import run_proxies
from sal_lightning.stages.references import build_references
from sal_lightning.stages.report import write_report
from sal_lightning.stages.retrain import retrain
from sal_lightning.stages.scorer import train_scorer
from sal_lightning.stages.select import select_scores

#: section -> (the stage function it configures, the keys that only the pipeline has)
STAGES: dict[str, tuple[Callable[..., Any], set[str]]] = {
    "proxies": (run_proxies, set()),
    "references": (build_references, set()),
    "coarse": (score_coarse, set()),
    "scorer": (train_scorer, set()),
    "fine": (score_fine, set()),
    "select": (select_scores, {"tau_coarse", "keep_coarse", "min_share"}),  # P3, and the step's check
    "retrain": (retrain, set()),
    "evaluate": (evaluate, set()),
    "report": (write_report, set()),
}


def test_every_section_is_named() -> None:
    hints = typing.get_type_hints(PipelineConfig)
    sections = {n for n in hints if dataclass_of(hints[n]) is not None or n == "proxies"} - {"trainer"}
    assert sections == set(STAGES)


@pytest.mark.parametrize("section", sorted(STAGES))
def test_a_sections_keys_are_its_stage_functions_arguments(section: str) -> None:
    """Each key of the section is an argument of the stage function (same default), or a field of a
    settings class that the function takes (the section is, or extends, that class)."""
    fn, pipeline_only = STAGES[section]
    hint = typing.get_type_hints(PipelineConfig)[section]
    settings = dataclass_of(hint) or next(t for t in typing.get_args(hint) if dataclasses.is_dataclass(t))
    params = inspect.signature(fn).parameters
    fn_hints = typing.get_type_hints(fn)
    taken = [dataclass_of(fn_hints[n]) for n in params if dataclass_of(fn_hints.get(n)) is not None]
    bases = [cls for cls in taken if cls is not None and issubclass(settings, cls)]
    own = {f.name for f in dataclasses.fields(settings)} - pipeline_only
    assert bases or own <= set(params), (
        f"{section}: {settings.__name__} is neither (a subclass of) a settings class {fn.__name__} "
        "takes nor a set of its arguments"
    )
    from_base = {f.name for base in bases for f in dataclasses.fields(base)}
    for field in dataclasses.fields(settings):
        if field.name in from_base or field.name in pipeline_only:
            continue
        assert field.name in params, f"{section}.{field.name} is not an argument of {fn.__name__}"
        assert params[field.name].default == field.default, f"{section}.{field.name}: another default"
