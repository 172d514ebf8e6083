"""The pipeline runner: ordered steps, a manifest in the workdir, atomic artefacts, resume.

A :class:`Step` is a dataclass whose fields are its configuration. It declares the artefacts it
reads and writes (paths relative to the workdir) and does its work in :meth:`Step.run`.
:class:`Pipeline` runs steps in order and records each one in ``manifest.json``::

    {"steps": {"coarse-scores": {"status": "done", "config_hash": "…", "config": {…},
                                 "outputs": ["scores.csv"], "seconds": 12.3, "result": {…}, …}}}

On ``run(resume=True)`` a step whose record is ``done`` with the same configuration hash, and whose
outputs exist, is skipped. A step that runs invalidates every step after it (their records become
``stale``), so changing one step's configuration re-runs it and everything downstream. A step that
was interrupted keeps its partial outputs when it is re-run with the same configuration (steps that
write one file per image skip the files already written); a step whose configuration changed starts
from empty outputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from sal_lightning._atomic import atomic_write_text

MANIFEST = "manifest.json"


@dataclass
class StepContext:
    """What a running step gets besides its configuration.

    Attributes:
        workdir: the pipeline's folder; artefacts are paths relative to it.
        trainer: keyword arguments for every ``lightning.Trainer`` a step builds (``accelerator``,
            ``devices``, ``strategy``, ``num_nodes``, ``logger``...), so all steps scale alike.
        fresh: True when the step's outputs were cleared before this run (new configuration);
            False when a previous interrupted run with the same configuration left partial
            outputs that the step may reuse.
    """

    workdir: Path
    trainer: dict[str, Any] = field(default_factory=dict)
    fresh: bool = True

    def path(self, artefact: str) -> Path:
        return self.workdir / artefact


@dataclass
class Step:
    """Base class of pipeline steps. Subclasses are dataclasses; their fields are the configuration.

    Class attributes:
        kind: the step's kind, used as its default name (``"coarse-scores"``).
        reads: artefacts (workdir-relative paths) that must exist before the step runs.
        writes: artefacts the step produces; cleared when the step re-runs with a new configuration.
    """

    kind: ClassVar[str] = "step"
    reads: ClassVar[tuple[str, ...]] = ()
    writes: ClassVar[tuple[str, ...]] = ()

    @property
    def name(self) -> str:
        """The step's unique name in a pipeline (the kind, unless a subclass qualifies it)."""
        return self.kind

    def inputs(self) -> tuple[str, ...]:
        """Artefacts read by this instance (defaults to the class's ``reads``)."""
        return self.reads

    def outputs(self) -> tuple[str, ...]:
        """Artefacts written by this instance (defaults to the class's ``writes``)."""
        return self.writes

    def config_dict(self) -> dict[str, Any]:
        """The configuration that identifies this step's result (hashed for resume)."""
        return _jsonable(dataclasses.asdict(self))

    def run(self, ctx: StepContext) -> dict[str, Any]:
        """Do the work; return a JSON-able summary (metrics, counts) for the manifest."""
        raise NotImplementedError


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def config_hash(config: dict[str, Any]) -> str:
    """A stable short hash of a JSON-able configuration."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape a step's result."""
    versions = {"python": platform.python_version()}
    for dist in ("sal-lightning", "torch", "lightning", "segmentation-models-pytorch", "albumentations"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


class Pipeline:
    """Runs ordered steps in a workdir with a manifest, atomic artefacts and resume.

    Args:
        workdir: folder for the manifest and every artefact (created).
        steps: the steps, in order; names must be unique.
        trainer: keyword arguments for every Lightning ``Trainer`` the steps build.
    """

    def __init__(
        self, workdir: str | os.PathLike[str], steps: Sequence[Step], trainer: dict[str, Any] | None = None
    ):
        self.workdir = Path(workdir)
        self.steps = list(steps)
        self.trainer = dict(trainer or {})
        names = [s.name for s in self.steps]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"steps: names must be unique, got duplicates {duplicates}")

    # -- manifest -----------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.workdir / MANIFEST

    def manifest(self) -> dict[str, Any]:
        """The manifest as stored (an empty one when the workdir is new)."""
        if not self.manifest_path.exists():
            return {"steps": {}}
        try:
            data = json.loads(self.manifest_path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{self.manifest_path}: not valid JSON ({err}); delete it to start over"
            ) from err
        if not isinstance(data, dict) or not isinstance(data.get("steps"), dict):
            raise ValueError(f"{self.manifest_path}: expected an object with a 'steps' object")
        return data

    def _save(self, manifest: dict[str, Any]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.manifest_path, json.dumps(manifest, indent=2) + "\n")

    # -- running ------------------------------------------------------------------------------
    def _index(self, name: str | None, argument: str) -> int | None:
        if name is None:
            return None
        for i, step in enumerate(self.steps):
            if step.name == name:
                return i
        raise ValueError(f"{argument}: no step named {name!r}; steps are {[s.name for s in self.steps]}")

    def is_done(self, step: Step, manifest: dict[str, Any] | None = None) -> bool:
        """Whether ``step`` finished with its current configuration and its outputs exist."""
        record = (manifest or self.manifest())["steps"].get(step.name, {})
        return (
            record.get("status") == "done"
            and record.get("config_hash") == config_hash(step.config_dict())
            and all((self.workdir / out).exists() for out in step.outputs())
        )

    def run(
        self,
        resume: bool = True,
        from_step: str | None = None,
        only: str | None = None,
        until: str | None = None,
    ) -> dict[str, Any]:
        """Run the steps; return the manifest.

        Args:
            resume: skip finished steps whose configuration is unchanged (else run everything).
            from_step: run this step and every step after it, whatever their records say.
            only: run just this step (its inputs must exist); later steps become stale.
            until: stop after this step (the steps up to and including it run).
        """
        start = self._index(from_step, "from_step")
        single = self._index(only, "only")
        last = self._index(until, "until")
        if start is not None and single is not None:
            raise ValueError("from_step and only: give one of them, not both")
        if single is not None and last is not None:
            raise ValueError("only and until: give one of them, not both")
        if start is not None and last is not None and last < start:
            raise ValueError(f"until: step {until!r} comes before from_step {from_step!r}")
        manifest = self.manifest()
        manifest["library"] = library_versions()
        forced_from = start if start is not None else (single if single is not None else None)
        downstream_changed = False
        for i, step in enumerate(self.steps):
            if last is not None and i > last:
                break
            if single is not None and i != single:
                continue
            forced = forced_from is not None and i >= forced_from
            if resume and not forced and not downstream_changed and self.is_done(step, manifest):
                continue
            self._run_step(i, step, manifest)
            downstream_changed = True
        return manifest

    def _run_step(self, index: int, step: Step, manifest: dict[str, Any]) -> None:
        records: dict[str, Any] = manifest["steps"]
        missing = [a for a in step.inputs() if not (self.workdir / a).exists()]
        if missing:
            producers = [s.name for s in self.steps if set(s.outputs()) & set(missing)]
            raise FileNotFoundError(
                f"step {step.name!r} needs {missing} in {self.workdir}; run "
                + (f"step(s) {producers} first" if producers else "a step that writes them first")
            )
        config = step.config_dict()
        digest = config_hash(config)
        previous = records.get(step.name, {})
        fresh = previous.get("config_hash") != digest or previous.get("status") in ("stale", None)
        if fresh:
            _clear(self.workdir, step.outputs())
        for later in self.steps[index + 1 :]:
            if later.name in records:
                records[later.name]["status"] = "stale"
        records[step.name] = {
            "status": "running",
            "config_hash": digest,
            "config": config,
            "outputs": list(step.outputs()),
            "started": _now(),
        }
        self._save(manifest)
        tic = time.perf_counter()
        try:
            result = step.run(StepContext(self.workdir, dict(self.trainer), fresh))
        except BaseException:
            records[step.name]["status"] = "failed"
            records[step.name]["seconds"] = round(time.perf_counter() - tic, 3)
            self._save(manifest)
            raise
        records[step.name].update(
            status="done",
            seconds=round(time.perf_counter() - tic, 3),
            finished=_now(),
            result=_jsonable(result or {}),
        )
        self._save(manifest)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _clear(workdir: Path, artefacts: Iterable[str]) -> None:
    for artefact in artefacts:
        path = workdir / artefact
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
