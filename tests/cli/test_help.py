"""``--help`` of every command: every option described, texts as sentences (no docstring markup, no
cut-off titles), and the demo's help and ``--print_config`` showing what the demo runs."""

from __future__ import annotations

import re
from argparse import SUPPRESS
from collections.abc import Iterator

import pytest
import yaml
from jsonargparse import ArgumentParser

from sal_lightning.cli import data, main, pipeline, score
from sal_lightning.cli.args import add_function, command_parser
from sal_lightning.cli.help import plain, title

MARKUP = re.compile(r"``|:(class|func|meth|mod|data|attr):`")


def parsers() -> Iterator[tuple[str, ArgumentParser]]:
    """Every jsonargparse command's parser, by command line."""
    for name, (fn, help_text, _) in data._functions().items():
        parser = command_parser(f"sal-lightning data {name}", help_text)
        add_function(parser, fn)
        yield f"data {name}", parser
    for name, action in score.ACTIONS.items():
        parser = command_parser(f"sal-lightning score {name}", action.help)
        action.add_to(parser)
        yield f"score {name}", parser
    from sal_lightning.stages.proxies import run_proxies

    parser = command_parser("sal-lightning proxies", "")
    add_function(parser, run_proxies, flatten=("settings",))
    yield "proxies", parser
    yield "pipeline", pipeline.parser("sal-lightning pipeline")
    yield "demo", pipeline.demo_parser([])


PARSERS = dict(parsers())


@pytest.mark.parametrize("command", list(PARSERS))
def test_every_option_is_described_in_sentences(command: str) -> None:
    parser = PARSERS[command]
    bare = [
        a.option_strings[0]
        for a in parser._actions
        if a.option_strings and a.help != SUPPRESS and not (a.help and a.help.strip())
    ]
    assert bare == [], f"{command}: options without a description: {bare}"
    text = parser.format_help()
    assert not MARKUP.search(text), f"{command}: docstring markup in --help: {MARKUP.search(text)}"
    headings = [line[:-1] for line in text.splitlines() if line.endswith(":") and not line.startswith(" ")]
    for heading in headings:  # one sentence each, not a cut-off docstring
        assert not re.search(r"[.!?]\s+[A-Z]", heading) and "<class" not in heading, heading


def test_markup_is_removed_and_titles_are_one_sentence() -> None:
    assert (
        plain("a :class:`~sal_lightning.models.MaskScorer` or ``scores.csv``") == "a MaskScorer or scores.csv"
    )
    assert (
        plain(":func:`sal_lightning.stages.select.select_scores`")
        == "sal_lightning.stages.select.select_scores"
    )
    assert (
        title("A DataModule standardizes the splits. The main advantage is")
        == "A DataModule standardizes the splits"
    )
    assert title("<class 'lightning.pytorch.core.module.LightningModule'>") == "LightningModule"
    assert title("b, definition and objectness used") == "b, definition and objectness used"


def test_the_demo_shows_its_own_settings(capsys: pytest.CaptureFixture[str]) -> None:
    shipped = yaml.safe_load(pipeline.demo_config(False).read_text())
    with pytest.raises(SystemExit):
        main(["demo", "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["train_split"] == shipped["train_split"] == "train"
    assert printed["retrain"]["max_steps"] == shipped["retrain"]["max_steps"]
    assert printed["retrain"]["model"]["backbone"] == "deeplabv3_resnet18"
    assert printed["root"] == "sal-demo/data" and printed["saliency"] == "sal-demo/data/saliency"
    with pytest.raises(SystemExit):
        main(["demo", "--fast", "--workdir", "w", "--print_config"])
    fast = yaml.safe_load(capsys.readouterr().out)
    assert (
        fast["retrain"]["max_steps"]
        == yaml.safe_load(pipeline.demo_config(True).read_text())["retrain"]["max_steps"]
    )
    assert fast["root"] == "w/data"
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = capsys.readouterr().out
    steps = re.search(r"--retrain\.max_steps MAX_STEPS\s+(.*?)\(type: int, default: (\d+)\)", text, re.S)
    assert steps and int(steps.group(2)) == shipped["retrain"]["max_steps"]
    assert "deeplabv3_resnet18" in text and "default: train)" in text
