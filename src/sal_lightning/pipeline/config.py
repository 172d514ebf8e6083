"""A pipeline configuration: one typed tree (:class:`PipelineSettings`) of the steps' settings.

The YAML file, the command line (``--select.tau 0.8``) and Python share its names, types and
checks: jsonargparse parses and validates it, so an unknown key, a wrong type, a tau outside
[0, 1] or a bad backbone fails in the first second, before any step runs. Every section is
optional; the defaults are the paper's::

    root: data/VOCdevkit/VOC2012       # a VOC-layout root
    train_split: train_aug              # images whose proxies are scored and trained on
    val_split: val                      # evaluation split (P1..P5)
    saliency: data/saliency             # grayscale saliency PNGs: step 1's background, the references
    trainer: {accelerator: auto, devices: 1}      # every Lightning Trainer of every step
    proxies: {proxy_backbone: vgg16_aspp}         # step 1 settings; or a folder of PNGs to import
    references: {crf: true, processes: 4}
    coarse: {b: 0.1, batch_size: 8, num_workers: 4}
    scorer: {method: regression, synthesis: {}, model: {}, max_epochs: 50, batch_size: 8}
    fine: {batch_size: 16}
    select: {tau: 0.85, tau_coarse: 0.8, mode: hard}   # SF, SC thresholds; or keep: 0.6 (a share)
    retrain: {variants: [P2, P3, P4, P5], seeds: [0], max_steps: 15000, model: {}, data: {}}
    evaluate: {test_scales: [0.5, 0.75, 1.0], crf: true}
    report: {overlays: 4}

``strong_ids`` under ``retrain`` gives the semi-supervised setting (Table IX): a list file of ids
whose ground truth is used as is, the rest as selected proxies.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

from sal_lightning.pipeline.runner import Pipeline
from sal_lightning.stages.coarse import CoarseScores, CoarseSettings
from sal_lightning.stages.evaluate import Evaluate, EvaluateSettings
from sal_lightning.stages.fine import FineScores, FineSettings
from sal_lightning.stages.proxies import ImportProxies, MakeProxies
from sal_lightning.stages.proxy_settings import ProxySettings
from sal_lightning.stages.references import MakeReferences, ReferenceSettings
from sal_lightning.stages.report import Report, ReportSettings
from sal_lightning.stages.retrain import Retrain, RetrainSettings
from sal_lightning.stages.scorer import ScorerSettings, TrainScorer
from sal_lightning.stages.select import Select, SelectSettings
from sal_lightning.stages.step import Step
from sal_lightning.stages.trainer import TrainerSettings


@dataclass
class PipelineSettings:
    """The whole of SAL-Net on one VOC-layout root.

    Attributes:
        root: the VOC-layout data root (the folder holding ``JPEGImages/``).
        train_split: the images whose proxies are made, scored and trained on.
        val_split: the evaluation split (P1..P5).
        saliency: a folder of grayscale saliency PNGs ``<id>.png``: the background seeds of step 1
            (needed unless ``proxies.background`` is ``cam``) and the reference masks (null: a
            built-in method).
        trainer: the settings of every Lightning Trainer of every step.
        proxies: step 1's settings, or a folder of pseudo-labels (one PNG per id) imported
            instead of running step 1.
        references: the reference masks' settings.
        coarse: the coarse scores' settings.
        scorer: the fine scorer's training.
        fine: the fine scores' settings.
        select: the selections' thresholds.
        retrain: the retrainings (step 4).
        evaluate: the evaluation's inference.
        report: what the report shows.
    """

    root: str
    train_split: str = "train_aug"
    val_split: str = "val"
    saliency: str | None = None
    trainer: TrainerSettings = field(default_factory=TrainerSettings)
    proxies: str | ProxySettings = field(default_factory=ProxySettings)
    references: ReferenceSettings = field(default_factory=ReferenceSettings)
    coarse: CoarseSettings = field(default_factory=CoarseSettings)
    scorer: ScorerSettings = field(default_factory=ScorerSettings)
    fine: FineSettings = field(default_factory=FineSettings)
    select: SelectSettings = field(default_factory=SelectSettings)
    retrain: RetrainSettings = field(default_factory=RetrainSettings)
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)
    report: ReportSettings = field(default_factory=ReportSettings)

    def steps(self) -> list[Step]:
        """The ordered SAL-Net steps of this configuration."""
        root, train, val = self.root, self.train_split, self.val_split
        first: Step
        if isinstance(self.proxies, str):
            first = ImportProxies(root, train, proxies=self.proxies)
        else:
            first = MakeProxies(root, train, val_split=val, saliency=self.saliency, settings=self.proxies)
        steps: list[Step] = [
            first,
            MakeReferences(root, train, saliency=self.saliency, settings=self.references),
            CoarseScores(root, train, settings=self.coarse),
            TrainScorer(root, train, settings=self.scorer, coarse=self.coarse),
            FineScores(root, train, settings=self.fine),
            Select(root, train, settings=self.select),
        ]
        steps += [
            Retrain(root, train, val_split=val, variant=variant, settings=self.retrain)
            for variant in self.retrain.variants
        ]
        evaluate = Evaluate(
            root,
            val,
            variants=self.retrain.variants,
            seeds=self.retrain.seeds,
            include_p1=isinstance(first, MakeProxies),
            settings=self.evaluate,
        )
        return [*steps, evaluate, Report(root, train, val_split=val, settings=self.report)]


#: the sections of a configuration: one per step kind, and the Trainer settings
SECTIONS: tuple[str, ...] = ("trainer", "proxies", "references", "coarse", "scorer", "fine", "select")
SECTIONS += ("retrain", "evaluate", "report")


def config_parser(prog: str = "sal-lightning pipeline") -> ArgumentParser:
    """The jsonargparse parser of :class:`PipelineSettings` (and ``--config FILE``)."""
    parser = ArgumentParser(prog=prog, exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile, help="a pipeline configuration (YAML)")
    parser.add_class_arguments(PipelineSettings, None)
    return parser


def check_sections(data: Mapping[str, Any], source: str = "config") -> None:
    """Raise ``ValueError`` for a top-level key that is not a setting of :class:`PipelineSettings`, or
    a section that is not a mapping (``proxies`` may also be a folder)."""
    known = list(PipelineSettings.__dataclass_fields__)
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{source}: unknown settings {unknown}; expected some of {known}")
    for name in SECTIONS:
        value = data.get(name)
        if (
            value is not None
            and not isinstance(value, Mapping)
            and not (name == "proxies" and isinstance(value, str))
        ):
            raise ValueError(
                f"{source}: section {name!r}: expected a mapping of settings, got {type(value).__name__}"
            )


def _failing_section(namespace: Namespace) -> str:
    """The first section of ``namespace`` whose settings cannot be built (their checks fail)."""
    hints = get_type_hints(PipelineSettings)
    for name in SECTIONS:
        section = ArgumentParser(exit_on_error=False)
        section.add_argument(f"--{name}", type=hints[name])
        try:
            section.instantiate(Namespace({name: namespace[name]}))
        except (ValueError, TypeError):
            return name
    return "config"


def instantiate(parser: ArgumentParser, namespace: Namespace) -> PipelineSettings:
    """The :class:`PipelineSettings` of a parsed ``namespace``; a failed check names its section
    (``select: tau: expected a number in [0, 1], got 1.5``)."""
    try:
        built = parser.instantiate(namespace)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{_failing_section(namespace)}: {err}") from err
    return PipelineSettings(**{k: built[k] for k in PipelineSettings.__dataclass_fields__})


def parse_config(config: Mapping[str, Any] | PipelineSettings) -> PipelineSettings:
    """A :class:`PipelineSettings` from a mapping (a loaded YAML file), checked as the command line is."""
    if isinstance(config, PipelineSettings):
        return config
    check_sections(config)
    parser = config_parser()
    return instantiate(parser, parser.parse_object(dict(config)))


def load_config(path: str | os.PathLike[str], **overrides: Any) -> PipelineSettings:
    """Read a pipeline configuration file (YAML), with ``overrides`` of its top-level keys."""
    import yaml

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"config: {file} not found")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{file}: not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a mapping of settings, got {type(data).__name__}")
    return parse_config({**data, **overrides})


def build_steps(config: Mapping[str, Any] | PipelineSettings) -> list[Step]:
    """The ordered SAL-Net steps of a configuration (a mapping or a :class:`PipelineSettings`)."""
    return parse_config(config).steps()


def build_pipeline(config: Mapping[str, Any] | PipelineSettings, workdir: str | os.PathLike[str]) -> Pipeline:
    """A :class:`Pipeline` in ``workdir`` with the configuration's steps and trainer settings."""
    tree = parse_config(config)
    return Pipeline(workdir, tree.steps(), tree.trainer)
