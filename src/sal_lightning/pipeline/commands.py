"""``sal-lightning pipeline``: the whole of SAL-Net on any VOC-layout data from one command."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from sal_lightning.pipeline.config import build_pipeline, load_config
from sal_lightning.pipeline.runner import Pipeline, format_seconds


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="run every step again, even finished ones (default: resume)",
    )
    parser.add_argument("--from", dest="from_step", metavar="STEP", help="run this step and all after it")
    parser.add_argument("--only", metavar="STEP", help="run just this step")
    parser.add_argument("--until", metavar="STEP", help="run the steps up to and including this one")
    parser.add_argument("--accelerator", help="Lightning accelerator for every step (cpu, gpu, auto)")
    parser.add_argument("--devices", type=int, help="devices per node for every step (DDP when > 1)")
    parser.add_argument("--num-nodes", type=int, help="nodes (under torchrun or SLURM)")
    parser.add_argument("--list-steps", action="store_true", help="print the steps and their status; stop")


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="pipeline configuration (YAML)")
    parser.add_argument("--workdir", required=True, help="folder for the manifest and every artefact")
    parser.add_argument("--root", help="VOC-layout data root (overrides the config's 'root')")
    parser.add_argument("--proxies", help="import this folder of proxy PNGs instead of running step 1")
    parser.add_argument("--saliency", help="folder of grayscale saliency PNGs (overrides 'saliency_dir')")
    add_run_options(parser)


def execute(config: dict[str, Any], workdir: Path, args: argparse.Namespace) -> Pipeline:
    overrides = {"accelerator": args.accelerator, "devices": args.devices, "num_nodes": args.num_nodes}
    pipeline = build_pipeline(config, workdir, overrides)
    if args.list_steps:
        list_steps(pipeline)
        return pipeline
    tic = time.perf_counter()
    pipeline.run(resume=args.resume, from_step=args.from_step, only=args.only, until=args.until)
    took = format_seconds(time.perf_counter() - tic)
    print(f"pipeline finished in {took}; manifest: {pipeline.manifest_path}")
    return pipeline


def list_steps(pipeline: Pipeline) -> None:
    """Print one line per step: name, status (see :meth:`Pipeline.status`) and its last duration."""
    manifest = pipeline.manifest()
    for step in pipeline.steps:
        status = pipeline.status(step, manifest)
        seconds = manifest["steps"].get(step.name, {}).get("seconds")
        took = (
            ""
            if seconds is None
            else ("took " if status != "interrupted" else "ran ") + format_seconds(seconds)
        )
        print(f"{step.name:16s} {status:12s} {took}".rstrip())


def run_pipeline(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.root:
        config["root"] = args.root
    if args.saliency:
        config["saliency_dir"] = args.saliency
    if args.proxies:
        config["proxies"] = {"import": args.proxies}
    execute(config, Path(args.workdir), args)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``sal-lightning pipeline`` options (the module registered in ``cli.COMMANDS``)."""
    add_pipeline_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return run_pipeline(args)
