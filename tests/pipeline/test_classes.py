"""The whole pipeline (every step, step 1 included) on a 7-class VOC-layout root with ``classes.txt``:
nothing in it assumes VOC's 20 classes, and nothing repeats the class list in the config."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from sal_lightning.data.classes import palette, read_classes
from sal_lightning.data.datasets import VOCDataset
from sal_lightning.data.io import read_label_png, read_scores
from sal_lightning.data.synthetic import make_synthetic_voc

CONF = Path(__file__).resolve().parents[1] / "conf"
CLASSES = ["background", "apple", "kettle", "tram", "heron", "lamp", "violin", "traffic light"]


@pytest.fixture(scope="module")
def seven_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic root with 7 foreground classes (10 train, 4 val, 64 px), ``classes.txt`` written."""
    out = tmp_path_factory.mktemp("seven") / "voc"
    return make_synthetic_voc(out, n_train=10, n_val=4, size=64, seed=1, classes=CLASSES)


def _config(tmp_path: Path) -> Path:
    """``tests/conf/pipeline.yaml`` with step 1 run (``tests/conf/proxies.yaml``'s networks)."""
    config = yaml.safe_load((CONF / "pipeline.yaml").read_text())
    step1 = yaml.safe_load((CONF / "proxies.yaml").read_text())
    config["proxies"] = {k: v for k, v in step1.items() if k not in ("split", "trainer")}
    config["retrain"]["variants"] = ["P2", "P5"]
    config["select"] = {"keep": 1.0}  # this tiny step 1 leaves empty proxies (score 0): keep them all
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_whole_pipeline_on_seven_classes(seven_classes: Path, tmp_path: Path) -> None:
    from sal_lightning.cli import main

    root, work = seven_classes, tmp_path / "work"
    assert read_classes(root / "classes.txt") == tuple(CLASSES)
    sample = VOCDataset(root, "train")[0]
    assert sample["tags"].shape == (7,)
    argv = ["pipeline", "--config", str(_config(tmp_path)), "--root", str(root), "--workdir", str(work)]
    assert main([*argv, "--saliency", str(root / "saliency")]) == 0

    # step 1: a CAM network with 7 channels, seeds and proxies with labels 0..7 in 8-class colours
    cam = torch.load(work / "step1" / "cam.ckpt", map_location="cpu", weights_only=False)
    assert cam["hyper_parameters"]["num_classes"] == 8
    assert cam["state_dict"]["net.classifier.weight"].shape[0] == 7
    dataset = VOCDataset(root, "train")
    train = dataset.ids
    seeded = set()
    for k, image_id in enumerate(train):  # CAM seeds: the image's own tagged classes among 1..7
        seeds = read_label_png(work / "step1" / "seeds" / f"{image_id}.png", 8)
        tagged = {c + 1 for c in np.flatnonzero(dataset[k]["tags"].numpy())}
        seeded |= set(np.unique(seeds).tolist()) - {0, 255}
        assert set(np.unique(seeds).tolist()) - {0, 255} <= tagged
    assert seeded and max(seeded) <= 7
    proxies = [read_label_png(work / "step1" / "proxies" / f"{i}.png", 8) for i in train]
    assert {int(v) for p in proxies for v in np.unique(p)} <= set(range(8)) | {255}
    with Image.open(work / "step1" / "proxies" / f"{train[0]}.png") as png:
        colours = np.array(png.getpalette()[: 8 * 3], dtype=np.uint8).reshape(8, 3)
    assert (colours == palette(8)[:8]).all()

    # scores: CD against 7-wide tags, every proxy scored
    rows = read_scores(work / "scores.csv")
    assert sorted(rows) == sorted(train)
    assert all(0 <= r["cd"] <= 1 and 0 <= r["sc"] <= 1 for r in rows.values())

    # step 4: the segmenter has 8 outputs, a 7-class attention branch and the dataset's names
    p5 = torch.load(work / "retrain" / "P5" / "seed0.ckpt", map_location="cpu", weights_only=False)
    assert p5["hyper_parameters"]["num_classes"] == 8
    assert p5["hyper_parameters"]["class_names"] == CLASSES
    head = [v for k, v in p5["state_dict"].items() if k.startswith("classifier.") and v.ndim == 4]
    assert head and all(w.shape[0] == 7 for w in head)
    predictions = list((work / "evaluation" / "P5" / "seed0").glob("*.png"))
    assert len(predictions) == 4
    assert all(int(read_label_png(p, 8).max()) <= 7 for p in predictions)

    report = (work / "report.md").read_text()
    assert f"Classes: 7 foreground classes, `classes.txt`: {', '.join(CLASSES[1:])}." in report


def test_a_label_beyond_the_class_list_names_the_png_and_the_class_file(
    seven_classes: Path, tmp_path: Path
) -> None:
    root = Path(shutil.copytree(seven_classes, tmp_path / "voc"))
    dataset = VOCDataset(root, "val")
    bad = root / "SegmentationClass" / f"{dataset.ids[0]}.png"
    labels = read_label_png(bad, 8).copy()
    labels[0, 0] = 9
    Image.fromarray(labels, mode="L").save(bad)
    message = rf"{bad.name}: label values must be 0\.\.7 or 255.*\[9\].*classes\.txt"
    with pytest.raises(ValueError, match=message):
        dataset[0]
    from sal_lightning.cli import main

    assert main(["data", "check", "--root", str(root), "--split", "val"]) == 2
