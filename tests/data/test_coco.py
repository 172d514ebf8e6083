"""COCO instance annotations -> a VOC-layout root: labels, crowd, overlaps, tags, lists, resume, errors.

The annotation files are written with plain JSON (sparse category ids up to 90, polygons, an
uncompressed crowd RLE, a compressed RLE, an image without objects, overlapping instances) beside
real JPEGs; the label PNGs are compared with an assembly of pycocotools' own ``annToMask``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sal_lightning.data.classes import palette, read_classes
from sal_lightning.data.coco import COCO_CATEGORY_IDS, COCO_CLASSES, convert_coco
from sal_lightning.data.coco_annotations import CocoImage, coco_label_map, read_coco_annotations, split_name
from sal_lightning.data.io import read_id_list

try:
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
except ImportError:  # the conversion tests need the `coco` extra; the missing-extra test does not
    mask_utils = COCO = None
needs_pycocotools = pytest.mark.skipif(mask_utils is None, reason='needs pip install "sal-lightning[coco]"')

W, H = 40, 30
# COCO category id -> name, listed out of order; labels follow the id order: 1, 18, 62, 90 -> 1..4
CATEGORIES = [
    {"id": 90, "name": "toothbrush", "supercategory": "indoor"},
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 62, "name": "chair", "supercategory": "furniture"},
    {"id": 18, "name": "dog", "supercategory": "animal"},
]
PERSON, DOG, CHAIR, TOOTHBRUSH = 1, 2, 3, 4
NAMES = ("background", "person", "dog", "chair", "toothbrush")


def rect(x0: float, y0: float, x1: float, y1: float) -> list[float]:
    """A rectangle as one COCO polygon."""
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def uncompressed_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO's crowd form, computed by hand: run lengths of the column-major mask, zeros first."""
    flat = mask.flatten(order="F").astype(np.uint8)
    counts, value, run = [], 0, 0
    for pixel in flat:
        if pixel == value:
            run += 1
        else:
            counts.append(run)
            value, run = int(pixel), 1
    counts.append(run)
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def box_mask(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def ann(ann_id: int, image_id: int, category: int, segmentation: Any, crowd: int = 0) -> dict[str, Any]:
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category,
        "segmentation": segmentation,
        "iscrowd": crowd,
        "area": 0.0,
        "bbox": [0, 0, 1, 1],
    }


def image(image_id: int, subset: str) -> dict[str, Any]:
    return {"id": image_id, "file_name": f"COCO_{subset}_{image_id:012d}.jpg", "height": H, "width": W}


def write_jpeg(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)


def write_coco(base: Path) -> tuple[Path, Path, Path]:
    """``(images dir, train json, val json)`` of a tiny COCO 2014 in the official folder layout."""
    compressed = mask_utils.encode(np.asfortranarray(box_mask(25, 2, 38, 12)))
    compressed["counts"] = compressed["counts"].decode()  # as in JSON result files
    train = {
        "info": {"description": "tiny"},
        "images": [
            image(9, "train2014"),
            image(25, "train2014"),
            image(30, "train2014"),
            image(34, "train2014"),
        ],
        "categories": CATEGORIES,
        "annotations": [
            # image 9: a small dog listed first, then a large person covering it, then a crowd of
            # people over the person's lower left: smaller on top, crowd 255 above everything
            ann(101, 9, 18, [rect(10, 8, 20, 18)]),
            ann(102, 9, 1, [rect(5, 5, 35, 25)]),
            ann(103, 9, 1, uncompressed_rle(box_mask(0, 20, 15, 30)), crowd=1),
            # image 25: no annotations at all; image 30: only a crowd of chairs
            ann(104, 30, 62, uncompressed_rle(box_mask(3, 3, 30, 20)), crowd=1),
            # image 34: a chair in two parts, a toothbrush of the same area overlapping it (listed
            # later, so on top in the tie), a triangle
            ann(105, 34, 62, [rect(2, 2, 12, 12), rect(20, 15, 30, 25)]),
            ann(106, 34, 90, [rect(6, 6, 16, 16)]),
            ann(107, 34, 1, [[30.0, 2.0, 38.0, 2.0, 34.0, 10.0]]),
        ],
    }
    val = {
        "images": [image(42, "val2014"), image(43, "val2014")],
        "categories": CATEGORIES,
        "annotations": [
            ann(201, 42, 18, [rect(4, 10, 24, 28)]),
            ann(202, 42, 1, compressed),
        ],
    }
    images = base / "coco"
    for k, record in enumerate(train["images"] + val["images"]):
        subset = record["file_name"].split("_")[1]
        write_jpeg(images / subset / record["file_name"], seed=k)
    annotations = base / "annotations"
    annotations.mkdir(parents=True)
    (annotations / "instances_train2014.json").write_text(json.dumps(train))
    (annotations / "instances_val2014.json").write_text(json.dumps(val))
    return images, annotations / "instances_train2014.json", annotations / "instances_val2014.json"


def expected_labels(coco: COCO, image_id: int, label_of: dict[int, int]) -> np.ndarray:
    """The documented rule assembled from pycocotools' ``annToMask``: instances by decreasing area
    (a stable sort: equal areas keep file order, the later on top), then crowd pixels 255."""
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
    info = coco.imgs[image_id]
    labels = np.zeros((info["height"], info["width"]), dtype=np.uint8)
    things = [(a, coco.annToMask(a)) for a in anns if not a["iscrowd"]]
    for a, m in sorted(things, key=lambda pair: -int(pair[1].sum())):
        labels[m > 0] = label_of[a["category_id"]]
    for a in anns:
        if a["iscrowd"]:
            labels[coco.annToMask(a) > 0] = 255
    return labels


@pytest.fixture
def tiny_coco(tmp_path: Path) -> tuple[Path, Path, Path]:
    return write_coco(tmp_path / "src")


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` -> (inode, mtime in ns): a rewrite changes one of them."""
    return {
        str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def test_constants_are_cocos_80_categories() -> None:
    assert len(COCO_CATEGORY_IDS) == 80 and len(COCO_CLASSES) == 81 and COCO_CLASSES[0] == "background"
    assert list(COCO_CATEGORY_IDS) == sorted(set(COCO_CATEGORY_IDS)) and COCO_CATEGORY_IDS[-1] == 90
    label = {cat: k for k, cat in enumerate(COCO_CATEGORY_IDS, start=1)}
    assert COCO_CLASSES[label[1]] == "person" and COCO_CLASSES[label[44]] == "bottle" and label[44] == 40
    assert COCO_CLASSES[label[90]] == "toothbrush" and label[90] == 80
    assert {12, 26, 29, 30, 45, 66, 68, 69, 71, 83} & set(COCO_CATEGORY_IDS) == set()  # the 10 unused ids


def test_split_names_follow_the_annotation_files() -> None:
    assert split_name("a/instances_train2014.json") == "train"
    assert split_name("instances_val2014.json") == "val"
    assert split_name("instances_minival2014.json") == "minival"
    assert split_name("my_labels.json") == "my_labels"


@needs_pycocotools
def test_conversion_labels_tags_lists_and_classes(tiny_coco: tuple[Path, Path, Path], tmp_path: Path) -> None:
    images, train_json, val_json = tiny_coco
    out = tmp_path / "out"
    summaries = convert_coco([train_json, val_json], images, out, progress=False)
    train, val = summaries
    assert (train.split, train.images, train.listed, train.written, train.with_crowd) == ("train", 4, 2, 2, 1)
    assert (val.split, val.images, val.listed, val.written) == ("val", 2, 1, 1)
    assert "train: 2 of 4 images hold objects" in str(train)

    # classes.txt: background + the categories in id order (sparse ids 1, 18, 62, 90 -> 1..4)
    assert read_classes(out / "classes.txt") == NAMES
    # split lists: images with a non-crowd object (not the empty image 25, not the crowd-only 30)
    lists = out / "ImageSets" / "Segmentation"
    assert read_id_list(lists / "train.txt") == ["COCO_train2014_000000000009", "COCO_train2014_000000000034"]
    assert read_id_list(lists / "val.txt") == ["COCO_val2014_000000000042"]

    label_of = {1: PERSON, 18: DOG, 62: CHAIR, 90: TOOTHBRUSH}
    for json_path in (train_json, val_json):
        coco = COCO(str(json_path))
        for info in coco.imgs.values():
            stem = Path(info["file_name"]).stem
            png = out / "SegmentationClass" / f"{stem}.png"
            if stem not in (read_id_list(lists / "train.txt") + read_id_list(lists / "val.txt")):
                assert not png.exists()
                continue
            written = Image.open(png)
            assert written.mode == "P" and written.size == (W, H)
            assert np.array_equal(
                np.asarray(written.getpalette(), dtype=np.uint8).reshape(-1, 3)[:256], palette(5)
            )
            assert np.array_equal(np.asarray(written), expected_labels(coco, info["id"], label_of)), stem
            jpeg = out / "JPEGImages" / f"{stem}.jpg"
            source = images / info["file_name"].split("_")[1] / info["file_name"]
            assert jpeg.read_bytes() == source.read_bytes()

    # the rule, pixel by pixel, on image 9: the dog is on top of the larger person listed after it,
    # the crowd is 255 over the person and over the background, and the rest is background
    labels = np.asarray(Image.open(out / "SegmentationClass" / "COCO_train2014_000000000009.png"))
    assert labels[12, 15] == DOG and labels[7, 30] == PERSON and labels[2, 2] == 0
    assert labels[22, 10] == 255 and labels[28, 2] == 255 and labels[22, 20] == PERSON
    assert set(np.unique(labels).tolist()) == {0, PERSON, DOG, 255}
    labels = np.asarray(Image.open(out / "SegmentationClass" / "COCO_train2014_000000000034.png"))
    assert labels[8, 8] == TOOTHBRUSH  # equal areas: the later annotation (toothbrush) on top
    assert labels[4, 4] == CHAIR and labels[20, 25] == CHAIR and labels[5, 34] == PERSON
    labels = np.asarray(Image.open(out / "SegmentationClass" / "COCO_val2014_000000000042.png"))
    assert labels[5, 30] == PERSON and labels[20, 10] == DOG  # a compressed RLE is read too

    # tags of every image, the crowd categories included: id -> float32 [4]
    table = np.load(out / "cls_labels.npy", allow_pickle=True).item()
    assert sorted(table) == sorted(
        [f"COCO_train2014_{i:012d}" for i in (9, 25, 30, 34)] + [f"COCO_val2014_{i:012d}" for i in (42, 43)]
    )
    assert all(v.dtype == np.float32 and v.shape == (4,) for v in table.values())
    assert table["COCO_train2014_000000000009"].tolist() == [1, 1, 0, 0]
    assert table["COCO_train2014_000000000025"].tolist() == [0, 0, 0, 0]
    assert table["COCO_train2014_000000000030"].tolist() == [0, 0, 1, 0]  # a crowd of chairs
    assert table["COCO_train2014_000000000034"].tolist() == [1, 0, 1, 1]
    assert table["COCO_val2014_000000000042"].tolist() == [1, 1, 0, 0]

    # images are hard links where the file system allows it
    jpeg = out / "JPEGImages" / "COCO_train2014_000000000009.jpg"
    assert os.path.samefile(jpeg, images / "train2014" / jpeg.name) == (train.linked == 2)
    assert train.linked + train.copied == 2
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]  # no temporary file left behind


@needs_pycocotools
def test_crowd_tags_can_be_left_out(tiny_coco: tuple[Path, Path, Path], tmp_path: Path) -> None:
    images, train_json, _ = tiny_coco
    convert_coco(train_json, images / "train2014", tmp_path / "out", crowd_tags=False, progress=False)
    table = np.load(tmp_path / "out" / "cls_labels.npy", allow_pickle=True).item()
    assert table["COCO_train2014_000000000030"].tolist() == [0, 0, 0, 0]
    assert table["COCO_train2014_000000000009"].tolist() == [1, 1, 0, 0]  # a person that is not a crowd


@needs_pycocotools
def test_rerun_rewrites_nothing_and_redoes_what_is_missing(
    tiny_coco: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    images, train_json, val_json = tiny_coco
    out = tmp_path / "out"
    convert_coco([train_json, val_json], images, out, progress=False)
    before = snapshot(out)
    again = convert_coco([train_json, val_json], images, out, progress=False)
    assert [(s.written, s.kept, s.present) for s in again] == [(0, 2, 2), (0, 1, 1)]
    assert snapshot(out) == before  # not one file rewritten, lists and tags included

    png = out / "SegmentationClass" / "COCO_train2014_000000000034.png"
    good = png.read_bytes()
    png.unlink()
    Image.new("P", (W // 2, H)).save(out / "SegmentationClass" / "COCO_train2014_000000000009.png")
    third = convert_coco([train_json, val_json], images, out, progress=False)
    assert [(s.written, s.kept) for s in third] == [(2, 0), (0, 1)]
    assert png.read_bytes() == good  # the deleted PNG is back, identical
    assert Image.open(out / "SegmentationClass" / "COCO_train2014_000000000009.png").size == (W, H)
    after = snapshot(out)
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {
        "SegmentationClass/COCO_train2014_000000000034.png",
        "SegmentationClass/COCO_train2014_000000000009.png",
    }


@needs_pycocotools
def test_an_interrupted_conversion_leaves_complete_files_and_no_lists(
    tiny_coco: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """A real failure in the middle (the second image's JPEG has the wrong size): the first label
    PNG is complete, nothing half-written or temporary is left, and no split list claims the split."""
    images, train_json, _ = tiny_coco
    bad = images / "train2014" / "COCO_train2014_000000000034.jpg"
    Image.new("RGB", (W + 1, H)).save(bad)
    out = tmp_path / "out"
    with pytest.raises(
        ValueError, match=r"COCO_train2014_000000000034\.jpg: image size \(30, 41\) \(H, W\) differs"
    ):
        convert_coco(train_json, images, out, progress=False)
    assert [p.name for p in (out / "SegmentationClass").iterdir()] == ["COCO_train2014_000000000009.png"]
    assert Image.open(out / "SegmentationClass" / "COCO_train2014_000000000009.png").size == (W, H)
    assert not (out / "ImageSets").exists() and not (out / "cls_labels.npy").exists()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    write_jpeg(bad, seed=3)  # the fix, then the rerun finishes the split
    (summary,) = convert_coco(train_json, images, out, progress=False)
    assert (summary.written, summary.kept) == (1, 1)


@needs_pycocotools
def test_worker_processes_write_the_same_files(tiny_coco: tuple[Path, Path, Path], tmp_path: Path) -> None:
    images, train_json, _ = tiny_coco
    convert_coco(train_json, images, tmp_path / "serial", progress=False)
    convert_coco(train_json, images, tmp_path / "pool", processes=2, progress=False)
    for png in (tmp_path / "serial" / "SegmentationClass").iterdir():
        assert png.read_bytes() == (tmp_path / "pool" / "SegmentationClass" / png.name).read_bytes()


@needs_pycocotools
def test_images_are_copied_across_file_systems(tiny_coco: tuple[Path, Path, Path], tmp_path: Path) -> None:
    images, train_json, _ = tiny_coco
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system to convert onto")
    with tempfile.TemporaryDirectory(dir=shm) as other:
        (summary,) = convert_coco(train_json, images, Path(other) / "out", progress=False)
        assert (summary.linked, summary.copied) == (0, 2)
        jpeg = Path(other) / "out" / "JPEGImages" / "COCO_train2014_000000000009.jpg"
        assert jpeg.read_bytes() == (images / "train2014" / jpeg.name).read_bytes()


@needs_pycocotools
def test_degenerate_polygons_have_no_area() -> None:
    """Polygons of fewer than three points are left out (pycocotools reads four numbers as a box)."""
    img = CocoImage(
        "x",
        "x.jpg",
        H,
        W,
        annotations=({"id": 1, "category_id": 5, "segmentation": [[1, 1, 30, 20], rect(2, 2, 6, 6)]},),
    )
    labels = coco_label_map(img, {5: 1})
    assert labels[4, 4] == 1 and labels[15, 20] == 0 and int((labels == 1).sum()) == 16


@needs_pycocotools
def test_bad_inputs_fail_before_any_write(tiny_coco: tuple[Path, Path, Path], tmp_path: Path) -> None:
    images, train_json, val_json = tiny_coco
    out = tmp_path / "out"
    data = json.loads(train_json.read_text())

    broken = tmp_path / "instances_broken.json"
    broken.write_text(json.dumps({**data, "annotations": [*data["annotations"], ann(999, 9, 7, [])]}))
    with pytest.raises(
        ValueError, match=r"instances_broken\.json: annotations\[7\]: category_id 7 is not among"
    ):
        convert_coco(broken, images, out, progress=False)
    broken.write_text("{not json")
    with pytest.raises(ValueError, match=r"instances_broken\.json: not a JSON file"):
        convert_coco(broken, images, out, progress=False)
    with pytest.raises(FileNotFoundError, match=r"annotation file not found"):
        convert_coco(tmp_path / "nope.json", images, out, progress=False)

    (images / "train2014" / "COCO_train2014_000000000034.jpg").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"1 of the 2 images of instances_train2014\.json with objects are"
    ):
        convert_coco(train_json, images, out, progress=False)
    with pytest.raises(ValueError, match=r"fills split 'val' as another annotation file does"):
        convert_coco([val_json, val_json], images, out, progress=False)
    copy = tmp_path / "instances_val_again.json"
    copy.write_text(val_json.read_text())
    with pytest.raises(ValueError, match=r"val_again\.json: image COCO_val2014_000000000042 is also in"):
        convert_coco([val_json, copy], images, out, progress=False)
    with pytest.raises(ValueError, match=r"split: name the split only when converting a single"):
        convert_coco([val_json, copy], images, out, split="x", progress=False)

    pngs = {**data, "images": [{**data["images"][0], "file_name": "COCO_train2014_000000000009.png"}]}
    (tmp_path / "instances_png.json").write_text(json.dumps({**pngs, "annotations": data["annotations"][:2]}))
    with pytest.raises(
        ValueError, match=r"1 images are not JPEG files, e\.g\. COCO_train2014_000000000009\.png"
    ):
        convert_coco(tmp_path / "instances_png.json", images, out, progress=False)
    assert not out.exists()  # every check ran before the first write

    convert_coco(val_json, images, out, progress=False)
    other = tmp_path / "instances_other.json"
    other.write_text(json.dumps({**data, "categories": [{"id": 3, "name": "car"}], "annotations": []}))
    with pytest.raises(ValueError, match=r"classes\.txt: .* already holds another class list"):
        convert_coco(other, images, out, progress=False)
    with pytest.raises(ValueError, match=r"category names: .*'background'"):
        read_coco_annotations(_with_categories(tmp_path, data, [{"id": 3, "name": "background"}]))


def _with_categories(tmp_path: Path, data: dict[str, Any], categories: list[dict[str, Any]]) -> Path:
    path = tmp_path / "instances_cats.json"
    path.write_text(json.dumps({**data, "categories": categories, "annotations": []}))
    return path


def test_missing_pycocotools_says_which_extra_to_install(tmp_path: Path) -> None:
    """Without pycocotools (blocked in a fresh interpreter): an ``ImportError`` in one line naming
    the extra, raised before any input is looked at or any output written."""
    out = tmp_path / "out"
    code = (
        "import sys; sys.modules['pycocotools'] = None\n"
        "from sal_lightning.data.coco import convert_coco\n"
        f"convert_coco({str(tmp_path / 'instances_train2014.json')!r}, {str(tmp_path)!r}, {str(out)!r})\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last == 'ImportError: COCO conversion needs pycocotools: pip install "sal-lightning[coco]"'
    assert not out.exists()


@needs_pycocotools
def test_a_converted_root_reads_through_the_voc_reader(
    tiny_coco: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """The VOC reader takes the class list from ``classes.txt``: tags ``[4]`` (from cls_labels.npy),
    labels 0..4 with the crowd 255, the class names in label order."""
    from sal_lightning.data.datasets import VOCDataset

    images, train_json, _ = tiny_coco
    convert_coco(train_json, images, tmp_path / "out", progress=False)
    dataset = VOCDataset(tmp_path / "out", "train")
    assert dataset.classes == NAMES and dataset.num_classes == 5
    samples = {s["id"]: s for s in (dataset[k] for k in range(len(dataset)))}
    first = samples["COCO_train2014_000000000009"]
    assert first["tags"].shape == (4,) and first["tags"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert set(first["mask"].unique().tolist()) == {0, PERSON, DOG, 255}
    toothbrush = samples["COCO_train2014_000000000034"]
    assert toothbrush["tags"][TOOTHBRUSH - 1] == 1 and int(toothbrush["mask"].max()) == TOOTHBRUSH


@needs_pycocotools
def test_one_call_per_file_gives_the_same_root(tiny_coco: tuple[Path, Path, Path], tmp_path: Path) -> None:
    images, train_json, val_json = tiny_coco
    convert_coco([train_json, val_json], images, tmp_path / "once", progress=False)
    convert_coco(train_json, images / "train2014", tmp_path / "twice", progress=False)
    convert_coco(val_json, images / "val2014", tmp_path / "twice", progress=False)
    once = sorted(p.relative_to(tmp_path / "once") for p in (tmp_path / "once").rglob("*") if p.is_file())
    twice = sorted(p.relative_to(tmp_path / "twice") for p in (tmp_path / "twice").rglob("*") if p.is_file())
    assert once == twice
    for rel in once:
        if rel.suffix != ".npy":  # a pickled dict's bytes depend on insertion order
            assert (tmp_path / "once" / rel).read_bytes() == (tmp_path / "twice" / rel).read_bytes(), rel
    tags_once = np.load(tmp_path / "once" / "cls_labels.npy", allow_pickle=True).item()
    tags_twice = np.load(tmp_path / "twice" / "cls_labels.npy", allow_pickle=True).item()
    assert tags_once.keys() == tags_twice.keys()
    assert all(np.array_equal(tags_once[k], tags_twice[k]) for k in tags_once)


@needs_pycocotools
def test_the_command_is_the_function(
    tiny_coco: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``sal-lightning data coco``: the arguments of :func:`convert_coco` as flags, a list as
    ``[a, b]``; the same root as the call, a line per split; a bad flag value exits 2."""
    from sal_lightning.cli import main

    images, train_json, val_json = tiny_coco
    convert_coco([train_json, val_json], images, tmp_path / "call", progress=False)
    argv = ["data", "coco", "--annotations", f"[{train_json}, {val_json}]", "--images", str(images)]
    assert main([*argv, "--out", str(tmp_path / "command"), "--processes", "0"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("train: ")
    files = sorted(p.relative_to(tmp_path / "call") for p in (tmp_path / "call").rglob("*.png"))
    assert files and all(
        (tmp_path / "call" / f).read_bytes() == (tmp_path / "command" / f).read_bytes() for f in files
    )
    assert main([*argv, "--out", str(tmp_path / "bad"), "--processes", "-1"]) == 2
    assert "processes" in capsys.readouterr().err
