"""The ``sal-lightning`` command.

Each subcommand lives in the module that owns its work; that module defines
``add_arguments(parser: argparse.ArgumentParser) -> None`` and ``run(args: argparse.Namespace) -> int``,
or ``run_argv(command: str, argv: list[str]) -> int`` when it parses its own words (the LightningCLI
commands ``fit``/``validate``/``test``/``predict``).
Modules are imported only when their subcommand runs, so ``sal-lightning --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from sal_lightning import __version__

# subcommand -> (module with add_arguments/run, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "fit": ("sal_lightning.lightning_cli", "Train a model through LightningCLI (--config FILE)."),
    "validate": ("sal_lightning.lightning_cli", "Evaluate on the validation split (LightningCLI)."),
    "test": ("sal_lightning.lightning_cli", "Evaluate with multi-scale/flip/CRF inference (LightningCLI)."),
    "predict": ("sal_lightning.lightning_cli", "Write one label PNG per image id (LightningCLI)."),
    "data": ("sal_lightning.data.commands", "VOC-format data: write the synthetic dataset, check a root."),
    "score": (
        "sal_lightning.scoring.commands",
        "Proxy scoring: reference masks, coarse/fine scores, the mask scorer, selection, reports.",
    ),
    "proxies": (
        "sal_lightning.models.proxy_commands",
        "Step 1: proxy annotations from tags (CAM classifier, seeds, ProxyNet with SEC/DSRG losses).",
    ),
    "pipeline": (
        "sal_lightning.pipeline.commands",
        "All four steps on VOC-layout data from a config, with a manifest and --resume.",
    ),
    "demo": (
        "sal_lightning.pipeline.demo",
        "The whole pipeline on the built-in synthetic dataset, on a CPU, in minutes.",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sal-lightning",
        description="SAL-Net: weakly supervised semantic segmentation with selection and attention losses.",
    )
    parser.add_argument("--version", action="version", version=f"sal-lightning {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sal-lightning`` command line; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in COMMANDS:
        name, rest = args[0], args[1:]
        module = importlib.import_module(COMMANDS[name][0])
        if hasattr(module, "run_argv"):  # parses its own words (the LightningCLI commands)
            return int(module.run_argv(name, rest) or 0)
        parser = argparse.ArgumentParser(prog=f"sal-lightning {name}", description=COMMANDS[name][1])
        module.add_arguments(parser)
        parsed = parser.parse_args(rest)
        try:
            return int(module.run(parsed) or 0)
        except (FileNotFoundError, FileExistsError, ValueError) as err:  # bad input: say what, no traceback
            print(f"sal-lightning {name}: error: {err}", file=sys.stderr)
            return 2
    parser = build_parser()
    parser.parse_args(args)
    parser.print_help()
    return 0 if not args else 2


if __name__ == "__main__":
    raise SystemExit(main())
