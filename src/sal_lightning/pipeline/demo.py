"""``sal-lightning demo``: the whole pipeline on the built-in synthetic dataset, on a CPU, in minutes."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path
from typing import Any

from sal_lightning.pipeline.commands import add_run_options, execute
from sal_lightning.pipeline.config import load_config

DEMO_DATA = {"n_train": 160, "n_val": 40, "size": 64}
DEMO_DATA_FAST = {"n_train": 24, "n_val": 8, "size": 48}


def packaged_config(name: str) -> dict[str, Any]:
    """A configuration shipped in ``sal_lightning/configs`` (``demo``, ``demo-fast``)."""
    return load_config(Path(str(resources.files("sal_lightning") / "configs" / f"{name}.yaml")))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", default="sal-demo", help="folder for the data and every artefact")
    parser.add_argument("--fast", action="store_true", help="a smaller run (for tests; about 3 minutes)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic dataset")
    parser.add_argument(
        "--difficulty",
        choices=("realistic", "clean"),
        default="realistic",
        help="the synthetic data: realistic (look-alike classes, saliency that misses and spills) or clean",
    )
    add_run_options(parser)


def run(args: argparse.Namespace) -> int:
    from sal_lightning.data.synthetic import make_synthetic_voc

    workdir = Path(args.workdir)
    data = workdir / "data"
    sizes = DEMO_DATA_FAST if args.fast else DEMO_DATA
    counts = f"{sizes['n_train']} train, {sizes['n_val']} val, {args.difficulty}, seed {args.seed}"
    print(f"the built-in synthetic dataset ({counts}) in {data}")
    make_synthetic_voc(  # a no-op when the folder holds it already
        data, sizes["n_train"], sizes["n_val"], sizes["size"], seed=args.seed, difficulty=args.difficulty
    )
    config = packaged_config("demo-fast" if args.fast else "demo")
    config["root"] = str(data)
    config["saliency_dir"] = str(data / "saliency")
    pipeline = execute(config, workdir / "run", args)
    if not args.list_steps:
        print()
        print((pipeline.workdir / "report.md").read_text())
        print(f"report with figures: {pipeline.workdir / 'report.md'}")
    return 0
