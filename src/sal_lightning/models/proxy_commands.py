"""``sal-lightning proxies``: step 1 (tags -> CAMs -> seeds -> ProxyNet -> proxy annotations).

A thin shell over :func:`sal_lightning.models.proxy_steps.run_proxies`::

    sal-lightning proxies --root VOC --workdir work/step1 --preset synthetic-cpu \\
        --set saliency_dir=VOC/saliency --steps cam,cams,seeds,train,predict

Settings come from a preset, then a ``--config`` file (YAML or JSON mapping of
:class:`~sal_lightning.models.proxy_steps.ProxyConfig` fields), then ``--set key=value`` (values
parsed as YAML: ``--set proxy_steps=500``, ``--set "test_scales=[0.75, 1.0]"``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import yaml

from sal_lightning.models.proxy_steps import PRESETS, STEPS, ProxyConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``proxies`` arguments on ``parser``."""
    parser.add_argument("--root", required=True, help="VOC root (the folder holding JPEGImages/)")
    parser.add_argument("--workdir", type=Path, required=True, help="work folder for CAMs, seeds, proxies")
    parser.add_argument(
        "--steps",
        default=",".join(STEPS),
        help=f"comma-separated sub-steps, in order: {','.join(STEPS)} (default: all)",
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="paper", help="starting settings")
    parser.add_argument("--config", type=Path, help="YAML/JSON file of ProxyConfig fields")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a field"
    )
    parser.add_argument("--resume", action="store_true", help="keep finished checkpoints and files")
    parser.add_argument("--accelerator", default="auto", help="Lightning accelerator (cpu, gpu, auto)")
    parser.add_argument("--devices", default="auto", help="Lightning devices (e.g. 1, 4, auto)")
    parser.add_argument("--strategy", default="auto", help="Lightning strategy (e.g. ddp)")


def build_config(
    preset: str = "paper", config_file: Path | None = None, overrides: list[str] | None = None
) -> ProxyConfig:
    """The :class:`ProxyConfig` of a preset updated by a config file and ``KEY=VALUE`` overrides."""
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {preset!r}")
    values: dict[str, Any] = dataclasses.asdict(PRESETS[preset])
    fields = set(values)
    if config_file is not None:
        if not config_file.is_file():
            raise FileNotFoundError(f"--config {config_file}: file not found")
        loaded = yaml.safe_load(config_file.read_text())
        if not isinstance(loaded, dict):
            raise ValueError(f"--config {config_file}: expected a mapping of ProxyConfig fields")
        unknown = sorted(set(loaded) - fields)
        if unknown:
            raise ValueError(f"--config {config_file}: unknown fields {unknown}")
        values.update(loaded)
    for item in overrides or []:
        key, sep, text = item.partition("=")
        if not sep or key not in fields:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE with KEY a ProxyConfig field")
        values[key] = yaml.safe_load(text)
    for key in ("cam_scales", "test_scales"):
        values[key] = tuple(values[key])
    return ProxyConfig(**values)


def run(args: argparse.Namespace) -> int:
    """Run the requested sub-steps and print the seed / proxy quality; returns the exit code."""
    from sal_lightning._atomic import check_writable
    from sal_lightning.models.proxy_steps import check_proxy_config, run_proxies

    config = build_config(args.preset, args.config, args.overrides)
    check_proxy_config(config)  # bad settings fail now, not after the CAM classifier trained
    check_writable(args.workdir, "--workdir")
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    devices: Any = int(args.devices) if str(args.devices).isdigit() else args.devices
    trainer = {"accelerator": args.accelerator, "devices": devices, "strategy": args.strategy}
    report = run_proxies(args.root, args.workdir, config, trainer, steps=steps, resume=args.resume)
    for name in ("seeds", "proxies"):
        if name in report:
            summary = {k: v for k, v in report[name].items() if k != "class_iou"}
            print(f"{name}: {json.dumps(summary)}")
    print(f"report: {args.workdir / 'proxies.json'}")
    return 0
