"""The pipeline runner: ordered steps, a manifest in the workdir, atomic artefacts, resume.

A :class:`~sal_lightning.stages.step.Step` is a dataclass whose fields are its configuration; each
stage module defines its own. It declares the artefacts it reads and writes (paths relative to the
workdir) and does its work in ``run``. :class:`Pipeline` runs steps in order and records each one
in ``manifest.json``::

    {"steps": {"coarse": {"status": "done", "config_hash": "…", "config": {…},
                                 "outputs": ["scores.csv"], "seconds": 12.3, "result": {…}, …}}}

On ``run(resume=True)`` a step whose record is ``done`` with the same configuration hash, and whose
outputs exist, is skipped. A step that runs invalidates the later steps that read what it writes,
directly or through other steps (their records become ``stale``): changing one step's configuration
re-runs it and what depends on it, and only that (a retraining on all proxies does not read the
selection, so a new selection leaves it done). A step that was interrupted (Ctrl-C, a kill) is
recorded as ``interrupted`` and keeps its partial outputs when it is re-run with the same
configuration (steps that write one file per image skip the files already written); a step whose
configuration changed starts from empty outputs. One run at a time holds a workdir
(:class:`~sal_lightning.pipeline.lock.WorkdirLock`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sal_lightning._atomic import atomic_write_text, check_writable
from sal_lightning._console import format_seconds, step_label
from sal_lightning._threads import apply_threads
from sal_lightning._versions import library_versions
from sal_lightning.pipeline.lock import WorkdirLock
from sal_lightning.pipeline.manifest import (
    alive,
    clear,
    config_hash,
    describe_result,
    folder_hash,
    jsonable,
    now,
)
from sal_lightning.stages.step import Step, StepContext
from sal_lightning.stages.trainer import TrainerSettings, cpu_processes

MANIFEST = "manifest.json"


def reads_from(inputs: Sequence[str], outputs: Sequence[str]) -> bool:
    """Whether one of ``inputs`` is one of ``outputs``, holds one or lies inside one (workdir paths:
    ``step1/proxies`` is inside ``step1``)."""
    return any(a == b or a.startswith(f"{b}/") or b.startswith(f"{a}/") for a in inputs for b in outputs)


def reads(step: Step, outputs: Sequence[str]) -> bool:
    """Whether ``step`` reads an artefact among ``outputs`` (see :func:`reads_from`)."""
    return reads_from(step.inputs(), outputs)


def step_config(step: Step) -> dict[str, Any]:
    """The configuration that identifies a step's result (hashed for resume): its fields, plus
    ``source_hashes`` (field -> :func:`~sal_lightning.pipeline.manifest.folder_hash`) for the
    fields named in its ``sources``."""
    config = jsonable(dataclasses.asdict(step))  # type: ignore[call-overload]
    if step.sources:
        config["source_hashes"] = {name: folder_hash(getattr(step, name)) for name in step.sources}
    return config


class Pipeline:
    """Runs ordered steps in a workdir with a manifest, atomic artefacts and resume.

    Args:
        workdir: folder for the manifest and every artefact (created).
        steps: the steps, in order; names must be unique.
        trainer: the settings of every Lightning ``Trainer`` the steps build.
        verbose: print one line when a step starts and one when it ends (its time and result),
            and one for each step skipped on resume.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        steps: Sequence[Step],
        trainer: TrainerSettings | None = None,
        verbose: bool = True,
    ):
        self.workdir = Path(workdir)
        self.steps = list(steps)
        self.trainer = trainer or TrainerSettings()
        self.verbose = verbose
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

    def check(self) -> None:
        """Every step's :meth:`Step.check` and training batch sizes (:meth:`Step.batch_sizes`, which
        the trainer settings must divide when they are global batches), then the accelerator and
        devices of the Trainer settings (on this machine) and whether the workdir can be written:
        before any work.

        Errors name the step: ``retrain-P2: model.backbone: ...``.
        """
        for step in self.steps:
            try:
                step.check()
                for name, batch in step.batch_sizes().items():
                    self.trainer.local_batch(batch, name)
            except (ValueError, OSError, ImportError) as err:
                try:
                    named = type(err)(f"{step.name}: {err}")
                except TypeError:  # an exception type with other constructor arguments
                    named = ValueError(f"{step.name}: {err}")
                raise named from err
        self.trainer.check()
        check_writable(self.workdir, "workdir")

    def is_done(self, step: Step, manifest: dict[str, Any] | None = None) -> bool:
        """Whether ``step`` finished with its current configuration and its outputs exist."""
        record = (manifest or self.manifest())["steps"].get(step.name, {})
        return (
            record.get("status") == "done"
            and record.get("config_hash") == config_hash(step_config(step))
            and all((self.workdir / out).exists() for out in step.outputs())
        )

    def status(self, step: Step, manifest: dict[str, Any] | None = None) -> str:
        """The step's state as a word: ``done`` (finished with its current configuration and
        sources), ``changed`` (finished, but its configuration or a source folder changed since),
        ``stale`` (an earlier step re-ran after it), ``running`` (in a live process),
        ``interrupted`` (its process ended mid-step: killed, or stopped with Ctrl-C), ``failed``
        or ``pending`` (never run)."""
        manifest = manifest or self.manifest()
        record = manifest["steps"].get(step.name)
        if record is None:
            return "pending"
        if self.is_done(step, manifest):
            return "done"
        status = str(record.get("status", "pending"))
        if status == "done":
            return "changed"
        if status == "running" and not alive(record):
            return "interrupted"
        return status

    def run(
        self,
        resume: bool = True,
        from_step: str | None = None,
        only: str | None = None,
        until: str | None = None,
        prepare: Callable[[], Any] | None = None,
    ) -> dict[str, Any]:
        """Run the steps; return the manifest.

        Args:
            resume: skip finished steps whose configuration is unchanged (else run everything).
            from_step: run this step and every step after it, whatever their records say.
            only: run just this step (its inputs must exist); the later steps that read what it
                writes (directly or not) become stale.
            until: stop after this step (the steps up to and including it run).
            prepare: work that must succeed before any step, called after the checks (the
                pipeline command fetches the initial weights with it).

        :meth:`check` runs first: an invalid configuration fails before any step starts.
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
        self.check()
        if prepare is not None:
            prepare()
        with WorkdirLock(self.workdir):
            apply_threads(cpu_processes(self.trainer.accelerator, self.trainer.devices))
            manifest = self.manifest()
            manifest["library"] = library_versions()
            forced_from = start if start is not None else (single if single is not None else None)
            changed: list[str] = []  # artefacts rewritten by this run: the steps reading them re-run
            for i, step in enumerate(self.steps):
                if last is not None and i > last:
                    break
                if single is not None and i != single:
                    continue
                forced = forced_from is not None and i >= forced_from
                if resume and not forced and not reads(step, changed) and self.is_done(step, manifest):
                    self._say(i, step, "skipped: done with this configuration")
                    continue
                self._run_step(i, step, manifest)
                changed += step.outputs()
        return manifest

    def _label(self, index: int, step: Step) -> str:
        width = len(str(len(self.steps)))
        return f"[{index + 1:{width}d}/{len(self.steps)}] {step.name}"

    def _say(self, index: int, step: Step, text: str) -> None:
        if self.verbose:
            print(f"{self._label(index, step)}: {text}", flush=True)

    def _run_step(self, index: int, step: Step, manifest: dict[str, Any]) -> None:
        records: dict[str, Any] = manifest["steps"]
        missing = [a for a in step.inputs() if not (self.workdir / a).exists()]
        if missing:
            producers = [s.name for s in self.steps if reads_from(missing, s.outputs())]
            raise FileNotFoundError(
                f"step {step.name!r} needs {missing} in {self.workdir}; run "
                + (f"step(s) {producers} first" if producers else "a step that writes them first")
            )
        config = step_config(step)
        digest = config_hash(config)
        previous = records.get(step.name, {})
        fresh = previous.get("config_hash") != digest or previous.get("status") in ("stale", None)
        if fresh:
            clear(self.workdir, step.outputs())
        written = list(step.outputs())
        for later in self.steps[index + 1 :]:  # what reads this step's outputs, directly or not
            if reads(later, written):
                written += later.outputs()
                if later.name in records:
                    records[later.name]["status"] = "stale"
        records[step.name] = {
            "status": "running",
            "config_hash": digest,
            "config": config,
            "outputs": list(step.outputs()),
            "started": now(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        self._save(manifest)
        self._say(index, step, f"started at {datetime.now().strftime('%H:%M:%S')}")
        tic, cpu = time.perf_counter(), time.process_time()
        try:
            with step_label(self._label(index, step)):
                result = step.run(StepContext(self.workdir, self.trainer, fresh))
        except BaseException as err:
            seconds = time.perf_counter() - tic
            # Ctrl-C, or SIGTERM (Lightning raises SIGTERMException, a SystemExit): stopped, not broken
            status = "interrupted" if isinstance(err, KeyboardInterrupt | SystemExit) else "failed"
            records[step.name]["status"] = status
            records[step.name]["seconds"] = round(seconds, 3)
            self._save(manifest)
            self._say(index, step, f"{status} after {format_seconds(seconds)}")
            raise
        seconds = time.perf_counter() - tic
        records[step.name].update(
            status="done",
            seconds=round(seconds, 3),
            cpu_seconds=round(time.process_time() - cpu, 3),
            finished=now(),
            result=jsonable(result or {}),
        )
        self._save(manifest)
        summary = describe_result(records[step.name]["result"])
        self._say(index, step, f"done in {format_seconds(seconds)}" + (f": {summary}" if summary else ""))
