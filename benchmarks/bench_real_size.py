"""Every stage of the paper's ResNet-101 pipeline at real size on the CPU: seconds per image, peak
memory, and how much of each stage is network work (bound by the GPU on a GPU) or CPU work.

``examples/configs/pipeline_voc_resnet101.yaml`` on synthetic VOC-format images of 500 x 375 (the
size of a PASCAL VOC image) with the configuration's crops (CAM 448, ProxyNet and retraining 321,
scorer 256), scales and CRFs; weights files calibrated on the images (``nn.calibrate``) stand in for
the initial weights. Trainings run ``--steps`` steps of ``--batch`` images; the retraining is P5
(P2..P4 cost the same or less). Each stage runs in a process of its own (``--threads`` intra-op
threads; the evaluation's CRF pool too runs in the process), which reports:

- seconds per image: the process's CPU time over the images the stage handled (training: steps x
  batch), and its wall time (which a loaded machine inflates);
- the split of the CPU time: network (every outermost ``nn.Module`` call, ``Tensor.backward`` and
  the optimiser steps: the part a GPU runs), data (the datasets' ``__getitem__``: cropping,
  scaling, flipping, normalising), CRF (dense CRF), IO (image decoding, PNG / CAM files) and the
  rest (seeds, scoring arithmetic, losses outside modules, checkpoint loading, the loops' Python),
  each moment counted once, to the innermost of these calls;
- peak memory: the process's peak resident set size (``getrusage``), and its rise over the
  process's size once the stage's configuration is loaded.

The time counts the stage's own work, as the pipeline runs it, without the pipeline's checks and
the process start.

::

    python benchmarks/bench_real_size.py                          # 3 + 2 images, 2 steps of 2, 1 thread
    python benchmarks/bench_real_size.py --images 6 --steps 4 --json out.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "examples" / "configs" / "pipeline_voc_resnet101.yaml"
HEIGHT, WIDTH = 375, 500
#: stage -> (what runs, the unit its seconds are per)
STAGES: dict[str, tuple[str, str]] = {
    "cam": ("step 1: CAM network training (VGG16, crop 448)", "training image"),
    "cams": ("step 1: CAMs, scales 1/0.5/1.5/2 + flip", "image"),
    "seeds": ("step 1: seeds from CAMs and saliency", "image"),
    "train": ("step 1: ProxyNet training (DeepLab v2 R101, crop 321)", "training image"),
    "predict": ("step 1: proxies, scales 0.5/0.75/1 + flip + CRF", "image"),
    "p1": ("step 1: P1 on val (no tags)", "image"),
    "references": ("reference masks (saliency + CRF)", "image"),
    "coarse": ("coarse scores (Eq. 3-5)", "image"),
    "scorer": ("Table I scorer: training set + training", "training sample"),
    "fine": ("fine scores (Table I scorer)", "image"),
    "select": ("selection (Eq. 9) and the oracle's true quality", "image"),
    "retrain-P5": ("retraining P5 (DeepLab v2 R101, crop 321)", "training image"),
    "evaluate": ("evaluation P5: scales 0.5/0.75/1 + CRF", "image"),
}
STEP1 = ("cam", "cams", "seeds", "train", "predict")
CATEGORIES = ("network", "data", "crf", "io")


class Clock:
    """Process CPU time by category, each moment counted once: to the innermost wrapped call running
    (a PNG read inside a dataset's ``__getitem__`` is IO, the rest of it data). CPU time, not wall
    time: other processes sharing the cores do not inflate it."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(CATEGORIES, 0.0)
        self._stack: list[str] = []
        self._since = time.process_time()

    def _switch(self) -> None:
        now = time.process_time()
        if self._stack:
            self.seconds[self._stack[-1]] += now - self._since
        self._since = now

    def wrap(self, category: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._switch()
            self._stack.append(category)
            try:
                return fn(*args, **kwargs)
            finally:
                self._switch()
                self._stack.pop()

        return timed


def instrument(clock: Clock) -> None:
    """Route the network, CRF and file calls of torch and of the library through ``clock``."""
    import torch

    import sal_lightning.data.datasets as datasets
    import sal_lightning.data.io as io
    import sal_lightning.data.proxy_data as proxy_data
    import sal_lightning.data.scorer_data as scorer_data
    import sal_lightning.pipeline.config  # noqa: F401  (every stage module: each imports IO functions)
    import sal_lightning.postprocess.crf as crf

    torch.nn.Module.__call__ = clock.wrap("network", torch.nn.Module.__call__)  # type: ignore[method-assign]
    torch.Tensor.backward = clock.wrap("network", torch.Tensor.backward)  # type: ignore[method-assign]
    for optimiser in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW):
        optimiser.step = clock.wrap("network", optimiser.step)  # type: ignore[method-assign]
    crf._run_crf = clock.wrap("crf", crf._run_crf)
    for module in (datasets, proxy_data, scorer_data):
        for value in list(vars(module).values()):
            if (
                isinstance(value, type)
                and "__getitem__" in vars(value)
                and value.__module__ == module.__name__
            ):
                value.__getitem__ = clock.wrap("data", value.__getitem__)  # type: ignore[method-assign]
    pool_init = crf.CRFPool.__init__

    def in_process(pool: crf.CRFPool, processes: int = 0, start_method: Any = "spawn") -> None:
        pool_init(pool, 0, start_method)  # every CRF in this process, on its clock

    crf.CRFPool.__init__ = in_process  # type: ignore[method-assign]
    names = (
        "read_image",
        "write_image",
        "read_label_png",
        "write_label_png",
        "read_gray_png",
        "write_gray_png",
        "read_reference",
        "write_reference",
        "read_cams",
        "write_cams",
    )
    originals = {id(getattr(io, n)): clock.wrap("io", getattr(io, n)) for n in names}
    for module in [m for name, m in sys.modules.items() if name.startswith("sal_lightning")]:
        for attribute, value in list(vars(module).items()):
            if id(value) in originals:
                setattr(module, attribute, originals[id(value)])


def rss_mib() -> float:
    """The process's peak resident set size so far, in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage_work(stage: str, work: Path, setup: dict[str, Any]) -> Callable[[], Any]:
    """The work of one stage in ``work``, ready to run: configuration loaded and checked, networks
    not yet built (what a step does when the pipeline runs it, without the pipeline's checks)."""
    from sal_lightning.pipeline.config import build_pipeline, load_config
    from sal_lightning.stages.step import StepContext
    from sal_lightning.stages.step1 import Step1

    config = load_config(setup["config"])
    proxies = config.proxies
    assert not isinstance(proxies, str)
    if stage in STEP1 or stage == "p1":
        split, folder = (config.val_split, "step1/p1") if stage == "p1" else (config.train_split, "step1")
        step1 = Step1(
            config.root,
            work / folder,
            split=split,
            settings=proxies,
            saliency=config.saliency,
            trainer=config.trainer,
        )
        step1.workdir.mkdir(parents=True, exist_ok=True)
        if stage == "p1":
            return lambda: step1.predict_proxies(work / "step1" / "proxynet.ckpt", with_tags=False)
        return lambda: step1.run(stage)  # type: ignore[arg-type]
    step = next(s for s in build_pipeline(config, work).steps if s.name == stage)
    context = StepContext(work, config.trainer, fresh=True)
    return lambda: step.run(context)


def units(stage: str, work: Path, setup: dict[str, Any]) -> int:
    """The images (training: images trained on; scorer: samples) a finished stage handled."""
    if stage in ("cam", "train", "retrain-P5"):
        return int(setup["steps"] * setup["batch"])
    if stage == "scorer":
        index = work / "scorer" / "samples" / "samples.csv"
        return sum(1 for _ in index.open()) - 1
    return int(setup["val" if stage in ("p1", "evaluate") else "train"])


def child(stage: str, work: Path) -> None:
    """The ``--child`` process: one stage, measured; prints one JSON line."""
    import torch

    setup = json.loads((work / "setup.json").read_text())
    torch.set_num_threads(setup["threads"])
    clock = Clock()
    instrument(clock)
    run = stage_work(stage, work, setup)
    base = rss_mib()
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    row = {"stage": stage, "units": units(stage, work, setup), "wall": wall, "cpu": cpu, **clock.seconds}
    print(json.dumps({**row, "rss_mib": rss_mib(), "base_mib": base}), flush=True)


def prepare(work: Path, args: argparse.Namespace) -> None:
    """Synthetic images, calibrated weights files and the benchmark's configuration in ``work``."""
    import yaml

    from sal_lightning.data.datamodules import VOCSegmentationDataModule
    from sal_lightning.data.synthetic import make_synthetic_voc
    from sal_lightning.nn.calibrate import write_calibrated_backbone
    from sal_lightning.pipeline.config import load_config

    root = make_synthetic_voc(work / "voc", n_train=args.images, n_val=args.val, size=(HEIGHT, WIDTH), seed=0)
    data = VOCSegmentationDataModule(str(root), val_split="train", eval_batch_size=1, num_workers=0)
    data.setup("validate")
    images = [batch["image"] for batch in data.val_dataloader()][:2]
    paper = load_config(CONFIG, root=str(root))
    assert not isinstance(paper.proxies, str)
    weights = {
        key: str(write_calibrated_backbone(name, work / f"{key}.pth", images))
        for key, name in (("cam", paper.proxies.cam_backbone), ("deeplab", paper.proxies.proxy_backbone))
    }
    raw = yaml.safe_load(CONFIG.read_text())
    steps, batch = args.steps, args.batch
    raw.update(
        root=str(root),
        train_split="train",
        val_split="val",
        saliency=str(root / "saliency"),
        trainer={**raw["trainer"], "accelerator": "cpu", "enable_progress_bar": False},
        references={**raw["references"], "processes": 0},
        coarse={**raw["coarse"], "num_workers": 0},
        scorer={**raw["scorer"], "max_epochs": 1},
        select={"mode": raw["select"]["mode"], "keep": 0.5, "keep_coarse": 0.5},
    )
    raw["proxies"].update(
        cam_encoder_weights=weights["cam"],
        proxy_encoder_weights=weights["deeplab"],
        num_workers=0,
        cam_steps=steps,
        cam_batch_size=batch,
        proxy_steps=steps,
        proxy_batch_size=batch,
        crf_processes=0,
    )
    retrain = raw["retrain"]
    retrain.update(variants=["P5"], max_steps=steps)
    retrain["model"].update(encoder_weights=weights["deeplab"], crf_processes=0)
    retrain["data"].update(batch_size=batch, num_workers=0)
    (work / "config.yaml").write_text(yaml.safe_dump(raw))
    setup = {"config": str(work / "config.yaml"), "threads": args.threads, "steps": steps, "batch": batch}
    setup.update(train=args.images, val=args.val)
    (work / "setup.json").write_text(json.dumps(setup))


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of the stages' rows."""
    lines = [
        "| stage | per | CPU s | wall s | network | data | CRF | IO | other | peak RSS MiB (rise) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        n = max(r["units"], 1)
        parts = [r[c] for c in CATEGORIES]
        parts.append(max(r["cpu"] - sum(parts), 0.0))
        shares = [f"{v / n:.2f} ({v / r['cpu']:.0%})" for v in parts]
        what, unit = STAGES[r["stage"]]
        peak = f"{r['rss_mib']:.0f} (+{r['rss_mib'] - r['base_mib']:.0f})"
        times = f"{r['cpu'] / n:.2f} | {r['wall'] / n:.2f}"
        lines.append(f"| {what} | {unit} | {times} | " + " | ".join(shares) + f" | {peak} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3, help="training images (500 x 375)")
    parser.add_argument("--val", type=int, default=2, help="validation images")
    parser.add_argument("--steps", type=int, default=2, help="steps of every training")
    parser.add_argument("--batch", type=int, default=2, help="batch of every training but the scorer's")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads per stage")
    parser.add_argument("--stages", nargs="*", default=list(STAGES), choices=list(STAGES))
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument("--child", choices=list(STAGES), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.work)
        return
    from sal_lightning._versions import library_versions

    load = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="sal_real_size_") as tmp:
        work = Path(tmp)
        prepare(work, args)
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONWARNINGS": "ignore"}
        for stage in (s for s in STAGES if s in args.stages):
            command = [sys.executable, __file__, "--child", stage, "--work", str(work)]
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"bench_real_size: stage {stage} failed:\n{done.stderr[-3000:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"  {stage}: {rows[-1]['wall']:.1f} s for {rows[-1]['units']} units", flush=True)
    versions = ", ".join(f"{k} {v}" for k, v in library_versions().items() if k != "sal-lightning")
    print(
        f"bench_real_size: {args.images} + {args.val} images of {WIDTH} x {HEIGHT}, {args.steps} steps of "
        f"{args.batch} per training, {args.threads} thread(s), {os.cpu_count()} cores, load average "
        f"{load[0]:.2f} before / {os.getloadavg()[0]:.2f} after; {versions}"
    )
    print(table(rows), end="")
    if args.json:
        args.json.write_text(
            json.dumps({"rows": rows, "args": vars(args) | {"json": str(args.json)}}, indent=2)
        )


if __name__ == "__main__":
    main()
