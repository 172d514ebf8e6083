"""The ``sal-lightning`` command: one entry point, one error style, every command a jsonargparse shell.

``fit`` / ``validate`` / ``test`` / ``predict`` are LightningCLI (:mod:`sal_lightning.cli.lightning`);
``data``, ``score``, ``proxies``, ``pipeline`` and ``demo`` are their stage functions' signatures
(:mod:`sal_lightning.cli.args`). A command's module is imported when it runs, so
``sal-lightning --help`` is fast. Options are written as their YAML keys and Python arguments are
named (``--batch_size``, ``--trainer.devices``).

Errors have one style for every command: bad input (a missing or unreadable file, an invalid
setting or option, a missing extra) ends with one line ``sal-lightning <command>: error: <what and
the fix>`` and exit code 2; any other failure with one line naming the exception and exit code 1.
The traceback is printed only with ``--traceback`` (anywhere on the command line) or with the
environment variable ``SAL_LIGHTNING_TRACEBACK=1``. Ctrl-C ends a command with exit code 130 (a
pipeline's manifest then records the step as ``interrupted``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sal_lightning import __version__
from sal_lightning.cli.errors import check_yaml, one_line

TRACEBACK_FLAG = "--traceback"
TRACEBACK_ENV = "SAL_LIGHTNING_TRACEBACK"
#: exceptions that mean bad input (a file, a setting, an option, an extra to install): exit code 2
INPUT_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, ImportError, argparse.ArgumentError)
#: the exit code of a run stopped with Ctrl-C (128 + SIGINT, as shells report it)
INTERRUPTED = 130


def _lightning(command: str) -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        from sal_lightning.cli.lightning import run_argv

        return run_argv(command, argv)

    return run


def _data(argv: list[str]) -> int:
    from sal_lightning.cli.data import main

    return main(argv)


def _score(argv: list[str]) -> int:
    from sal_lightning.cli.score import main

    return main(argv)


def _proxies(argv: list[str]) -> int:
    from sal_lightning.cli.proxies import main

    return main(argv)


def _pipeline(argv: list[str]) -> int:
    from sal_lightning.cli.pipeline import main

    return main(argv)


def _weights(argv: list[str]) -> int:
    from sal_lightning.cli.weights import main

    return main(argv)


def _demo(argv: list[str]) -> int:
    from sal_lightning.cli.pipeline import demo

    return demo(argv)


@dataclass(frozen=True)
class Command:
    """A subcommand: its one-line help and what runs it (with the words after its name)."""

    help: str
    run: Callable[[list[str]], int]


COMMANDS: dict[str, Command] = {
    "fit": Command("Train a model through LightningCLI (--config FILE).", _lightning("fit")),
    "validate": Command("Evaluate on the validation split (LightningCLI).", _lightning("validate")),
    "test": Command("Evaluate with multi-scale/flip/CRF inference (LightningCLI).", _lightning("test")),
    "predict": Command("Write one label PNG per image id (LightningCLI).", _lightning("predict")),
    "data": Command(
        "VOC-format data: synthetic data, checks, train_aug lists, downloads, COCO conversion.", _data
    ),
    "score": Command(
        "Proxy scoring: reference masks, coarse/fine scores, the mask scorer, selection, reports.", _score
    ),
    "proxies": Command(
        "Step 1: proxy annotations from tags (CAM classifier, seeds, ProxyNet with SEC/DSRG losses).",
        _proxies,
    ),
    "pipeline": Command(
        "All four steps on VOC-layout data from a config, with a manifest and resume.", _pipeline
    ),
    "demo": Command("The whole pipeline on the built-in synthetic dataset, on a CPU, in minutes.", _demo),
    "weights": Command(
        "Initial weights: fetch every file a configuration names, for offline nodes.", _weights
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: ``--version``, ``--traceback`` and the list of commands."""
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
    for name, command in COMMANDS.items():
        sub.add_parser(name, help=command.help, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sal-lightning`` command line; returns the process exit code."""
    from sal_lightning._console import progress_for_logs, quiet_lightning

    args = list(sys.argv[1:] if argv is None else argv)
    traceback = TRACEBACK_FLAG in args or os.environ.get(TRACEBACK_ENV, "") not in ("", "0")
    args = [a for a in args if a != TRACEBACK_FLAG]
    if not args or args[0] not in COMMANDS:
        parser = build_parser()
        parser.parse_args(args)
        parser.print_help()
        return 0 if not args else 2
    name = args[0]
    quiet_lightning()
    progress_for_logs()
    try:
        check_yaml(args[1:])
        return int(COMMANDS[name].run(args[1:]) or 0)
    except (KeyboardInterrupt, SystemExit) as err:
        # Lightning answers Ctrl-C inside a loop with exit(1): an interruption all the same
        if isinstance(err, SystemExit) and not isinstance(err.__context__, KeyboardInterrupt):
            raise
        if traceback:
            raise
        print(f"sal-lightning {name}: interrupted (exit code 130)", file=sys.stderr)
        return INTERRUPTED
    except INPUT_ERRORS as err:  # bad input: say what and the fix, no traceback
        if traceback:
            raise
        print(f"sal-lightning {name}: error: {one_line(err)}", file=sys.stderr)
        return 2
    except Exception as err:  # anything else: one line too, and how to see where it came from
        if traceback:
            raise
        print(
            f"sal-lightning {name}: error: {type(err).__name__}: {one_line(err)} "
            f"(run again with {TRACEBACK_FLAG} or {TRACEBACK_ENV}=1 for the traceback)",
            file=sys.stderr,
        )
        return 1
