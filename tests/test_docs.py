"""The docs stay true: relative links resolve, and every Python code block compiles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").rglob("*.md")])
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
PY_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    for target in LINK.findall(page.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to missing {target}"


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
