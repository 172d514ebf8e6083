"""Developer sessions: ``nox -s tests lint typecheck docs build demo bench gpu``.

Sessions run in the current environment (``venv_backend="none"``): install the project once with
``pip install -e ".[all,dev]"`` (torch is several GB; one environment serves every session), in a
virtual environment or not. ``build`` checks the built wheel in fresh virtual environments of its own.
"""

from __future__ import annotations

import glob
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "docs", "build"]
nox.options.default_venv_backend = "none"


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (the same command as the README's)."""
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    session.run("ruff", "check", "src", "tests", "benchmarks", "examples", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "examples", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy on the library."""
    session.run("mypy", "src")


@nox.session
def docs(session: nox.Session) -> None:
    """Check the docs (links resolve, code blocks compile, named APIs exist) and build the site with
    warnings as errors into ``site/`` (``mkdocs serve`` shows it while writing)."""
    session.run("python", "-m", "pytest", "tests/test_docs.py", *session.posargs)
    session.run("mkdocs", "build", "--strict", "-d", "site", env={"NO_MKDOCS_2_WARNING": "1"})


def venv_seeing_environment(python: str, target: str, with_pip: bool = True) -> str:
    """Create a virtual environment at ``target`` whose interpreter also sees every package that
    ``python`` sees; return the new interpreter.

    ``venv --system-site-packages`` would show the *base* interpreter's packages, which are not the
    project's dependencies when ``python`` itself runs in a virtual environment; a ``.pth`` file
    adding ``python``'s site-packages folders works in both cases. Packages installed into the new
    environment come first.
    """
    command = [python, "-m", "venv", "--clear", target] + ([] if with_pip else ["--without-pip"])
    subprocess.run(command, check=True)
    new_python = str(Path(target) / "bin" / "python")
    show = "import sys\nfor p in sys.path:\n    if p.endswith(('site-packages', 'dist-packages')): print(p)"
    sites = subprocess.run([python, "-c", show], check=True, capture_output=True, text=True).stdout.split()
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run([new_python, "-c", where], check=True, capture_output=True, text=True).stdout
    lines = "".join(f"import site; site.addsitedir({site!r})\n" for site in sites)
    (Path(purelib.strip()) / "_outer_environment.pth").write_text(lines)
    return new_python


@nox.session
def build(session: nox.Session) -> None:
    """The distribution a release uploads: sdist + wheel, ``twine check --strict``, the sdist's file
    list (what rebuilding needs, nothing of the dev tree's run outputs), then the wheel in fresh
    virtual environments: it installs without a compiler and imports, and its command answers
    ``--help`` and runs ``sal-lightning demo --fast``."""
    shutil.rmtree("dist", ignore_errors=True)
    session.run("python", "-m", "build")
    session.run("twine", "check", "--strict", *glob.glob("dist/*"))
    check_sdist(glob.glob("dist/*.tar.gz")[0])
    wheel = glob.glob("dist/*.whl")[0]
    tmp = session.create_tmp()
    # An empty venv: the wheel installs (no compiler needed) and the package imports.
    session.run("python", "-m", "venv", "--clear", f"{tmp}/empty")
    session.run(f"{tmp}/empty/bin/pip", "install", "--no-deps", "--quiet", wheel)
    session.run(f"{tmp}/empty/bin/python", "-c", "import sal_lightning; print(sal_lightning.__version__)")
    # A venv that sees this environment's dependencies (torch is several GB): the wheel's command works.
    python = shutil.which("python") or "python"
    venv_seeing_environment(python, f"{tmp}/deps")
    session.run(f"{tmp}/deps/bin/pip", "install", "--no-deps", "--force-reinstall", "--quiet", wheel)
    session.run(
        f"{tmp}/deps/bin/python",
        "-c",
        "import sal_lightning; assert '/deps/' in sal_lightning.__file__, sal_lightning.__file__; "
        "from sal_lightning import SelectionLoss, AttentionLoss; print('the wheel imports')",
    )
    session.run(f"{tmp}/deps/bin/sal-lightning", "--version")
    session.run(f"{tmp}/deps/bin/sal-lightning", "--help", silent=True)
    demo = Path(tmp) / "demo"
    shutil.rmtree(demo, ignore_errors=True)
    session.run(f"{tmp}/deps/bin/sal-lightning", "demo", "--fast", "--workdir", str(demo), silent=True)
    if not (demo / "run" / "report.md").is_file():
        session.error("the wheel's demo --fast wrote no report")


#: what the sdist must hold to rebuild, and what it must not (run outputs of a development tree)
SDIST_NEEDS = (
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "src/sal_lightning/__init__.py",
    "src/sal_lightning/py.typed",
)
SDIST_REFUSES = ("sal-demo/", "runs/", "wandb/", "lightning_logs/", ".ckpt", "__pycache__", "site/", "dist/")


def check_sdist(path: str) -> None:
    """Fail when the sdist lacks a file a rebuild needs or holds a run output."""
    import tarfile

    with tarfile.open(path) as archive:
        names = [name.split("/", 1)[1] for name in archive.getnames() if "/" in name]
    missing = [need for need in SDIST_NEEDS if need not in names]
    outputs = [name for name in names if any(part in name for part in SDIST_REFUSES)]
    if missing or outputs:
        raise SystemExit(f"{path}: missing {missing}, run outputs {outputs[:10]}")
    print(f"{path}: {len(names)} files, none of them a run output")


@nox.session
def demo(session: nox.Session) -> None:
    """The one-command demo on the built-in synthetic data."""
    session.run("sal-lightning", "demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark in ``benchmarks/`` (prints ratios measured side by side)."""
    for script in sorted(glob.glob("benchmarks/bench_*.py")):
        session.run("python", script, *session.posargs)


@nox.session
def gpu(session: nox.Session) -> None:
    """On a CUDA machine only (never CI): the ``cuda``-marked tests, then the GPU check
    (``benchmarks/gpu_check.py``: the paper's networks at batch 7, crop 321 in fp32 and bf16,
    inference, CRF, the Table I scorer, DDP scaling; a JSON and a markdown table in
    ``runs/gpu_check``). Arguments after ``--`` go to the check."""
    session.run(
        "python",
        "-c",
        "import sys, torch; sys.exit(None if torch.cuda.is_available() else "
        "f'nox -s gpu: no CUDA device is visible to torch {torch.__version__}; run it on a GPU machine')",
    )
    session.run("python", "-m", "pytest", "-m", "cuda", "tests")
    session.run("python", "benchmarks/gpu_check.py", *session.posargs)
