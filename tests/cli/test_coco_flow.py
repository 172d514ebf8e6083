"""COCO end to end through the commands: a tiny COCO-format file with COCO's 80 categories (sparse
ids up to 90, a crowd region) -> ``data coco`` -> ``data check`` -> ``fit`` with 81 classes ->
``score corrupt`` and ``score folder`` on the converted root."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from sal_lightning.cli import main
from sal_lightning.data.classes import palette, read_classes
from sal_lightning.data.coco import COCO_CATEGORY_IDS, COCO_CLASSES
from sal_lightning.data.io import read_label_png, read_scores
from tests.data.test_coco import uncompressed_rle

pycocotools = pytest.importorskip("pycocotools", reason='needs pip install "sal-lightning[coco]"')

W, H = 48, 40
#: (image id, subset, [(category id, x0, y0, x1, y1, crowd)]): labels 1 (person), 18 -> 17 (dog),
#: 62 -> 57 (chair), 90 -> 80 (toothbrush)
IMAGES: list[tuple[int, str, list[tuple[int, int, int, int, int, int]]]] = [
    (1, "train2014", [(1, 4, 4, 30, 34, 0), (18, 20, 10, 44, 36, 0)]),
    (2, "train2014", [(90, 6, 6, 26, 20, 0), (1, 0, 24, 48, 40, 1)]),  # a crowd of people below
    (3, "train2014", [(62, 10, 8, 40, 32, 0)]),
    (4, "train2014", [(18, 2, 2, 22, 38, 0), (62, 26, 4, 46, 30, 0)]),
    (5, "train2014", [(1, 12, 6, 36, 38, 0)]),
    (6, "val2014", [(90, 8, 8, 40, 30, 0)]),
    (7, "val2014", [(1, 4, 10, 24, 36, 0), (62, 24, 2, 46, 22, 0)]),
]


def _rect(x0: int, y0: int, x1: int, y1: int) -> list[float]:
    return [float(v) for v in (x0, y0, x1, y0, x1, y1, x0, y1)]


def _crowd(x0: int, y0: int, x1: int, y1: int) -> dict[str, Any]:
    """A box as an uncompressed RLE, COCO's crowd form."""
    box = np.zeros((H, W), dtype=np.uint8)
    box[y0:y1, x0:x1] = 1
    return uncompressed_rle(box)


def write_coco80(base: Path) -> tuple[Path, list[Path]]:
    """COCO 2014's folder layout with all 80 categories declared: ``(images dir, json files)``."""
    categories = [{"id": i, "name": n} for i, n in zip(COCO_CATEGORY_IDS, COCO_CLASSES[1:], strict=True)]
    files = []
    for subset in ("train2014", "val2014"):
        images, annotations = [], []
        for image_id, where, objects in IMAGES:
            if where != subset:
                continue
            name = f"COCO_{subset}_{image_id:012d}.jpg"
            images.append({"id": image_id, "file_name": name, "height": H, "width": W})
            pixels = np.random.default_rng(image_id).integers(0, 256, size=(H, W, 3), dtype=np.uint8)
            (base / subset).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(base / subset / name, quality=90)
            for category, x0, y0, x1, y1, crowd in objects:
                segmentation = _crowd(x0, y0, x1, y1) if crowd else [_rect(x0, y0, x1, y1)]
                annotations.append(
                    {
                        "id": 100 * image_id + len(annotations),
                        "image_id": image_id,
                        "category_id": category,
                        "segmentation": segmentation,
                        "iscrowd": crowd,
                        "area": float((x1 - x0) * (y1 - y0)),
                        "bbox": [x0, y0, x1 - x0, y1 - y0],
                    }
                )
        path = base / "annotations" / f"instances_{subset}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
        files.append(path)
    return base, files


def _fit_config(root: Path, out: Path) -> Path:
    config = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "max_steps": 1,
            "limit_val_batches": 1,
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "default_root_dir": str(out),
        },
        "model": {
            "class_path": "sal_lightning.SALSegmenter",
            "init_args": {
                "backbone": "deeplabv3_resnet18",
                "lr": 0.01,
                "test_scales": [1.0],
                "backbone_kwargs": {"encoder_depth": 3, "decoder_channels": 8},
            },
        },
        "data": {
            "class_path": "sal_lightning.data.VOCSegmentationDataModule",
            "init_args": {
                "root": str(root),
                "train_split": "train",
                "val_split": "val",
                "crop_size": 32,
                "batch_size": 2,
                "num_workers": 0,
            },
        },
    }
    path = out / "fit.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def test_coco_from_annotations_to_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, files = write_coco80(tmp_path / "coco")
    root = tmp_path / "root"
    annotations = "[" + ", ".join(str(f) for f in files) + "]"
    assert (
        main(["data", "coco", "--annotations", annotations, "--images", str(images), "--out", str(root)]) == 0
    )
    assert read_classes(root / "classes.txt") == COCO_CLASSES and len(COCO_CLASSES) == 81
    crowd = read_label_png(root / "SegmentationClass" / "COCO_train2014_000000000002.png", 81)
    assert crowd[39, 0] == 255 and crowd[10, 10] == 80  # the crowd region ignored, the toothbrush 80

    assert main(["data", "check", "--root", str(root)]) == 0
    checked = capsys.readouterr().out
    assert "train: 5 images" in checked and "val: 2 images" in checked

    # fit: one step and a validation batch; the 81 classes come from classes.txt, not the config
    assert main(["fit", "--config", str(_fit_config(root, tmp_path / "fit"))]) == 0
    checkpoint = next((tmp_path / "fit").rglob("*.ckpt"))
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    assert saved["hyper_parameters"]["num_classes"] == 81
    assert saved["hyper_parameters"]["class_names"][80] == "toothbrush"
    branch = [w for k, w in saved["state_dict"].items() if k.startswith("classifier.") and w.ndim == 4]
    assert branch and all(w.shape[0] == 80 for w in branch)
    assert "fit finished: 1 steps" in capsys.readouterr().out

    # score folder: corrupted ground truth as pseudo-labels, a reference scorer trained on them
    proxies, scores = tmp_path / "proxies", tmp_path / "scores" / "scores.csv"
    assert main(["score", "corrupt", "--root", str(root), "--out", str(proxies), "--split", "train"]) == 0
    for png in proxies.glob("*.png"):
        with Image.open(png) as image:
            colours = np.array(image.getpalette()[: 81 * 3], dtype=np.uint8).reshape(81, 3)
        assert (colours == palette(81)[:81]).all()
    scorer = "{method: agreement, model: {input_size: 32}, max_epochs: 1, batch_size: 4}"
    assert (
        main(
            [
                "score",
                "folder",
                "--root",
                str(root),
                "--proxies",
                str(proxies),
                "--scores",
                str(scores),
                "--scorer",
                scorer,
                "--keep",
                "0.6",
            ]
        )
        == 0
    )
    rows = read_scores(scores)
    assert len(rows) == 5
    assert all(0 <= r["cd"] <= 1 and 0 <= r["sc"] <= 1 and 0 <= r["sf"] <= 1 for r in rows.values())
    assert sum(r["weight"] > 0 for r in rows.values()) == 3
