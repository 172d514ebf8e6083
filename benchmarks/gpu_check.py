"""The GPU check: the paper's networks at real size on one GPU (and several when present), in minutes.

From a checkout, with synthetic inputs and nothing downloaded (``nox -s gpu`` runs it)::

    python benchmarks/gpu_check.py                      # CUDA only; writes runs/gpu_check/gpu_check.{json,md}
    python benchmarks/gpu_check.py --device cpu --tiny  # the dry run of every part on a CPU (small sizes)

It measures, for the paper configuration's ResNet-101 network (``--backbone``), at batch ``--batch``
(the paper's 7) and crop ``--crop`` (321), in fp32 and bf16:

- training steps per second, images per second and peak memory of plain DeepLab v2 (the network
  alone, cross-entropy), P2 (``SALSegmenter`` without selection or attention) and P5 (selection
  weights, the classification branch, Eq. 11, ``L_sel + 2 L_atten``), on batches held on the device;
- the same P5 through the real Lightning loop with its data module reading and augmenting
  ``--height`` x ``--width`` images from disk (``--workers`` loader processes): whether the loader keeps
  up with the GPU;
- multi-scale inference (scales 0.5/0.75/1, the evaluation's) in images per second at 500 x 375;
- dense CRF (10 iterations, 21 classes) in images per second, in one process and in a pool of
  every core;
- the Table I mask scorer's training samples per second (batch 8, 256 x 256);
- with more than one GPU, the Lightning loop's images per second on all of them (DDP) over one.

The networks' batch-norm statistics are calibrated on the synthetic images (``nn.calibrate``), so
the frozen batch norm is meaningful and every loss must be finite. Without CUDA (and without
``--device cpu``) it stops at once with one line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
TINY = {
    "backbone": "deeplabv2_resnet18",
    "encoder_depth": 3,
    "batch": 2,
    "crop": 33,
    "height": 48,
    "width": 64,
    "steps": 1,
    "warmup": 0,
    "images": 1,
    "scorer_arch": "light",
    "scorer_input": 32,
    "scorer_batch": 2,
}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def autocast(device: str, precision: str) -> Any:
    dtype = PRECISIONS[precision]
    return nullcontext() if dtype is None else torch.autocast(device.split(":")[0], dtype=dtype)


def peak_gib(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def rate(fn: Callable[[], Any], args: argparse.Namespace, warmup: int, count: int) -> float:
    """Calls of ``fn`` per second after ``warmup`` calls (device synchronised)."""
    for _ in range(warmup):
        fn()
    sync(args.device)
    start = time.perf_counter()
    for _ in range(count):
        fn()
    sync(args.device)
    return count / (time.perf_counter() - start)


def make_data(root: Path, args: argparse.Namespace) -> dict[str, torch.Tensor]:
    """Synthetic VOC-format images on disk, and one training batch of them on the device."""
    from sal_lightning.data.datamodules import VOCSegmentationDataModule
    from sal_lightning.data.synthetic import make_synthetic_voc

    make_synthetic_voc(root, n_train=4 * args.batch, n_val=2, size=(args.height, args.width), seed=0)
    data = VOCSegmentationDataModule(
        str(root), train_split="train", crop_size=args.crop, batch_size=args.batch
    )
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    return {k: v.to(args.device) for k, v in batch.items() if isinstance(v, torch.Tensor)}


def networks(args: argparse.Namespace, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
    """``{name: (module, loss(batch) -> scalar)}``: plain DeepLab v2, P2 and P5, batch norm calibrated."""
    from sal_lightning import SALSegmenter
    from sal_lightning.nn import build_deeplab
    from sal_lightning.nn.calibrate import calibrate_batch_norm

    kwargs = {} if args.encoder_depth is None else {"encoder_depth": args.encoder_depth}
    plain = build_deeplab(args.backbone, num_classes=21, **kwargs).to(args.device)
    out: dict[str, Any] = {
        "DeepLab v2": (
            plain,
            lambda b: F.cross_entropy(plain(b["image"]).logits, b["mask"], ignore_index=255),
        )
    }
    for name, on in (("P2", False), ("P5", True)):
        model = SALSegmenter(args.backbone, backbone_kwargs=kwargs, use_selection=on, use_attention=on)
        model = model.to(args.device)
        out[name] = (model, lambda b, m=model: m.losses(b)["loss"])
    with torch.no_grad():
        for module, _ in out.values():
            calibrate_batch_norm(getattr(module, "net", module), [batch["image"]])
    return out


def training_step(
    loss_fn: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    optimiser: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    context: Any,
    losses: list[float],
) -> Callable[[], None]:
    """One optimiser step of ``loss_fn`` on ``batch`` in the autocast ``context``; the loss goes to
    ``losses``."""

    def step() -> None:
        with context:
            loss = loss_fn(batch)
        optimiser.zero_grad(set_to_none=True)
        loss.float().backward()
        optimiser.step()
        losses.append(float(loss.detach()))

    return step


def train_rows(args: argparse.Namespace, batch: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
    """Steps / images per second and peak memory of each network and precision."""
    rows = []
    for name, (module, loss_fn) in networks(args, batch).items():
        module.train()
        groups = module.parameter_groups() if hasattr(module, "parameter_groups") else module.parameters()
        optimiser = torch.optim.SGD(groups, lr=1e-4, momentum=0.9)
        for precision in args.precisions:
            losses: list[float] = []
            reset_peak(args.device)
            step = training_step(loss_fn, optimiser, batch, autocast(args.device, precision), losses)
            per_s = rate(step, args, args.warmup, args.steps)
            row = {"network": name, "precision": precision, "steps_per_s": per_s}
            row.update(images_per_s=per_s * args.batch, peak_gib=peak_gib(args.device), last_loss=losses[-1])
            rows.append(row)
    return rows


def infer(model: Any, image: torch.Tensor, context: Any, outputs: list[torch.Tensor]) -> None:
    """The fused multi-scale probabilities of ``image`` into ``outputs`` (the last one kept)."""
    with torch.no_grad(), context:
        outputs[:] = [model.infer_probs(image)]


def inference_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Multi-scale inference (0.5/0.75/1, no flip) and dense CRF, images per second."""
    import numpy as np

    from sal_lightning import SALSegmenter
    from sal_lightning.models.inference import to_uint8_images
    from sal_lightning.postprocess.crf import CRFPool, dense_crf

    kwargs = {} if args.encoder_depth is None else {"encoder_depth": args.encoder_depth}
    model = SALSegmenter(args.backbone, backbone_kwargs=kwargs, test_scales=(0.5, 0.75, 1.0), test_flip=False)
    model = model.to(args.device).eval()
    image = torch.randn(1, 3, args.height, args.width, device=args.device)
    rows: list[dict[str, Any]] = []
    outputs: list[torch.Tensor] = []
    for precision in args.precisions:
        context = autocast(args.device, precision)
        per_s = rate(lambda c=context: infer(model, image, c, outputs), args, 1, args.images)
        rows.append(
            {"what": "multi-scale inference 0.5/0.75/1", "precision": precision, "images_per_s": per_s}
        )
    rgb = to_uint8_images(image.float().cpu(), model.hparams.pixel_mean, model.hparams.pixel_std)[0]
    unary = outputs[-1][0].float().cpu().numpy().astype(np.float32)
    cpu = argparse.Namespace(device="cpu")
    one = rate(lambda: dense_crf(rgb, unary), cpu, 0, args.images)
    cores = os.cpu_count() or 1
    with CRFPool(processes=cores) as pool:
        pool.map([rgb], [unary])  # start the workers
        count = max(args.images, 2 * cores)
        per_s = rate(lambda: pool.map([rgb] * count, [unary] * count), cpu, 0, 1) * count
    rows.append({"what": "dense CRF, 1 process", "precision": "-", "images_per_s": one})
    rows.append({"what": f"dense CRF, pool of {cores}", "precision": "-", "images_per_s": per_s})
    return rows


def scorer_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The mask scorer's training samples per second (Adam, the paper's lr)."""
    from sal_lightning.models.scorer import MaskScorer

    model = MaskScorer(arch=args.scorer_arch, input_size=args.scorer_input).to(args.device).train()
    size, n = args.scorer_input, args.scorer_batch
    batch = {
        "image": torch.randn(n, 3, size, size, device=args.device),
        "mask": (torch.rand(n, size, size, device=args.device) > 0.5).long(),
        "target": torch.rand(n, device=args.device),
    }
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-5)

    def loss_fn(b: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.mse_loss(model(b["image"], b["mask"]).float(), b["target"])

    rows = []
    for precision in args.precisions:
        reset_peak(args.device)
        step = training_step(loss_fn, optimiser, batch, autocast(args.device, precision), [])
        per_s = rate(step, args, args.warmup, args.steps) * n
        what = f"mask scorer ({args.scorer_arch}) training"
        rows.append(
            {"what": what, "precision": precision, "samples_per_s": per_s, "peak_gib": peak_gib(args.device)}
        )
    return rows


def loop_rate(args: argparse.Namespace, root: Path, devices: int) -> dict[str, Any]:
    """P5 in bf16 through the Lightning loop and the data module, on ``devices`` devices."""
    import lightning.pytorch as pl

    from sal_lightning import SALSegmenter, VOCSegmentationDataModule
    from sal_lightning.stages.trainer import TrainerSettings, final_losses, make_trainer

    class Timer(pl.Callback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_train_batch_end(self, trainer: pl.Trainer, *rest: Any) -> None:
            sync(args.device)
            self.times.append(time.perf_counter())

    kwargs = {} if args.encoder_depth is None else {"encoder_depth": args.encoder_depth}
    model = SALSegmenter(args.backbone, backbone_kwargs=kwargs, encoder_weights=str(root / "weights.pth"))
    data = VOCSegmentationDataModule(
        str(root), train_split="train", crop_size=args.crop, batch_size=args.batch, num_workers=args.workers
    )
    precision = "bf16-mixed" if "bf16" in args.precisions else "32-true"
    accelerator = "gpu" if args.device.startswith("cuda") else "cpu"
    options = TrainerSettings(
        accelerator=accelerator, devices=devices, precision=precision, enable_progress_bar=False
    )
    timer = Timer()
    loop = make_trainer(
        options, callbacks=[timer], max_steps=args.warmup + args.steps + 1, limit_val_batches=0
    )
    loop.fit(model, datamodule=data)
    times = timer.times[args.warmup :]
    steps_per_s = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")
    return {
        "devices": devices,
        "precision": precision,
        "steps_per_s": steps_per_s,
        "images_per_s": steps_per_s * args.batch * devices,
        "loss": final_losses(loop).get("loss"),
        "rank": loop.global_rank,
    }


def ddp_row(args: argparse.Namespace, root: Path, out: Path) -> dict[str, Any] | None:
    """The Lightning loop on every GPU (a process launched per GPU by Lightning), when there are several."""
    count = torch.cuda.device_count() if args.device.startswith("cuda") else 0
    if count < 2:
        return None
    command = [sys.executable, __file__, "--ddp-worker", str(root), "--out", str(out), *args.passed]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        return {"devices": count, "error": done.stderr[-1000:]}
    return json.loads((out / "ddp.json").read_text())


def markdown(report: dict[str, Any]) -> str:
    """The report as markdown tables."""

    def fmt(value: Any) -> str:
        return "-" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)

    versions = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    lines = [f"GPU check: {report['device']}; {report['setting']}; {versions}", ""]
    lines += [
        "| network | precision | steps/s | images/s | peak GiB | last loss |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['network']} | {r['precision']} | {fmt(r['steps_per_s'])} | {fmt(r['images_per_s'])} | "
        f"{fmt(r['peak_gib'])} | {fmt(r['last_loss'])} |"
        for r in report["train"]
    ]
    lines += [
        "",
        "| Lightning loop, P5 | devices | steps/s | images/s | last loss |",
        "|---|---|---|---|---|",
    ]
    for r in report["loop"]:
        rates = f"{fmt(r.get('steps_per_s'))} | {fmt(r.get('images_per_s'))}"
        lines.append(f"| {r.get('precision', '-')} | {r['devices']} | {rates} | {fmt(r.get('loss'))} |")
    if len(report["loop"]) > 1 and "images_per_s" in report["loop"][1]:
        one, many = report["loop"]
        efficiency = many["images_per_s"] / (many["devices"] * one["images_per_s"])
        lines.append(f"\nDDP scaling over {many['devices']} GPUs: {efficiency:.0%} of linear.")
    lines += ["", "| stage | precision | per second | peak GiB |", "|---|---|---|---|"]
    for r in report["inference"] + report["scorer"]:
        per_s = r.get("images_per_s", r.get("samples_per_s"))
        unit = "images" if "images_per_s" in r else "samples"
        lines.append(f"| {r['what']} | {r['precision']} | {fmt(per_s)} {unit} | {fmt(r.get('peak_gib'))} |")
    return "\n".join(lines) + "\n"


def paper_backbone() -> str:
    """The retraining network of ``examples/configs/pipeline_voc_resnet101.yaml``."""
    import yaml

    config = Path(__file__).resolve().parents[1] / "examples" / "configs" / "pipeline_voc_resnet101.yaml"
    return str(yaml.safe_load(config.read_text())["retrain"]["model"]["backbone"])


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (a dry run, with --tiny)")
    parser.add_argument(
        "--backbone",
        default=paper_backbone(),
        help="any build_deeplab name (default: the paper configuration's)",
    )
    parser.add_argument("--encoder-depth", type=int, default=None, help="smp encoder stages (tiny: 3)")
    parser.add_argument("--batch", type=int, default=7)
    parser.add_argument("--crop", type=int, default=321)
    parser.add_argument("--height", type=int, default=375)
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--steps", type=int, default=20, help="timed steps of every measurement")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--images", type=int, default=20, help="images of the inference and CRF timings")
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=list(PRECISIONS))
    parser.add_argument("--scorer-arch", default="table1")
    parser.add_argument("--scorer-input", type=int, default=256)
    parser.add_argument("--scorer-batch", type=int, default=8)
    parser.add_argument("--workers", type=int, default=8, help="data loader processes of the Lightning loop")
    parser.add_argument("--out", type=Path, default=Path("runs/gpu_check"))
    parser.add_argument("--tiny", action="store_true", help="small sizes for a dry run: " + json.dumps(TINY))
    parser.add_argument("--ddp-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.passed = list(sys.argv[1:] if argv is None else argv)
    if args.tiny:
        for key, value in TINY.items():
            setattr(args, key, value)
        args.workers = 0
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(
            f"gpu_check: no CUDA device is visible to torch {torch.__version__} (CUDA build "
            f"{torch.version.cuda}); run it on a GPU machine, or `--device cpu --tiny` for a dry run"
        )
    if args.ddp_worker is not None:  # re-run by Lightning once per GPU
        row = loop_rate(args, args.ddp_worker, torch.cuda.device_count())
        if row.pop("rank") == 0:
            (args.out / "ddp.json").write_text(json.dumps(row))
        return
    from sal_lightning._versions import library_versions
    from sal_lightning.nn.calibrate import write_calibrated_backbone

    torch.backends.cudnn.benchmark = True
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sal_gpu_check_") as tmp:
        root = Path(tmp)
        batch = make_data(root, args)
        kwargs = {} if args.encoder_depth is None else {"encoder_depth": args.encoder_depth}
        write_calibrated_backbone(args.backbone, root / "weights.pth", [batch["image"].cpu()], **kwargs)
        device = (
            torch.cuda.get_device_name()
            if args.device.startswith("cuda")
            else f"CPU ({os.cpu_count()} cores)"
        )
        report: dict[str, Any] = {"device": device, "versions": library_versions()}
        report["setting"] = (
            f"{args.backbone}, batch {args.batch}, crop {args.crop}, images {args.width} x {args.height}, "
            f"{args.steps} timed steps after {args.warmup}"
        )
        report["train"] = train_rows(args, batch)
        report["loop"] = [loop_rate(args, root, 1)]
        report["loop"][0].pop("rank")
        report["inference"] = inference_rows(args)
        report["scorer"] = scorer_rows(args)
        ddp = ddp_row(args, root, args.out)
        if ddp is not None:
            report["loop"].append(ddp)
    report["seconds"] = time.perf_counter() - started
    bad = [r for r in report["train"] if not torch.isfinite(torch.tensor(r["last_loss"]))]
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "gpu_check.md").write_text(markdown(report))
    print(markdown(report), end="")
    print(f"gpu_check: {report['seconds']:.0f} s; wrote {args.out}/gpu_check.json and gpu_check.md")
    if bad:
        raise SystemExit(f"gpu_check: non-finite training losses: {bad}")


if __name__ == "__main__":
    main()
