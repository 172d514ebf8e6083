"""The shape of the code: layers depend downward only, no import cycle, small modules and functions.

Imports are read from the source with ``ast`` (the ones inside functions too), so the checks need
no import of the package and cover every file.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "sal_lightning"
#: the packages (and helper modules) of ``sal_lightning``, lowest first; a layer may import only
#: the layers before it (and itself). See docs/development.md, "Layout".
LAYERS: tuple[tuple[str, ...], ...] = (
    ("_atomic", "_checks", "_console", "_download", "_lazy", "_threads", "_versions"),
    ("losses", "nn", "postprocess"),
    ("scoring",),
    ("data",),
    ("models",),
    ("callbacks",),
    ("stages",),
    ("pipeline",),
    ("paper",),
    ("cli",),
)
#: the package itself (``__init__``, ``__main__``) may name anything: its exports are lazy
TOP = ("__init__", "__main__")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def modules() -> dict[str, Path]:
    """``{"sal_lightning.x.y": path}`` of every module of the package."""
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of the package that ``name`` imports (``from a import b`` names ``a.b`` when
    ``b`` is a module, else ``a``)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parents, base] if base else parents)
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {m for m in found if m in known and m != name}


def layer(name: str) -> int | None:
    """The index in :data:`LAYERS` of a module's top-level package, ``None`` for the package itself."""
    parts = name.split(".")
    if len(parts) == 1 or parts[1] in TOP:
        return None
    return next(k for k, group in enumerate(LAYERS) if parts[1] in group)


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_every_package_has_a_layer() -> None:
    tops = {name.split(".")[1] for name in modules() if "." in name}
    placed = {p for group in LAYERS for p in group} | set(TOP)
    assert tops <= placed, f"give {sorted(tops - placed)} a layer in LAYERS (and in docs/development.md)"


def test_layers_depend_downward_only() -> None:
    upward = [
        f"{a} -> {b}"
        for a, targets in graph().items()
        for b in targets
        if layer(a) is not None and layer(b) is not None and layer(b) > layer(a)  # type: ignore[operator]
    ]
    assert not upward, "imports that go up a layer:\n" + "\n".join(sorted(upward))


def _cycles(edges: dict[str, set[str]]) -> Iterator[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> Iterator[list[str]]:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                yield from visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                yield sorted(component)

    for node in sorted(edges):
        if node not in index:
            yield from visit(node)


def test_no_import_cycle_between_files() -> None:
    cycles = list(_cycles(graph()))
    assert not cycles, f"import cycles: {cycles}"


def test_no_import_cycle_between_packages() -> None:
    packages: dict[str, set[str]] = {}
    for a, targets in graph().items():
        for b in targets:
            pa, pb = a.split(".")[:2], b.split(".")[:2]
            if len(pa) > 1 and len(pb) > 1 and pa != pb:
                packages.setdefault(".".join(pa), set()).add(".".join(pb))
    cycles = list(_cycles(packages))
    assert not cycles, f"import cycles between packages: {cycles}"


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_and_functions_are_small(name: str) -> None:
    path = modules()[name]
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, (
        f"{path.relative_to(SRC.parent)}: over {MAX_MODULE_LINES} lines"
    )
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"  # type: ignore[operator]
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES  # type: ignore[operator]
    ]
    assert not long, f"{path.relative_to(SRC.parent)}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_one_entry_point_parses_command_lines() -> None:
    """``argparse`` is the entry point's alone; every command is a jsonargparse or LightningCLI shell."""
    users = [
        name
        for name, path in modules().items()
        if name != "sal_lightning.cli.main"
        and "ArgumentParser(" in path.read_text().replace("jsonargparse", "")
        and "import argparse" in path.read_text()
    ]
    assert not users, f"hand-written argparse parsers outside sal_lightning.cli.main: {users}"


#: the most positional arguments a call in the package passes; past them, arguments are named
MAX_POSITIONAL = 4


def test_no_formatter_exemption() -> None:
    """No ``# fmt: skip``: a call or a table that only fits packed by hand is the wrong shape."""
    marker = "# fmt" + ": skip"
    exempt = [str(path.relative_to(SRC.parent)) for path in modules().values() if marker in path.read_text()]
    assert not exempt, f"formatter exemptions in {exempt}"


def test_no_call_passes_more_than_four_positional_arguments() -> None:
    crowded = [
        f"{path.relative_to(SRC.parent)}:{node.lineno} {ast.unparse(node.func)}"
        for path in modules().values()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and len(node.args) > MAX_POSITIONAL
    ]
    assert not crowded, f"calls with more than {MAX_POSITIONAL} positional arguments: {crowded}"


def stage_functions() -> dict[str, ast.FunctionDef]:
    """The stage functions: the public module-level functions of the modules of ``stages``."""
    return {
        f"{name}.{node.name}": node
        for name, path in modules().items()
        if name.startswith("sal_lightning.stages.")
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
    }


def test_stage_functions_take_keywords_after_the_first_two_arguments() -> None:
    functions = stage_functions()
    assert {"sal_lightning.stages.coarse.score_coarse", "sal_lightning.stages.scorer.train_scorer"} <= set(
        functions
    )
    positional = {
        name: [a.arg for a in node.args.posonlyargs + node.args.args]
        for name, node in functions.items()
        if len(node.args.posonlyargs + node.args.args) > 2
    }
    assert not positional, f"stage functions with more than two positional parameters: {positional}"


def test_steps_live_with_their_stages() -> None:
    """Every pipeline step is defined in the stage module whose function it runs; ``pipeline`` keeps
    the runner, the manifest and the configuration tree."""
    assert not (SRC / "pipeline" / "steps.py").exists()
    steps = {
        f"{name}.{node.name}"
        for name, path in modules().items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and any(ast.unparse(base) == "Step" for base in node.bases)
    }
    assert len(steps) >= 10 and all(s.startswith("sal_lightning.stages.") for s in steps), sorted(steps)
