"""The class-list contract: classes.txt, validation, the default VOC list, palettes, label values, tags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sal_lightning.data.classes import (
    CLASSES_FILE,
    DEFAULT_CLASSES,
    MAX_CLASSES,
    check_label_values,
    palette,
    read_classes,
    tags_from_label_map,
    valid_labels,
    validate_classes,
    write_classes,
)
from sal_lightning.data.layout import root_classes
from sal_lightning.data.voc import IGNORE_INDEX, VOC_CLASSES, VOC_PALETTE

SEVEN = ("background", "rock", "tree", "traffic light", "car", "person", "dog", "cat")


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    path = write_classes(tmp_path / "sub" / CLASSES_FILE, SEVEN)
    assert path.read_text() == "".join(f"{name}\n" for name in SEVEN)  # one name per line, UTF-8
    assert read_classes(path) == SEVEN
    assert [p.name for p in path.parent.iterdir()] == [CLASSES_FILE]  # no temporary file left


def test_read_tolerates_crlf_bom_surrounding_spaces_and_trailing_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / CLASSES_FILE
    path.write_bytes("\ufeffbackground\r\n  traffic light \r\ndog\n\n\n".encode())
    assert read_classes(path) == ("background", "traffic light", "dog")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("background\ndog\ncat\nDog\n", r"class 'Dog' on line 4 repeats 'dog' on line 2"),
        ("background\ndog\n\ncat\n", r"entry 2 \(line 3\): empty class name"),
        (
            "dog\ncat\n",
            r"the first class must be 'background' \(label 0\), got 'dog'; add a 'background' line",
        ),
        ("background\n", r"no foreground class"),
        ("", r"the class list is empty"),
        ("background\ndog\nbackground\n", r"class 'background' on line 3 repeats"),
    ],
)
def test_invalid_class_files_name_the_file_and_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / CLASSES_FILE
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"{CLASSES_FILE}: .*{message}"):
        read_classes(path)


def test_validation_of_names_given_in_python() -> None:
    assert validate_classes(list(SEVEN)) == SEVEN
    with pytest.raises(
        ValueError, match=r"names: entry 1 \(line 2\): class name ' dog' has surrounding whitespace"
    ):
        validate_classes(["background", " dog"], "names")
    with pytest.raises(ValueError, match=r"line break"):
        validate_classes(["background", "do\ng"])
    with pytest.raises(ValueError, match=r"expected a sequence of class names, got the string"):
        validate_classes("background")
    too_many = ["background", *(f"c{i}" for i in range(MAX_CLASSES))]
    with pytest.raises(ValueError, match=r"256 classes, at most 255 fit in 8-bit label maps"):
        validate_classes(too_many)
    assert len(validate_classes(too_many[:MAX_CLASSES])) == 255


def test_missing_file_and_bad_encoding(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"classes.txt: class list not found"):
        read_classes(tmp_path / CLASSES_FILE)
    (tmp_path / CLASSES_FILE).write_bytes(b"background\n\xff\xfe\n")
    with pytest.raises(ValueError, match=r"must be UTF-8 text"):
        read_classes(tmp_path / CLASSES_FILE)


def test_a_root_without_a_class_file_has_voc_classes(tmp_path: Path) -> None:
    root = tmp_path / "VOCdevkit" / "VOC2012"
    (root / "JPEGImages").mkdir(parents=True)
    assert root_classes(root) == DEFAULT_CLASSES == VOC_CLASSES
    write_classes(root / CLASSES_FILE, SEVEN)
    assert root_classes(root) == SEVEN
    assert root_classes(tmp_path) == SEVEN  # a VOCdevkit parent, as every reader accepts


def test_palette_is_vocs_up_to_21_classes() -> None:
    for k in (2, 8, 21):
        colours = palette(k)
        assert colours.shape == (256, 3) and colours.dtype == np.uint8
        assert np.array_equal(colours[:k], VOC_PALETTE[:k])
        assert tuple(colours[IGNORE_INDEX]) == (224, 224, 192)
        assert not colours[k:IGNORE_INDEX].any()  # labels that do not exist stay black
    assert np.array_equal(palette(21)[:21], VOC_PALETTE[:21])
    assert not palette(21).flags.writeable


@pytest.mark.parametrize("k", [22, 81, 255])
def test_generated_palette_is_distinct_and_deterministic(k: int) -> None:
    colours = palette(k)
    assert np.array_equal(colours, palette(k))
    used = [tuple(int(v) for v in colours[label]) for label in [*range(k), IGNORE_INDEX]]
    assert len(set(used)) == len(used)  # every label, background and void have their own colour
    assert used[0] == (0, 0, 0) and used[-1] == (224, 224, 192)
    rgb = colours[1:k].astype(np.float64)
    assert rgb.max(axis=1).min() >= 0.5 * 255  # no foreground colour is near black
    if k == 81:  # COCO: no two classes look alike (the closest pair is still far apart)
        distance = np.sqrt(((rgb[:, None] - rgb[None]) ** 2).sum(-1)) + np.eye(len(rgb)) * 1e9
        assert distance.min() > 15


def test_palette_rejects_impossible_class_counts() -> None:
    for bad in (1, 256, 0):
        with pytest.raises(ValueError, match=r"expected 2\.\.255 classes"):
            palette(bad)
    with pytest.raises(ValueError, match=r"expected an integer"):
        palette(True)


def test_label_values_and_tags_for_any_class_count() -> None:
    labels = np.array([[0, 80, 255], [3, 3, 0]], dtype=np.uint8)
    assert check_label_values(labels, 81, "x.png") is labels
    with pytest.raises(
        ValueError, match=r"x\.png: label values must be 0\.\.7 or 255 \(ignore\), found \[80\] in 1"
    ):
        check_label_values(labels, 8, "x.png")
    table = valid_labels(8)
    assert table[:8].all() and not table[8:255].any() and table[255]
    tags = tags_from_label_map(labels, 81)
    assert tags.dtype == np.float32 and tags.shape == (80,)
    assert np.flatnonzero(tags).tolist() == [2, 79]  # classes 3 and 80
