"""How well do SC and SF rank pseudo-labels? Fig. 9's correlations over several scorer seeds.

Runs a pipeline configuration up to ``fine`` once per scorer seed on a VOC-format set with
ground truth (imported pseudo-labels, saliency maps), and prints Pearson and Spearman correlations
of SC, P and SF with the true AC (the F-measure of each pseudo-label's foreground against the
ground truth's), as mean ± standard deviation over the seeds and per seed, with the time each seed
took and the library versions. Steps before the scorer run once (the pipeline resumes them);
``scorer`` overrides fields of the configuration's ``scorer`` section, so one command measures one
recipe::

    B=path/to/voclike-s11          # the independent benchmark
    python benchmarks/study_scorer.py --pipeline examples/configs/pipeline_voclike_cpu.yaml \\
        --root $B/VOC2012 --saliency $B/saliency --proxies $B/proxies --workdir runs/study-reference
    python benchmarks/study_scorer.py ... --workdir runs/study-light \\
        --scorer '{method: regression, model: {arch: light, input_size: 64, lr: 0.001}, max_epochs: 20,
                   batch_size: 16, synthesis: {samples_per_image: 5}}'

Not a test: it takes minutes per seed on a CPU.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import CLI

from sal_lightning._versions import library_versions
from sal_lightning.data.io import read_scores
from sal_lightning.data.layout import read_split, resolve_voc_root
from sal_lightning.pipeline.config import build_pipeline
from sal_lightning.stages.quality import true_quality
from sal_lightning.stages.sweep import score_correlations


def study(
    *,
    pipeline: str,
    root: str,
    saliency: str,
    proxies: str,
    workdir: str = "runs/scorer-study",
    seeds: tuple[int, ...] = (0, 1, 2),
    scorer: dict[str, Any] | None = None,
) -> dict[str, dict[str, float]]:
    """Correlations of ``sc``, ``p`` and ``sf`` with the true AC, per scorer seed; prints a table.

    Args:
        pipeline: a pipeline configuration (YAML); its ``scorer`` section is the recipe measured.
        root, saliency, proxies: the VOC-format set, its saliency PNGs and its pseudo-labels.
        workdir: the pipeline's working folder (reused: finished steps are not redone).
        seeds: the scorer's seeds.
        scorer: fields that override the configuration's ``scorer`` section.
    """
    settings = yaml.safe_load(Path(pipeline).read_text())
    settings.update(root=root, saliency=saliency, proxies=proxies)
    ids = read_split(resolve_voc_root(root), str(settings.get("train_split", "train_aug")))
    runs: dict[int, dict[str, dict[str, float]]] = {}
    seconds: dict[int, float] = {}
    truth: dict[str, float] | None = None
    for seed in seeds:
        settings["scorer"] = {**settings.get("scorer", {}), **(scorer or {}), "seed": seed}
        runner = build_pipeline(settings, workdir)
        tic = time.perf_counter()
        runner.run(until="fine")
        seconds[seed] = time.perf_counter() - tic
        if truth is None:
            truth = true_quality(
                root, ids, proxies=Path(workdir) / "step1" / "proxies", definition="fmeasure", progress=False
            ).ac
        rows = read_scores(Path(workdir) / "fine" / "scores.csv")
        runs[seed] = score_correlations(rows, truth, columns=("sc", "p", "sf"))
        print(f"seed {seed}: " + ", ".join(f"{c} {v['pearson']:.3f}" for c, v in runs[seed].items()))

    print(f"\nscorer: {settings['scorer']}")
    print(f"versions: {library_versions()}")
    print("\n| score | Pearson | Spearman | per seed (Pearson) |\n|---|---|---|---|")
    summary: dict[str, dict[str, float]] = {}
    for column in ("sc", "p", "sf"):
        pearson = [runs[s][column]["pearson"] for s in seeds]
        spearman = [runs[s][column]["spearman"] for s in seeds]
        spread = statistics.stdev(pearson) if len(pearson) > 1 else 0.0
        summary[column] = {"pearson": statistics.mean(pearson), "std": spread}
        print(
            f"| {column.upper()} | {statistics.mean(pearson):.3f} ± {spread:.3f} | "
            f"{statistics.mean(spearman):.3f} | {', '.join(f'{v:.3f}' for v in pearson)} |"
        )
    print(
        "\nseconds per seed (the first includes the references and coarse scores): "
        + ", ".join(f"{seconds[s]:.0f}" for s in seeds)
    )
    return summary


if __name__ == "__main__":
    CLI(study)
