"""The pipeline runner: manifest, skip on resume, invalidation downstream, partial runs, kill + resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sal_lightning._atomic import atomic_write_text
from sal_lightning.pipeline.runner import Pipeline, Step, StepContext


@dataclass
class Count(Step):
    """Writes numbers.txt = 0..n-1, one line per number."""

    kind: ClassVar[str] = "count"
    writes: ClassVar[tuple[str, ...]] = ("numbers.txt",)
    n: int = 3

    def run(self, ctx: StepContext) -> dict[str, Any]:
        atomic_write_text(ctx.path("numbers.txt"), "\n".join(map(str, range(self.n))))
        return {"n": self.n}


@dataclass
class Scale(Step):
    """Reads numbers.txt, writes scaled.txt with every number times factor."""

    kind: ClassVar[str] = "scale"
    reads: ClassVar[tuple[str, ...]] = ("numbers.txt",)
    writes: ClassVar[tuple[str, ...]] = ("scaled.txt",)
    factor: int = 2

    def run(self, ctx: StepContext) -> dict[str, Any]:
        numbers = [int(x) for x in ctx.path("numbers.txt").read_text().split()]
        atomic_write_text(ctx.path("scaled.txt"), "\n".join(str(x * self.factor) for x in numbers))
        return {"sum": sum(numbers) * self.factor}


def statuses(pipeline: Pipeline) -> dict[str, str]:
    return {name: rec["status"] for name, rec in pipeline.manifest()["steps"].items()}


def finished(pipeline: Pipeline) -> dict[str, str]:
    return {name: rec.get("finished", "") for name, rec in pipeline.manifest()["steps"].items()}


def test_runs_in_order_and_records_the_manifest(tmp_path: Path) -> None:
    manifest = Pipeline(tmp_path, [Count(n=4), Scale(factor=3)]).run()
    assert (tmp_path / "scaled.txt").read_text().split() == ["0", "3", "6", "9"]
    scale = manifest["steps"]["scale"]
    assert scale["status"] == "done" and scale["result"] == {"sum": 18}
    assert scale["config"] == {"factor": 3} and scale["outputs"] == ["scaled.txt"]
    assert "torch" in manifest["library"] and scale["seconds"] >= 0
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest


def test_resume_skips_finished_steps_and_reruns_changed_ones_downstream(tmp_path: Path) -> None:
    Pipeline(tmp_path, [Count(n=4), Scale()]).run()
    first = finished(Pipeline(tmp_path, []))
    Pipeline(tmp_path, [Count(n=4), Scale()]).run(resume=True)
    assert finished(Pipeline(tmp_path, [])) == first  # nothing redone
    Pipeline(tmp_path, [Count(n=5), Scale()]).run(resume=True)
    after = finished(Pipeline(tmp_path, []))
    assert after["count"] != first["count"] and after["scale"] != first["scale"]
    assert (tmp_path / "scaled.txt").read_text().split()[-1] == "8"


def test_missing_output_reruns_the_step(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path, [Count(), Scale()])
    pipeline.run()
    (tmp_path / "scaled.txt").unlink()
    assert not pipeline.is_done(pipeline.steps[1])
    pipeline.run()
    assert (tmp_path / "scaled.txt").exists()


def test_only_and_from(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path, [Count(), Scale()])
    with pytest.raises(FileNotFoundError, match=r"step 'scale' needs \['numbers.txt'\].*\['count'\]"):
        pipeline.run(only="scale")
    pipeline.run(only="count")
    assert statuses(pipeline) == {"count": "done"}
    pipeline.run()
    assert statuses(pipeline) == {"count": "done", "scale": "done"}
    pipeline.run(only="count")  # forced; the later step is now stale
    assert statuses(pipeline) == {"count": "done", "scale": "stale"}
    before = finished(pipeline)["count"]
    pipeline.run(from_step="scale")
    assert finished(pipeline)["count"] == before and statuses(pipeline)["scale"] == "done"
    with pytest.raises(ValueError, match="no step named 'nope'"):
        pipeline.run(only="nope")
    with pytest.raises(ValueError, match="not both"):
        pipeline.run(only="count", from_step="scale")


def test_until_runs_the_steps_up_to_and_including_one(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path, [Count(), Scale()])
    pipeline.run(until="count")
    assert statuses(pipeline) == {"count": "done"} and not (tmp_path / "scaled.txt").exists()
    pipeline.run(until="scale")  # the finished step is skipped, the next one runs
    assert statuses(pipeline) == {"count": "done", "scale": "done"}
    with pytest.raises(ValueError, match="comes before"):
        pipeline.run(from_step="scale", until="count")
    with pytest.raises(ValueError, match="only and until"):
        pipeline.run(only="scale", until="scale")
    with pytest.raises(ValueError, match="until: no step named 'nope'"):
        pipeline.run(until="nope")


def test_a_step_name_of_an_earlier_draft_is_refused(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path, [Count(), Scale()])
    with pytest.raises(ValueError, match="until: no step named 'fine-scores'"):
        pipeline.run(until="fine-scores")


def test_duplicate_names_and_bad_manifest(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="duplicates"):
        Pipeline(tmp_path, [Count(), Count()])
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json: not valid JSON"):
        Pipeline(tmp_path, [Count()]).run()


def test_failed_step_is_recorded_and_outputs_of_a_new_config_are_cleared(tmp_path: Path) -> None:
    @dataclass
    class Boom(Step):
        kind: ClassVar[str] = "boom"
        writes: ClassVar[tuple[str, ...]] = ("parts",)
        fail: bool = True

        def run(self, ctx: StepContext) -> dict[str, Any]:
            ctx.path("parts").mkdir(exist_ok=True)
            (ctx.path("parts") / f"fresh-{ctx.fresh}").touch()
            if self.fail:
                raise RuntimeError("boom")
            return {}

    pipeline = Pipeline(tmp_path, [Boom()])
    with pytest.raises(RuntimeError):
        pipeline.run()
    assert statuses(pipeline) == {"boom": "failed"}
    Pipeline(tmp_path, [Boom(fail=False)]).run()  # new config: partial outputs cleared first
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == ["fresh-True"]


@dataclass
class CopyFolder(Step):
    """Concatenates the files of an external folder (a source) into copied.txt."""

    kind: ClassVar[str] = "copy"
    writes: ClassVar[tuple[str, ...]] = ("copied.txt",)
    sources: ClassVar[tuple[str, ...]] = ("folder",)
    folder: str = ""

    def run(self, ctx: StepContext) -> dict[str, Any]:
        text = "".join(p.read_text() for p in sorted(Path(self.folder).iterdir()))
        atomic_write_text(ctx.path("copied.txt"), text)
        return {"files": len(list(Path(self.folder).iterdir()))}


@dataclass
class Upper(Step):
    kind: ClassVar[str] = "upper"
    reads: ClassVar[tuple[str, ...]] = ("copied.txt",)
    writes: ClassVar[tuple[str, ...]] = ("upper.txt",)

    def run(self, ctx: StepContext) -> dict[str, Any]:
        atomic_write_text(ctx.path("upper.txt"), ctx.path("copied.txt").read_text().upper())
        return {}


def test_a_changed_source_file_reruns_the_step_and_everything_after_it(tmp_path: Path) -> None:
    source, work = tmp_path / "source", tmp_path / "work"
    source.mkdir()
    (source / "a.txt").write_text("old")
    steps = [CopyFolder(folder=str(source)), Upper()]
    Pipeline(work, steps).run()
    pipeline = Pipeline(work, steps)
    assert [pipeline.status(s) for s in steps] == ["done", "done"]
    (source / "a.txt").write_text("new")  # the same name, new content: the configuration changed
    assert pipeline.status(steps[0]) == "changed"
    pipeline.run()
    assert (work / "upper.txt").read_text() == "NEW"
    (source / "b.txt").write_text("!")  # a new file counts too
    pipeline.run()
    assert (work / "upper.txt").read_text() == "NEW!"
    before = finished(pipeline)
    pipeline.run()  # unchanged: nothing re-runs
    assert finished(pipeline) == before


def test_progress_lines_and_statuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pipeline = Pipeline(tmp_path, [Count(n=4), Scale()])
    pipeline.run()
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("[1/2] count: started at ") and out[1].startswith("[1/2] count: done in ")
    assert out[1].endswith(" s: n 4") and out[3].endswith(": sum 12")
    pipeline.run()
    assert capsys.readouterr().out.splitlines()[0] == "[1/2] count: skipped: done with this configuration"
    manifest = pipeline.manifest()
    manifest["steps"]["scale"].update(status="running", pid=2**22 + 12345)  # no such process
    assert pipeline.status(pipeline.steps[1], manifest) == "interrupted"
    manifest["steps"]["scale"]["pid"] = os.getpid()
    assert pipeline.status(pipeline.steps[1], manifest) == "running"
    assert Pipeline(tmp_path, [Count(n=9)]).status(Count(n=9)) == "changed"
    assert Pipeline(tmp_path / "new", [Count()]).status(Count()) == "pending"

    @dataclass
    class Stopped(Step):
        kind: ClassVar[str] = "stopped"

        def run(self, ctx: StepContext) -> dict[str, Any]:
            raise KeyboardInterrupt  # Ctrl-C; Lightning's SIGTERM exception (a SystemExit) alike

    with pytest.raises(KeyboardInterrupt):
        Pipeline(tmp_path / "stop", [Stopped()]).run()
    assert Pipeline(tmp_path / "stop", []).status(Stopped()) == "interrupted"
    assert "[1/1] stopped: interrupted after" in capsys.readouterr().out
    Pipeline(tmp_path, [Count(n=4), Scale()], verbose=False).run(only="count")
    assert capsys.readouterr().out == "" and pipeline.status(pipeline.steps[1]) == "stale"


@dataclass
class Other(Step):
    """Reads nothing the other steps write."""

    kind: ClassVar[str] = "other"
    writes: ClassVar[tuple[str, ...]] = ("other/out.txt",)

    def run(self, ctx: StepContext) -> dict[str, Any]:
        atomic_write_text(ctx.path("other/out.txt"), "x")
        return {}


@dataclass
class Total(Step):
    """Reads scaled.txt (so, through Scale, numbers.txt)."""

    kind: ClassVar[str] = "total"
    reads: ClassVar[tuple[str, ...]] = ("scaled.txt",)
    writes: ClassVar[tuple[str, ...]] = ("total.txt",)

    def run(self, ctx: StepContext) -> dict[str, Any]:
        total = sum(int(x) for x in ctx.path("scaled.txt").read_text().split())
        atomic_write_text(ctx.path("total.txt"), str(total))
        return {"total": total}


def test_staleness_follows_what_a_step_reads(tmp_path: Path) -> None:
    """A re-run step makes stale the steps that read its outputs, directly or through another step,
    and only those: the others stay done and are not redone."""
    steps = [Count(n=3), Other(), Scale(), Total()]
    pipeline = Pipeline(tmp_path, steps, verbose=False)
    pipeline.run()
    before = finished(pipeline)
    pipeline.run(only="count")
    assert statuses(pipeline) == {"count": "done", "other": "done", "scale": "stale", "total": "stale"}
    pipeline.run()
    after = finished(pipeline)
    assert after["other"] == before["other"]  # did not read numbers.txt: not redone
    assert after["scale"] != before["scale"] and after["total"] != before["total"]
    Pipeline(tmp_path, [Count(n=4), Other(), Scale(), Total()], verbose=False).run()
    assert finished(pipeline)["other"] == before["other"] and (tmp_path / "total.txt").read_text() == "12"


SLOW_PIPELINE = """
import sys, time
from dataclasses import dataclass
from typing import ClassVar
from sal_lightning._atomic import atomic_write_text
from sal_lightning.pipeline.runner import Pipeline, Step

@dataclass
class Slow(Step):
    kind: ClassVar[str] = "slow"
    writes: ClassVar[tuple[str, ...]] = ("items",)
    n: int = 6
    def run(self, ctx):
        out = ctx.path("items"); out.mkdir(exist_ok=True)
        made = 0
        for i in range(self.n):
            if (out / f"{i}.txt").exists():
                continue  # resume: per-item outputs already written
            time.sleep(0.3)
            atomic_write_text(out / f"{i}.txt", str(i * i))
            made += 1
            print("wrote", i, flush=True)
        return {"made": made}

@dataclass
class First(Step):
    kind: ClassVar[str] = "first"
    writes: ClassVar[tuple[str, ...]] = ("first.txt",)
    def run(self, ctx):
        atomic_write_text(ctx.path("first.txt"), "1")
        return {}

Pipeline(sys.argv[1], [First(), Slow()]).run(resume=True)
"""


def test_sigkill_mid_step_then_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    script = tmp_path / "slow.py"
    script.write_text(textwrap.dedent(SLOW_PIPELINE))
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen([sys.executable, str(script), str(killed)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("wrote 2"):
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    interrupted = Pipeline(killed, [])
    assert statuses(interrupted) == {"first": "done", "slow": "running"}

    @dataclass
    class Slow(Step):
        kind: ClassVar[str] = "slow"

    assert interrupted.status(Slow()) == "interrupted"  # its process is gone
    first_done = finished(interrupted)["first"]
    assert json.loads((killed / ".lock").read_text())["pid"] == proc.pid  # the killed run's lock
    resume = subprocess.run(
        [sys.executable, str(script), str(killed)], check=True, capture_output=True, text=True
    )
    assert f"taking over the lock of {killed}: its process {proc.pid} on host" in resume.stderr
    assert not (killed / ".lock").exists()  # released at the end
    subprocess.run([sys.executable, str(script), str(clean)], check=True, capture_output=True)
    resumed = Pipeline(killed, []).manifest()["steps"]
    assert finished(Pipeline(killed, []))["first"] == first_done  # the finished step was not redone
    assert resumed["slow"]["status"] == "done" and resumed["slow"]["result"]["made"] == 3
    contents = {p.name: p.read_text() for p in (killed / "items").iterdir()}
    assert contents == {p.name: p.read_text() for p in (clean / "items").iterdir()}
    assert not [p for p in killed.rglob("*.tmp*")]
