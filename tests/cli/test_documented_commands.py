"""Every ``sal-lightning`` command line written in the README, the docs and the examples names a
command that exists and only options that command takes (the spelling of the flags included)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonargparse import ArgumentParser

from sal_lightning.cli import data, pipeline, score
from sal_lightning.cli.args import add_function, command_parser
from sal_lightning.cli.main import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(
    [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "examples").rglob("*.py")]
    + [*(ROOT / "examples").rglob("*.yaml")]
)
#: options every command takes
COMMON = {"--help", "--config", "--print_config", "--traceback"}
#: the LightningCLI commands: their options are their model's and data's (tests/cli/test_lightning.py)
LIGHTNING = {"fit", "validate", "test", "predict"}


def _parser(words: list[str]) -> ArgumentParser | None:
    """The parser of the command that ``words`` (the words after ``sal-lightning``) names, ``None``
    for a LightningCLI command; ``KeyError`` for a command that does not exist."""
    command = words[0]
    if command not in COMMANDS:
        raise KeyError(command)
    if command in LIGHTNING:
        return None
    if command == "pipeline":
        return pipeline.parser("sal-lightning pipeline")
    if command == "demo":
        return pipeline.demo_parser([])
    if command == "proxies":
        from sal_lightning.stages.proxies import run_proxies

        built = command_parser("sal-lightning proxies", "")
        add_function(built, run_proxies, flatten=("settings",))
        return built
    action = words[1]
    built = command_parser(f"sal-lightning {command} {action}", "", config=command != "weights")
    if command == "score":
        score.ACTIONS[action].add_to(built)
    elif command == "data":
        add_function(built, data._functions()[action][0])
    else:
        from sal_lightning.pipeline.weights import download_weights

        assert (command, action) == ("weights", "download")
        add_function(built, download_weights)
    return built


def command_lines() -> Iterator[tuple[str, str]]:
    """``(where, command line)`` of every ``sal-lightning`` command in the documentation: a code
    span or a code line, continuation lines joined."""
    for path in FILES:
        text = re.sub(r"\\\n\s*", " ", path.read_text())
        for number, line in enumerate(text.splitlines(), 1):
            pattern = r"sal-lightning ([a-z][a-z-]*(?: [a-z][a-z-]*)?)((?:\s[^`\n]*)?)(?=$|`)"
            for found in re.finditer(pattern, line):
                command = re.split(r"&&|;", found.group(2))[0]  # the next command is found on its own
                if found.group(1).split()[0] in COMMANDS:
                    yield f"{path.relative_to(ROOT)}:{number}", f"{found.group(1)}{command}"


def _option_strings(parser: ArgumentParser) -> set[str]:
    return {o for action in parser._actions for o in action.option_strings}


LINES = list(command_lines())


def test_the_documentation_has_command_lines() -> None:
    commands = {line.split()[0] for _, line in LINES}
    assert {"pipeline", "demo", "score", "data", "proxies", "fit", "weights"} <= commands


@pytest.mark.parametrize(("where", "line"), LINES, ids=[w for w, _ in LINES])
def test_a_documented_command_line_names_existing_options(where: str, line: str) -> None:
    words = line.split()
    needs_action = words[0] in ("score", "data", "weights")
    if needs_action and (len(words) < 2 or words[1].startswith("-") or words[1] == "..."):
        return  # the command in general ("sal-lightning score ...")
    parser = _parser(words)
    if parser is None:
        return
    known = _option_strings(parser) | COMMON
    flags = re.findall(r"(?<![\w-])(--[a-z][a-z0-9_.-]*)", line)
    unknown = [
        flag
        for flag in flags
        if flag not in known and not any(flag.startswith(f"{option}.") for option in known)
    ]
    assert not unknown, f"{where}: `sal-lightning {line.strip()}`: unknown options {unknown}"
