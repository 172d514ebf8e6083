"""The ``sal-lightning`` command.

Each subcommand lives in the module that owns its work; that module defines
``add_arguments(parser: argparse.ArgumentParser) -> None`` and ``run(args: argparse.Namespace) -> int``,
or ``run_argv(command: str, argv: list[str]) -> int`` when it parses its own words (the LightningCLI
commands ``fit``/``validate``/``test``/``predict``).
Modules are imported only when their subcommand runs, so ``sal-lightning --help`` is fast.

Errors have one style for every command: bad input (a missing or unreadable file, an invalid
setting, a missing extra) ends with one line ``sal-lightning <command>: error: <what and the fix>``
and exit code 2; any other failure with one line naming the exception and exit code 1. The
traceback is printed only with ``--traceback`` (anywhere on the command line) or with the
environment variable ``SAL_LIGHTNING_TRACEBACK=1``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from sal_lightning import __version__

TRACEBACK_FLAG = "--traceback"
TRACEBACK_ENV = "SAL_LIGHTNING_TRACEBACK"
#: exceptions that mean bad input (a file, a setting, an extra to install): exit code 2
INPUT_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, ImportError)

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
    parser.add_argument(
        TRACEBACK_FLAG,
        action="store_true",
        help=f"on an error, print the traceback too (or set {TRACEBACK_ENV}=1)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _run_command(name: str, rest: list[str]) -> int:
    module = importlib.import_module(COMMANDS[name][0])
    if hasattr(module, "run_argv"):  # parses its own words (the LightningCLI commands)
        return int(module.run_argv(name, rest) or 0)
    parser = argparse.ArgumentParser(prog=f"sal-lightning {name}", description=COMMANDS[name][1])
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(rest)) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sal-lightning`` command line; returns the process exit code."""
    from sal_lightning._console import quiet_lightning

    args = list(sys.argv[1:] if argv is None else argv)
    traceback = TRACEBACK_FLAG in args or os.environ.get(TRACEBACK_ENV, "") not in ("", "0")
    args = [a for a in args if a != TRACEBACK_FLAG]
    if args and args[0] in COMMANDS:
        name = args[0]
        quiet_lightning()
        try:
            return _run_command(name, args[1:])
        except KeyboardInterrupt:
            if traceback:
                raise
            print(f"sal-lightning {name}: interrupted", file=sys.stderr)
            return 130
        except INPUT_ERRORS as err:  # bad input: say what and the fix, no traceback
            if traceback:
                raise
            print(f"sal-lightning {name}: error: {_one_line(err)}", file=sys.stderr)
            return 2
        except Exception as err:  # anything else: one line too, and how to see where it came from
            if traceback:
                raise
            print(
                f"sal-lightning {name}: error: {type(err).__name__}: {_one_line(err)} "
                f"(run again with {TRACEBACK_FLAG} or {TRACEBACK_ENV}=1 for the traceback)",
                file=sys.stderr,
            )
            return 1
    parser = build_parser()
    parser.parse_args(args)
    parser.print_help()
    return 0 if not args else 2


def _one_line(err: BaseException) -> str:
    """The exception's message on one line (a missing module named with the extra to install)."""
    if isinstance(err, ModuleNotFoundError) and err.name and "pip install" not in str(err):
        extra = {"pydensecrf": "crf"}.get(err.name.split(".")[0])
        hint = f'pip install "sal-lightning[{extra}]"' if extra else f"pip install {err.name.split('.')[0]}"
        return f"the module {err.name!r} is not installed; install it with: {hint}"
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return text or type(err).__name__


if __name__ == "__main__":
    raise SystemExit(main())
