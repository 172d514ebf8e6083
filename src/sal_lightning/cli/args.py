"""A command line from a stage function's signature, with jsonargparse.

:func:`add_function` gives every parameter of a stage function a flag of the same name, type and
default (the help comes from its docstring); a settings dataclass parameter becomes a group
(``--trainer.devices 2``; its defaults are the class's when the parameter's default is ``None``),
or, when ``flatten`` names it, its fields become flags of their own (``--tau 0.8`` for
``settings: SelectSettings``); ``hidden`` names fields (``"settings.processes"``) that a command
leaves at their defaults. :func:`call` builds the arguments back and calls the function, so the
function's own checks run on what the command line gave.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import docstring_parser
from jsonargparse import ActionConfigFile, ActionYesNo, ArgumentParser, Namespace

from sal_lightning.cli.help import SentenceHelpFormatter


def command_parser(prog: str, description: str, config: bool = True) -> ArgumentParser:
    """A jsonargparse parser that raises instead of exiting (the entry point reports errors)."""
    parser = ArgumentParser(
        prog=prog, description=description, exit_on_error=False, formatter_class=SentenceHelpFormatter
    )
    if config:
        parser.add_argument("--config", action=ActionConfigFile, help="settings from a YAML file")
    return parser


def dataclass_of(hint: Any) -> type | None:
    """The dataclass in a type hint (``X`` or ``X | None``), else ``None``."""
    options = (
        typing.get_args(hint)
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
        else (hint,)
    )
    found = [o for o in options if isinstance(o, type) and dataclasses.is_dataclass(o)]
    rest = [o for o in options if o is not type(None) and o not in found]
    return found[0] if len(found) == 1 and not rest else None


def type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """``fn``'s parameter types; one that names a class imported only for the type checker (a
    LightningModule that the command line takes as a path) is left out instead of failing them all."""
    try:
        return typing.get_type_hints(fn)
    except NameError:
        hints = {}
        for name, annotation in fn.__annotations__.items():
            try:  # what get_type_hints does, one annotation at a time
                hints[name] = eval(annotation, fn.__globals__) if isinstance(annotation, str) else annotation
            except NameError:
                continue
        return hints


def _groups(
    fn: Callable[..., Any], flatten: Sequence[str], skip: Sequence[str], classes: Mapping[str, type]
) -> dict[str, type]:
    """The parameters of ``fn`` that are settings dataclasses (besides ``skip``), and those that
    ``classes`` maps to a class whose ``__init__`` arguments make the group, by name."""
    hints = type_hints(fn)
    params = inspect.signature(fn).parameters
    # settings left unset (None: the class's defaults) or flattened; a settings instance as the
    # default stays one argument (``--scorer null`` works, ``--scorer.max_epochs 5`` too)
    names = [n for n, p in params.items() if n not in skip and (p.default is None or n in flatten)]
    groups = {n: classes.get(n) or dataclass_of(hints.get(n)) for n in names}
    groups |= {n: c for n, c in classes.items() if n in params}
    missing = [n for n in flatten if groups.get(n) is None]
    if missing:
        raise TypeError(f"{fn.__name__}: {missing} are not settings dataclasses and cannot be flattened")
    return {n: cls for n, cls in groups.items() if cls is not None}


def add_switch(parser: ArgumentParser, name: str, default: bool, help_text: str) -> None:
    """A yes / no option: ``--name`` and ``--no_name`` (``name: true`` in a YAML file)."""
    parser.add_argument(f"--{name}", action=ActionYesNo(no_prefix="no_"), default=default, help=help_text)


def _switches(fn: Callable[..., Any], skip: Sequence[str]) -> dict[str, tuple[bool, str]]:
    """The boolean parameters of ``fn`` (its switches: ``resume``, ``overwrite``...): default, help."""
    docs = {p.arg_name: p.description or "" for p in docstring_parser.parse(fn.__doc__ or "").params}
    hints = type_hints(fn)
    return {
        name: (bool(p.default), docs.get(name, ""))
        for name, p in inspect.signature(fn).parameters.items()
        if name not in skip and hints.get(name) is bool
    }


def _hidden(name: str, hidden: Sequence[str]) -> set[str]:
    """The fields of the settings parameter ``name`` that ``hidden`` (``"name.field"``) names."""
    return {h.split(".", 1)[1] for h in hidden if h.startswith(f"{name}.")}


def add_function(
    parser: ArgumentParser,
    fn: Callable[..., Any],
    flatten: Sequence[str] = (),
    skip: Sequence[str] = (),
    classes: Mapping[str, type] | None = None,
    paths: Sequence[str] = (),
    hidden: Sequence[str] = (),
) -> None:
    """Add the parameters of ``fn`` (but ``skip``) to ``parser``; see the module docstring.

    A boolean parameter of ``fn`` is a switch (``--resume`` / ``--no_resume``); the boolean fields
    of a settings dataclass take a value (``--crf false``). The parameters named in ``paths`` take
    a file path on the command line (in Python they also take an object, e.g. a loaded model).
    """
    skip = (*skip, "progress")  # a command always shows its progress
    groups = _groups(fn, flatten, skip, classes or {})
    switches = _switches(fn, skip)
    parser.add_function_arguments(fn, None, skip={*skip, *groups, *switches, *paths}, fail_untyped=True)
    docs = {p.arg_name: p.description or "" for p in docstring_parser.parse(fn.__doc__ or "").params}
    for name in paths:
        default = inspect.signature(fn).parameters[name].default
        required = default is inspect.Parameter.empty
        parser.add_argument(
            f"--{name}",
            type=str if required else str | None,
            required=required,
            default=None if required else default,
            help=docs.get(name, ""),
        )
    for name, (default, help_text) in switches.items():
        add_switch(parser, name, default, help_text)
    for name, cls in groups.items():
        parser.add_class_arguments(cls, None if name in flatten else name, skip=_hidden(name, hidden))


def lazy_subcommands(
    prog: str,
    description: str,
    actions: Mapping[str, str],
    argv: Sequence[str],
    build: Callable[[str, ArgumentParser], None],
) -> tuple[ArgumentParser, dict[str, ArgumentParser]]:
    """The parser of ``prog ACTION ...`` (``actions``: name -> one-line help) and each action's.

    Only the action named in ``argv`` gets its arguments (``build(name, parser)``), so the other
    actions' modules are not imported: ``prog --help`` lists them all at once, ``prog ACTION
    --help`` reads one function.
    """
    chosen = next((word for word in argv if not word.startswith("-")), None)
    top = command_parser(prog, description, config=False)
    commands = top.add_subcommands(dest="action", required=True)
    parsers = {}
    for name, help_text in actions.items():
        parsers[name] = command_parser(f"{prog} {name}", help_text)
        if name == chosen:
            build(name, parsers[name])
        commands.add_subcommand(name, parsers[name], help=help_text)
    return top, parsers


def call(
    parser: ArgumentParser,
    fn: Callable[..., Any],
    namespace: Namespace,
    flatten: Sequence[str] = (),
    skip: Sequence[str] = (),
    classes: Mapping[str, type] | None = None,
    hidden: Sequence[str] = (),
    **given: Any,
) -> Any:
    """``fn`` called with the parsed ``namespace`` (and ``given`` arguments), settings rebuilt."""
    built = parser.instantiate(namespace)
    skip = (*skip, "progress")
    groups = _groups(fn, flatten, skip, classes or {})
    kwargs: dict[str, Any] = dict(given)
    if "progress" in inspect.signature(fn).parameters:
        kwargs.setdefault("progress", True)
    for name in inspect.signature(fn).parameters:
        if name in skip or name in given:
            continue
        if name in flatten:
            cls, left = groups[name], _hidden(name, hidden)
            kwargs[name] = cls(
                **{f.name: built[f.name] for f in dataclasses.fields(cls) if f.init and f.name not in left}
            )
        else:
            kwargs[name] = built[name]
    return fn(**kwargs)
