"""``sal-lightning pipeline`` and ``sal-lightning demo``: the whole of SAL-Net from one command.

Every key of the configuration is a flag too (``--select.tau 0.8``, ``--trainer.devices 4``), and the
whole configuration is checked before the first step runs::

    sal-lightning pipeline --config CONFIG --workdir W [--root R] [--saliency S] [--proxies DIR]
    sal-lightning pipeline ... --until fine | --from retrain-P2 | --only report | --no_resume | --list_steps
    sal-lightning demo [--fast] [--workdir sal-demo] [--difficulty realistic|clean] [--seed 0]

``demo`` writes the built-in synthetic dataset into ``<workdir>/data`` and runs the configuration
shipped as ``sal_lightning/configs/demo.yaml`` (``demo-fast.yaml`` with ``--fast``) on it.
"""

from __future__ import annotations

import os
import time
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from sal_lightning.cli.args import add_switch
from sal_lightning.cli.help import SentenceHelpFormatter

DEMO_DATA = {"n_train": 160, "n_val": 40, "size": 64}
DEMO_DATA_FAST = {"n_train": 24, "n_val": 8, "size": 48}


def parser(prog: str) -> Any:
    """The configuration's flags, ``--config`` and how to run the steps."""
    from sal_lightning.pipeline.config import config_parser

    parser = config_parser(prog)
    parser.formatter_class = SentenceHelpFormatter
    parser.add_argument(
        "--workdir", type=str, required=True, help="folder for the manifest and every artefact"
    )
    add_switch(parser, "resume", True, "skip finished steps whose configuration is unchanged")
    parser.add_argument("--from", type=str | None, default=None, help="run this step and all after it")
    parser.add_argument("--only", type=str | None, default=None, help="run just this step")
    parser.add_argument(
        "--until", type=str | None, default=None, help="run the steps up to and including this one"
    )
    add_switch(parser, "list_steps", False, "print the steps and their status, then stop")
    return parser


def _check_files(args: Any) -> None:
    """The top-level keys of each ``--config`` file (jsonargparse passes over an empty unknown one)."""
    from sal_lightning.pipeline.config import check_sections

    for path in args.get("config") or []:
        data = yaml.safe_load(Path(str(path)).read_text()) or {}
        if isinstance(data, dict):
            check_sections(data, str(path))


def run(prog_parser: Any, args: Any) -> Any:
    """Build the pipeline of the parsed ``args`` (checked) and run it, or list its steps."""
    from sal_lightning._console import format_seconds
    from sal_lightning.pipeline.config import instantiate
    from sal_lightning.pipeline.runner import Pipeline

    _check_files(args)
    config = instantiate(prog_parser, args)
    pipeline = Pipeline(args["workdir"], config.steps(), config.trainer)
    if args["list_steps"]:
        list_steps(pipeline)
        return pipeline
    from sal_lightning.pipeline.weights import prepare_weights

    tic = time.perf_counter()
    pipeline.run(
        resume=args["resume"],
        from_step=args["from"],
        only=args["only"],
        until=args["until"],
        prepare=lambda: prepare_weights(config),  # every initial weights file, or one line before any step
    )
    took = format_seconds(time.perf_counter() - tic)
    print(f"pipeline finished in {took}; manifest: {pipeline.manifest_path}")
    return pipeline


def list_steps(pipeline: Any) -> None:
    """Print one line per step: name, status (see ``Pipeline.status``) and its last duration."""
    from sal_lightning._console import format_seconds

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


def main(argv: list[str]) -> int:
    """Run ``sal-lightning pipeline ...``; returns the exit code."""
    prog = parser("sal-lightning pipeline")
    run(prog, prog.parse_args(argv))
    return 0


def demo_config(fast: bool) -> Path:
    """The configuration shipped for the demo (``configs/demo.yaml`` or ``configs/demo-fast.yaml``)."""
    return Path(str(resources.files("sal_lightning") / "configs" / f"demo{'-fast' if fast else ''}.yaml"))


def _given(argv: list[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in ``argv`` (the last one), else ``None``."""
    value = None
    for k, word in enumerate(argv):
        if word == f"--{name}" and k + 1 < len(argv):
            value = argv[k + 1]
        elif word.startswith(f"--{name}="):
            value = word.split("=", 1)[1]
    return value


def demo_parser(argv: list[str]) -> Any:
    """The demo's parser: the pipeline's, with the demo configuration as its defaults (so ``--help``
    and ``--print_config`` show what the demo runs) and the built-in data below the workdir."""
    fast = "--fast" in argv
    workdir = Path(_given(argv, "workdir") or "sal-demo")
    prog = parser("sal-lightning demo")
    prog.default_config_files = [str(demo_config(fast))]
    data = workdir / "data"
    prog.set_defaults(root=str(data), saliency=str(data / "saliency"), workdir=str(workdir))
    add_switch(
        prog, "fast", False, "a smaller run of every step (for tests and a first look; under a minute)"
    )
    prog.add_argument("--seed", type=int, default=0, help="seed of the synthetic dataset")
    prog.add_argument(
        "--difficulty",
        type=Literal["realistic", "clean"],
        default="realistic",
        help="the synthetic data: realistic (look-alike classes, saliency that misses and spills) or clean",
    )
    return prog


def pin_demo_threads() -> None:
    """One torch thread per process for the demo, unless the user chose (``SAL_LIGHTNING_THREADS``,
    ``OMP_NUM_THREADS``): networks this small, trained from scratch, end elsewhere with another
    thread count (the order of float sums changes), so the demo's figures are the README's on any
    machine only at one count. It costs about a minute on a quiet 2-core machine."""
    from sal_lightning._threads import ENV, USER_ENV

    if any(os.environ.get(name, "").strip() for name in (ENV, *USER_ENV)):
        return
    os.environ[ENV] = "1"
    print(
        "the demo runs one torch thread per process, so that its figures are the README's "
        f"({ENV}=auto: the library's policy)"
    )


def demo(argv: list[str]) -> int:
    """Run ``sal-lightning demo ...``: the built-in data, then the pipeline; returns the exit code."""
    from sal_lightning.data.synthetic import make_synthetic_voc
    from sal_lightning.stages.trainer import check_accelerator

    prog = demo_parser(argv)
    args = prog.parse_args(argv)
    pin_demo_threads()
    check_accelerator(args["trainer"]["accelerator"], args["trainer"]["devices"])  # before the data
    workdir = Path(args["workdir"])
    data = workdir / "data"  # always below the workdir: never written into a --root of the user's
    sizes = DEMO_DATA_FAST if args["fast"] else DEMO_DATA
    counts = f"{sizes['n_train']} train, {sizes['n_val']} val, {args['difficulty']}, seed {args['seed']}"
    print(f"the built-in synthetic dataset ({counts}) in {data}")
    make_synthetic_voc(  # a no-op when the folder holds it already
        data,
        sizes["n_train"],
        sizes["n_val"],
        sizes["size"],
        seed=args["seed"],
        difficulty=args["difficulty"],
    )
    args["workdir"] = str(workdir / "run")
    pipeline = run(prog, args)
    reached_report = args["until"] in (None, "report") and args["only"] in (None, "report")
    if reached_report and not args["list_steps"]:
        print()
        print((pipeline.workdir / "report.md").read_text())
        print(f"report with figures: {pipeline.workdir / 'report.md'}")
    return 0
