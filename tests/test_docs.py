"""The docs stay true and the product stands alone: relative links resolve (files and anchors), no
file cites a path outside the repository, docstring cross-references resolve, and every Python code
block compiles."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").rglob("*.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)")
PY_BLOCK = re.compile(r"```python\n(.*?)```", re.S)
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
#: what a citation of something outside the repository looks like: the shared folder of the
#: machine the project was written on, its design notes, or an absolute path there
OUTSIDE = re.compile(
    r"\.\./shared|shared/(?:benchmarks|paper)|DESIGN\.md|\bDESIGN\b(?: section|,| \d)|/work/"
)
#: the files of the product and its checks (this test itself names the patterns)
CHECKED = sorted(
    path
    for folder in ("src", "docs", "examples", "benchmarks", "tests")
    for path in (ROOT / folder).rglob("*")
    if path.is_file()
    and path.suffix in (".py", ".md", ".yaml", ".yml", ".txt", ".toml", ".cfg")
    and path != Path(__file__).resolve()
) + [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "pyproject.toml", ROOT / "noxfile.py"]
CROSS_REFERENCE = re.compile(r":(?:func|class|data|mod|meth|attr|exc):`~?(sal_lightning(?:\.\w+)+)`")


def anchors(page: Path) -> set[str]:
    """The anchors of a markdown page's headings, as GitHub makes them (lower case, punctuation
    dropped, spaces to hyphens, ``-1``, ``-2`` for repeats), code blocks left out."""
    found: set[str] = set()
    for heading in re.findall(r"^#+ (.+?)\s*$", FENCE.sub("", page.read_text()), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchor, k = slug, 0
        while anchor in found:
            k += 1
            anchor = f"{slug}-{k}"
        found.add(anchor)
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    """Every relative link names a file that exists and, after ``#``, one of its headings."""
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if "://" in target or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        linked = page.parent / path if path else page
        assert linked.exists(), f"{page.relative_to(ROOT)} links to missing {path}"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.relative_to(ROOT)} links to missing {target}"


def test_no_file_cites_a_path_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{k + 1}: {line.strip()}"
        for path in CHECKED
        for k, line in enumerate(path.read_text(errors="replace").splitlines())
        if OUTSIDE.search(line)
    ]
    assert not found, "cites a path outside the repository:\n" + "\n".join(found)


def test_the_anchor_rule_is_githubs() -> None:
    page = ROOT / "docs" / "scoring.md"
    assert {"the-fine-scorers-sec-iii-b2-table-i-eq-6-7", "coarse-scores-eq-3-5"} <= anchors(page)


def resolves(name: str) -> bool:
    """Whether a dotted name is a module of the package or an attribute of one."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        try:
            for part in parts[k:]:
                target = getattr(target, part)
        except AttributeError:
            return False
        return True
    return False


def test_docstring_cross_references_resolve() -> None:
    """``:func:`~sal_lightning.x.y``` and the like name objects that exist (after a move, too)."""
    missing = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "src").rglob("*.py"))
        for name in CROSS_REFERENCE.findall(path.read_text())
        if not resolves(name)
    ]
    assert not missing, missing
    assert not resolves("sal_lightning.data.scorer_data.AgreementDataset")  # moved: would be caught


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_compile(page: Path) -> None:
    for i, block in enumerate(PY_BLOCK.findall(page.read_text())):
        compile(block, f"{page.name}[block {i}]", "exec")


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- test-command -->\n```bash\n(.*?)\n```\n<!-- /test-command -->", readme, re.S)
    assert block, "README.md must hold the test command between <!-- test-command --> markers"
    assert "README.md" in (ROOT / ".ci" / "run").read_text()


def test_nox_build_venv_sees_the_packages_of_a_virtual_environment(tmp_path: Path) -> None:
    """``nox -s build`` run from a virtual environment: its second venv must see that venv's
    packages (``--system-site-packages`` would show the base interpreter's instead)."""
    import importlib.util
    import subprocess
    import sys

    spec = importlib.util.spec_from_file_location("noxfile", ROOT / "noxfile.py")
    assert spec is not None and spec.loader is not None
    noxfile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(noxfile)
    outer = tmp_path / "outer"  # stands for the developer's venv, holding a package of its own
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(outer)], check=True)
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run(
        [outer / "bin" / "python", "-c", where], capture_output=True, text=True, check=True
    )
    (Path(purelib.stdout.strip()) / "only_in_outer.py").write_text("VALUE = 42\n")
    inner = noxfile.venv_seeing_environment(str(outer / "bin" / "python"), str(tmp_path / "inner"), False)
    seen = subprocess.run(
        [inner, "-c", "import only_in_outer; print(only_in_outer.VALUE)"], capture_output=True, text=True
    )
    assert seen.stdout.strip() == "42", seen.stderr
    system = tmp_path / "system"  # what the session did before: the base interpreter's packages only
    subprocess.run(
        [outer / "bin" / "python", "-m", "venv", "--without-pip", "--system-site-packages", system]
    )
    assert subprocess.run([system / "bin" / "python", "-c", "import only_in_outer"]).returncode != 0


def test_documentation_site_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    """The site (docs/ + the API reference from the docstrings) builds under ``strict``: a broken
    link, an unknown docstring reference or a documented parameter the signature lacks fails."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    site = tmp_path / "site" / "api"
    pages = {"losses": ("SelectionLoss", "AttentionLoss"), "models": ("SALSegmenter", "MaskScorer")}
    pages["data"] = ("VOCSegmentationDataModule", "VOCClassificationDataModule", "MaskScorerDataModule")
    for page, names in pages.items():
        html = (site / page / "index.html").read_text()
        for name in names:
            assert re.search(rf'id="sal_lightning\.{page}\.[\w.]*\b{name}"', html), (page, name)
