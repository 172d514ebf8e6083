"""Every weights file a configuration names, fetched into the caches its runs read.

For clusters whose compute nodes are offline: ``sal-lightning weights download --config CFG`` on a
machine with network (the same ``TORCH_HOME``, or a copy of its ``hub/checkpoints`` folder, on the
compute nodes) leaves every named or URL weights file where the run looks for it
(:mod:`sal_lightning.nn.hub`), and checks that every local weights file exists.

A configuration is a pipeline configuration (:class:`~sal_lightning.pipeline.config.PipelineSettings`:
the CAM network and the ProxyNet of step 1, the scorer's network, the retraining network) or a
trainer configuration (``fit`` / ``test`` / ``predict``: its ``model``'s ``class_path`` and
``init_args``).
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sal_lightning.pipeline.config import PipelineSettings, check_sections, load_config


@dataclass(frozen=True)
class Need:
    """One network's weights setting.

    Attributes:
        where: the setting's place in the configuration (``"retrain.model"``, ``"model"``...).
        backbone: the :func:`~sal_lightning.nn.build_deeplab` name whose hub names apply.
        value: the ``encoder_weights`` value (a hub name, a URL or a local path).
        build: further ``build_deeplab`` arguments, for networks whose weights only the encoder's
            own library fetches (timm encoders: the network is built once to fill its cache).
    """

    where: str
    backbone: str
    value: str
    build: dict[str, Any] = field(default_factory=dict)


def _default(cls: type, name: str) -> Any:
    """The default of ``cls``'s argument ``name`` (a CAM classifier's network arguments are
    :class:`~sal_lightning.models.cam.CAMNet`'s), or ``None``."""
    from sal_lightning.models.cam import CAMClassifier, CAMNet

    for klass in (cls, CAMNet) if issubclass(cls, CAMClassifier) else (cls,):
        parameter = inspect.signature(klass).parameters.get(name)
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default
    return None


def _network(where: str, cls: type, args: Mapping[str, Any]) -> list[Need]:
    """The weights of one LightningModule's arguments (none for networks without weights)."""
    from sal_lightning.nn.hub import SMP_PREFIX

    value = args.get("encoder_weights", _default(cls, "encoder_weights"))
    if value is None:
        return []
    if "encoder" in inspect.signature(cls).parameters:  # AgreementNet: an smp encoder
        encoder = args.get("encoder", _default(cls, "encoder"))
        return [Need(where, SMP_PREFIX + str(encoder), str(value))]
    backbone = str(args.get("backbone", _default(cls, "backbone")))
    build = {"output_stride": args.get("output_stride", 8), **dict(args.get("backbone_kwargs") or {})}
    return [Need(where, backbone, str(value), build)]


def pipeline_needs(config: PipelineSettings) -> list[Need]:
    """The weights of a pipeline configuration's networks."""
    from sal_lightning.models import CAMClassifier, ProxyNet, SALSegmenter

    needs: list[Need] = []
    if not isinstance(config.proxies, str):
        needs += _network("proxies (CAM network)", CAMClassifier, config.proxies.network("cam"))
        needs += _network("proxies (ProxyNet)", ProxyNet, config.proxies.network("proxy"))
    needs += _network("scorer.model", config.scorer.network, config.scorer.model)
    needs += _network("retrain.model", SALSegmenter, config.retrain.model)
    return needs


def lightning_needs(data: Mapping[str, Any]) -> list[Need]:
    """The weights of a trainer configuration's ``model`` (``class_path`` and ``init_args``)."""
    model = data.get("model")
    if not isinstance(model, Mapping) or "class_path" not in model:
        return []
    module_name, _, name = str(model["class_path"]).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"model.class_path: cannot import {model['class_path']!r} ({error})") from error
    args = model.get("init_args") or {k: v for k, v in model.items() if k != "class_path"}
    return _network("model", cls, args)


def config_needs(path: str | os.PathLike[str]) -> list[Need]:
    """The weights named by one configuration file (pipeline or trainer configuration)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"config: {file} not found")
    data = yaml.safe_load(file.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a mapping of settings, got {type(data).__name__}")
    if "model" in data or "trainer" in data and "root" not in data:
        return lightning_needs(data)
    check_sections(data, str(file))
    return pipeline_needs(load_config(file))


def fetch_need(need: Need, progress: bool = True) -> str:
    """Fetch one setting's file into its cache (or check that a local file exists); returns where
    the run reads it."""
    from sal_lightning.nn.builder import build_deeplab, resolve_weights

    hub_name, weights_file = resolve_weights(need.backbone, need.value, progress)
    if weights_file is not None:
        return str(weights_file)
    build_deeplab(need.backbone, encoder_weights=hub_name, **need.build)  # timm fills its own cache
    return f"the cache of {need.backbone}'s encoder library"


def prepare_weights(config: PipelineSettings, progress: bool = True) -> None:
    """Fetch (or find in the caches) every weights file of a pipeline before its first step: a file
    that cannot be had stops the run now, in seconds, naming its setting, not hours later."""
    for need in pipeline_needs(config):
        try:
            fetch_need(need, progress)
        except OSError as error:
            raise OSError(f"{need.where}: {error}") from error
        except ValueError as error:
            raise ValueError(f"{need.where}: {error}") from error


def download_weights(config: str | list[str], progress: bool = True) -> list[str]:
    """Fetch every weights file the configurations name into the caches their runs read.

    Args:
        config: a pipeline or trainer configuration file (YAML), or a list of them.
        progress: show download progress bars.

    Prints one line per setting; raises ``OSError`` naming every setting that could not be
    served (after trying all of them). Returns where each file is.
    """
    needs = [
        need for path in ([config] if isinstance(config, str) else config) for need in config_needs(path)
    ]
    if not needs:
        print("no weights to fetch: every network starts from a random initialisation")
    served, failed = [], []
    for need in needs:
        try:
            where = fetch_need(need, progress)
        except (OSError, ValueError) as error:
            failed.append(f"{need.where}: {error}")
            print(f"{need.where}: {need.value!r} MISSING: {error}")
            continue
        served.append(where)
        print(f"{need.where}: {need.value!r} -> {where}")
    if failed:
        raise OSError(f"{len(failed)} of {len(needs)} weights settings cannot be served; first: {failed[0]}")
    return served
