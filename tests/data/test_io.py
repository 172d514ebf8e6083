"""VOC constants and file IO: label PNGs, images, CAM files, id lists, the scores table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sal_lightning.data.io import (
    SCORE_COLUMNS,
    read_cams,
    read_gray_png,
    read_id_list,
    read_image,
    read_label_png,
    read_scores,
    write_cams,
    write_gray_png,
    write_id_list,
    write_label_png,
    write_scores,
)
from sal_lightning.data.voc import (
    IGNORE_INDEX,
    NUM_CLASSES,
    NUM_FOREGROUND,
    VOC_CLASSES,
    VOC_PALETTE,
    class_index,
    tags_from_labels,
)


def test_constants_match_voc() -> None:
    assert len(VOC_CLASSES) == NUM_CLASSES == 21 and NUM_FOREGROUND == 20 and IGNORE_INDEX == 255
    assert VOC_CLASSES[0] == "background" and VOC_CLASSES[15] == "person" and VOC_CLASSES[20] == "tvmonitor"
    # colours as published in the VOC devkit's colour map (VOClabelcolormap.m)
    known = {
        0: (0, 0, 0),
        1: (128, 0, 0),
        2: (0, 128, 0),
        3: (128, 128, 0),
        4: (0, 0, 128),
        8: (64, 0, 0),
        15: (192, 128, 128),
        20: (0, 64, 128),
        255: (224, 224, 192),
    }
    for label, rgb in known.items():
        assert tuple(VOC_PALETTE[label]) == rgb
    assert VOC_PALETTE.shape == (256, 3) and len({tuple(c) for c in VOC_PALETTE}) == 256
    assert class_index("person") == 15
    with pytest.raises(ValueError, match="unknown VOC class name 'human'"):
        class_index("human")


def test_tags_from_labels_ignores_background_and_void() -> None:
    labels = np.array([[0, 255, 3], [20, 3, 0]], dtype=np.uint8)
    tags = tags_from_labels(labels)
    assert tags.dtype == np.float32 and tags.shape == (20,)
    assert np.flatnonzero(tags).tolist() == [2, 19]


def test_label_png_round_trip_palette(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = rng.choice(np.array([0, 1, 7, 15, 20, 255], dtype=np.uint8), size=(13, 17))
    path = tmp_path / "sub" / "a.png"
    write_label_png(path, labels)
    image = Image.open(path)
    assert image.mode == "P"
    assert np.array_equal(np.asarray(image.convert("RGB")), VOC_PALETTE[labels])  # viewable VOC colours
    assert np.array_equal(read_label_png(path), labels)
    assert [p.name for p in path.parent.iterdir()] == ["a.png"]  # no temporary left behind


def test_label_png_grayscale_and_rgb_read_the_same(tmp_path: Path) -> None:
    labels = np.array([[0, 5, 255], [12, 12, 0]], dtype=np.uint8)
    Image.fromarray(labels, mode="L").save(tmp_path / "gray.png")
    Image.fromarray(VOC_PALETTE[labels], mode="RGB").save(tmp_path / "rgb.png")
    assert np.array_equal(read_label_png(tmp_path / "gray.png"), labels)
    assert np.array_equal(read_label_png(tmp_path / "rgb.png"), labels)


def test_label_png_bad_values_name_the_file(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 21], [254, 1]], dtype=np.uint8), mode="L").save(tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"bad\.png: label values must be 0\.\.20 or 255.*\[21, 254\]"):
        read_label_png(tmp_path / "bad.png")
    Image.fromarray(np.full((2, 2, 3), 7, np.uint8), mode="RGB").save(tmp_path / "colour.png")
    with pytest.raises(ValueError, match=r"colour\.png: RGB mask holds colours outside the"):
        read_label_png(tmp_path / "colour.png")
    with pytest.raises(ValueError, match=r"out\.png: label values must be"):
        write_label_png(tmp_path / "out.png", np.full((2, 2), 30, np.uint8))
    with pytest.raises(FileNotFoundError, match=r"missing\.png"):
        read_label_png(tmp_path / "missing.png")
    (tmp_path / "trunc.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ValueError, match=r"trunc\.png: cannot read image"):
        read_label_png(tmp_path / "trunc.png")


def test_images_and_gray_maps(tmp_path: Path) -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    write_gray_png(tmp_path / "s.png", gray)
    assert np.array_equal(read_gray_png(tmp_path / "s.png"), gray)
    rgb = read_image(tmp_path / "s.png")  # grayscale image files read as RGB
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8 and np.array_equal(rgb[..., 1], gray)
    with pytest.raises(ValueError, match=r"values must be uint8 \[H, W\]"):
        write_gray_png(tmp_path / "f.png", gray.astype(np.float32))


def test_id_lists_validate(tmp_path: Path) -> None:
    write_id_list(tmp_path / "ids.txt", ["2007_000032", "a"])
    assert read_id_list(tmp_path / "ids.txt") == ["2007_000032", "a"]
    (tmp_path / "cls.txt").write_text("2007_000032 -1\n\n2007_000039  1\n")  # VOC classification list
    assert read_id_list(tmp_path / "cls.txt") == ["2007_000032", "2007_000039"]
    for bad, message in [("x/y", "invalid image id 'x/y'"), ("..", "invalid image id"), ("a\\b", "invalid")]:
        (tmp_path / "bad.txt").write_text(f"ok\n{bad}\n")
        with pytest.raises(ValueError, match=message):
            read_id_list(tmp_path / "bad.txt")
    (tmp_path / "dup.txt").write_text("a\nb\na\n")
    with pytest.raises(ValueError, match=r"dup\.txt: 1 duplicate image ids, e\.g\. \['a'\]"):
        read_id_list(tmp_path / "dup.txt")
    with pytest.raises(ValueError, match="duplicate"):
        write_id_list(tmp_path / "w.txt", ["a", "a"])


def test_scores_write_merge_and_sidecar(tmp_path: Path) -> None:
    path = tmp_path / "scores.csv"
    write_scores(path, {"a": {"ac": 0.5, "cd": 1.0, "sc": 0.5}, "b": {"ac": 0.25}}, {"step": "coarse"})
    rows = read_scores(path)
    assert list(rows) == ["a", "b"]
    assert rows["a"]["sc"] == 0.5 and math.isnan(rows["a"]["weight"]) and math.isnan(rows["b"]["cd"])
    header = path.read_text().splitlines()[0].split(",")
    assert tuple(header) == SCORE_COLUMNS
    # a later step fills p/sf/weight without touching the coarse scores, and may add ids
    write_scores(path, {"a": {"p": 0.9, "sf": 0.9, "weight": 1.0}, "c": {"weight": 0.0}}, {"tau": 0.85})
    rows = read_scores(path)
    assert list(rows) == ["a", "b", "c"]
    assert rows["a"] == pytest.approx({"ac": 0.5, "cd": 1.0, "sc": 0.5, "p": 0.9, "sf": 0.9, "weight": 1.0})
    assert rows["c"]["weight"] == 0.0 and math.isnan(rows["c"]["ac"])
    sidecar = json.loads((tmp_path / "scores.json").read_text())
    assert [w["columns"] for w in sidecar["writes"]] == [["ac", "cd", "sc"], ["p", "sf", "weight"]]
    assert sidecar["writes"][1]["config"] == {"tau": 0.85} and "torch" in sidecar["writes"][1]["versions"]


def test_scores_read_errors(tmp_path: Path) -> None:
    path = tmp_path / "scores.csv"
    path.write_text("image_id,weight\na,1\na,0\n")
    with pytest.raises(ValueError, match=r"scores\.csv:3: duplicate image id 'a'"):
        read_scores(path)
    path.write_text("image_id,weight\na,high\n")
    with pytest.raises(ValueError, match=r"scores\.csv:2: column 'weight' must be a number, got 'high'"):
        read_scores(path)
    path.write_text("id,weight\n")
    with pytest.raises(ValueError, match="header starting with 'image_id'"):
        read_scores(path)
    path.write_text("image_id,weight\na,0.5\n")  # a partial table reads the other columns as NaN
    assert math.isnan(read_scores(path)["a"]["sf"])


def test_cam_files_round_trip(tmp_path: Path) -> None:
    cams = np.random.default_rng(0).random((2, 5, 6)).astype(np.float32)
    write_cams(tmp_path / "a.npz", cams, np.array([3, 17]))
    dense = read_cams(tmp_path / "a.npz")
    assert dense.shape == (20, 5, 6)
    np.testing.assert_allclose(dense[[2, 16]], cams, atol=1e-3)  # float16 storage
    assert dense[[0, 1, 3]].sum() == 0
    with pytest.raises(ValueError, match="labels"):
        write_cams(tmp_path / "b.npz", cams, np.array([0, 1]))
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        read_cams(tmp_path / "missing.npz")
