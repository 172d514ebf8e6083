"""The one error style of every command: a line naming the argument or file and the fix."""

from __future__ import annotations

import argparse


def parser_error_line(error: BaseException) -> str:
    """jsonargparse's (often nested, multi-line) message as one line: the key and the innermost
    reason, e.g. ``Parser key "model": sal_lightning.SALSegmenter: Option 'backbon' is not accepted``."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return "invalid command line"
    head, reasons = lines[0], []
    for k, line in enumerate(lines[1:], start=1):
        if line.startswith("- Problem with given class_path") and k + 1 < len(lines):
            name = line.split("'")[1] if line.count("'") >= 2 else ""
            reasons.append(f"{name}: {lines[k + 1]}" if name else lines[k + 1])
    if not reasons and len(lines) > 1:
        reasons = [lines[1]]
    return " ".join([head, *reasons])


def one_line(err: BaseException) -> str:
    """The exception's message on one line (a missing module named with the extra to install)."""
    if isinstance(err, argparse.ArgumentError):
        return parser_error_line(err)
    if isinstance(err, ModuleNotFoundError) and err.name and "pip install" not in str(err):
        extra = {"pydensecrf": "crf"}.get(err.name.split(".")[0])
        hint = f'pip install "sal-lightning[{extra}]"' if extra else f"pip install {err.name.split('.')[0]}"
        return f"the module {err.name!r} is not installed; install it with: {hint}"
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return text or type(err).__name__
