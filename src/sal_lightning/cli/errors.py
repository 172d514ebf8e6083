"""The one error style of every command: a line naming the argument or file and the fix."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path


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


#: words of a reason that mean a download failed (no network, a server down)
DOWNLOAD_WORDS = ("Hub", "connection", "Connection", "download", "URL", "urlopen", "resolve host")


def union_error_line(message: str) -> str | None:
    """jsonargparse's "Does not validate against any of the Union subtypes" report (a class that
    failed to build, its every argument repeated) as one line naming the setting, the reason and,
    for a weights download, the fix; ``None`` for any other message."""
    if "Does not validate against any of the Union subtypes" not in message:
        return None
    reasons = [
        line.strip()[2:]
        for line in message.splitlines()
        if line.strip().startswith("- ") and "Expected a <class 'NoneType'>" not in line
    ]
    found = re.search(r"class_path='(?:[\w.]+\.)?(\w+)'", message)
    group = "data" if "DataModule" in message.split("Errors:")[0] else "model"
    where = f"{group} ({found.group(1)})" if found else group
    reason = reasons[0] if reasons else "could not be built"
    line = f"{where}: {reason.rstrip('.')}"
    if "encoder_weights" in reason or any(word in reason for word in DOWNLOAD_WORDS):
        line += (
            f"; the pretrained weights could not be read or downloaded: set {group}.init_args."
            "encoder_weights to a local weights file, or null to start from random weights"
        )
    return line


def one_line(err: BaseException) -> str:
    """The exception's message on one line (a missing module named with the extra to install)."""
    if isinstance(err, argparse.ArgumentError):
        return parser_error_line(err)
    if isinstance(err, ModuleNotFoundError) and err.name and "pip install" not in str(err):
        extra = {"pydensecrf": "crf"}.get(err.name.split(".")[0])
        hint = f'pip install "sal-lightning[{extra}]"' if extra else f"pip install {err.name.split('.')[0]}"
        return f"the module {err.name!r} is not installed; install it with: {hint}"
    union = union_error_line(str(err))
    if union is not None:
        return union
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return text or type(err).__name__


def config_files(argv: Sequence[str]) -> list[Path]:
    """The YAML files named on a command line: the value of ``--config`` and of any option (``--data
    FILE``, ``--trainer=FILE``) that is an existing ``.yaml`` / ``.yml`` file."""
    values = [w.split("=", 1)[1] for w in argv if w.startswith("--") and "=" in w]
    values += [argv[k + 1] for k, w in enumerate(argv[:-1]) if w.startswith("--") and "=" not in w]
    return [Path(v) for v in values if v.endswith((".yaml", ".yml")) and Path(v).is_file()]


def check_yaml(argv: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the file, line and column of the first YAML syntax error in the
    configuration files of ``argv`` (the parser's own message names neither)."""
    import yaml

    for path in config_files(argv):
        try:
            yaml.safe_load(path.read_text())
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            what = " ".join(str(p) for p in (err.context, err.problem) if p)
            raise ValueError(f"{path}{where}: not valid YAML: {what}") from err
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: not valid YAML: {one_line(err)}") from err
