"""A synthetic dataset in the exact PASCAL VOC 2012 layout (the demo's data and the tests' fixture).

The files written under ``out``::

    JPEGImages/<id>.jpg                     RGB images
    SegmentationClass/<id>.png              VOC-palette masks with a void (255) band along borders
    SegmentationClassAug/<id>.png           the same masks without the void band (as SBD's)
    Annotations/<id>.xml                    VOC XML: size and one <object> (name, bndbox) per object
    ImageSets/Segmentation/{train,val,train_aug}.txt
    saliency/<id>.png                       grayscale maps of an imperfect salient-object detector
    synthetic.json                          the generator's parameters (a rerun with equal ones is a no-op)

Two difficulties (``difficulty``):

- ``"realistic"`` (the default; ``data synth``, the demo): what makes real weakly supervised data
  hard. Classes look alike: each of the 20 is a combination of a shape (5), a texture (4) and a
  pair of colours (10 pairs over 6 colours), every one of them shared with other classes, so only
  the combination tells a class; classes ``2j-1`` and ``2j`` share both colours (in every other
  pair with the roles of the two swapped) and the second object of an image is the first one's
  look-alike in 30% of the draws that are not a repeat of its class. About 60% of the images hold
  one class;
  objects range from small to large (log-uniform sizes), occlude each other (each keeps at least
  half of itself visible), on a smooth background with low-contrast clutter. The saliency maps
  miss and spill: about 15% are deliberately poor (low contrast, heavy blur, the biggest object
  missed, a large salient background area, or only part of an object salient), small objects
  (under 3% of the image) are missed 40% of the time, and 25% of the maps get a false-positive
  blob; the others are slightly blurred, grown or shrunk. ``benchmarks/data_profile.py`` measures
  these figures; ``docs/data.md`` compares them with an independent benchmark's.
- ``"clean"``: the generator of sal-lightning 0.1's first figures (one colour per class, 1-3
  objects, decent saliency); it reproduces them, and suits tests of mechanics.

The output depends only on the parameters; image ``i`` only on ``(seed, i)``.
"""

from __future__ import annotations

import colorsys
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from tqdm import tqdm

from sal_lightning._atomic import atomic_write_text
from sal_lightning.data.io import PathLike, write_gray_png, write_id_list, write_image, write_label_png
from sal_lightning.data.voc import IGNORE_INDEX, NUM_FOREGROUND, VOC_CLASSES

SHAPES: tuple[str, ...] = ("ellipse", "rectangle", "triangle", "diamond", "cross")
TEXTURES: tuple[str, ...] = ("plain", "stripes", "checker", "dots")
_FORMAT_VERSION = 1  # of the "clean" data; "realistic" data records its difficulty beside it
Difficulty = Literal["realistic", "clean"]
DIFFICULTIES: tuple[str, ...] = ("realistic", "clean")


@dataclass(frozen=True)
class ClassStyle:
    """Appearance of one synthetic class: base colour (RGB 0..255), shape and texture names."""

    colour: tuple[int, int, int]
    shape: str
    texture: str


def class_styles() -> dict[int, ClassStyle]:
    """Label value (1..20) -> :class:`ClassStyle`; 10 hues x 2 brightness levels, shapes and textures."""
    styles = {}
    for label in range(1, NUM_FOREGROUND + 1):
        k = label - 1
        hue = (k % 10) / 10.0
        value = 0.95 if k < 10 else 0.55
        r, g, b = colorsys.hsv_to_rgb(hue, 0.85, value)
        styles[label] = ClassStyle(
            colour=(round(r * 255), round(g * 255), round(b * 255)),
            shape=SHAPES[k % len(SHAPES)],
            texture=TEXTURES[(k // 5) % len(TEXTURES)],
        )
    return styles


_STYLES = class_styles()

#: the six colours (RGB) the realistic classes combine in pairs
COLOURS: tuple[tuple[int, int, int], ...] = (
    (214, 48, 40),  # red
    (232, 196, 40),  # yellow
    (52, 160, 70),  # green
    (40, 92, 206),  # blue
    (150, 60, 170),  # purple
    (225, 225, 215),  # off-white
)
#: (main, second) colour of each look-alike pair of classes (2j-1, 2j), j = 1..10
COLOUR_PAIRS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 0), (0, 3), (1, 4), (2, 5), (3, 0),
)  # fmt: skip


@dataclass(frozen=True)
class RealisticStyle:
    """Appearance of a realistic synthetic class: two colours (RGB), a shape and a texture."""

    colours: tuple[tuple[int, int, int], tuple[int, int, int]]
    shape: str
    texture: str


def realistic_styles() -> dict[int, RealisticStyle]:
    """Label value (1..20) -> :class:`RealisticStyle`. Classes ``2j-1`` and ``2j`` share both colours
    (and differ in shape); each shape is shared by 4 classes and each texture by 5, so only the
    combination of shape, texture and colours identifies a class."""
    styles = {}
    for label in range(1, NUM_FOREGROUND + 1):
        k = label - 1
        main, second = COLOUR_PAIRS[k // 2]
        if k % 4 == 3:  # in every other pair the second class swaps which colour dominates
            main, second = second, main
        styles[label] = RealisticStyle(
            colours=(COLOURS[main], COLOURS[second]),
            shape=SHAPES[k % len(SHAPES)],
            texture=TEXTURES[(k // 5) % len(TEXTURES)],
        )
    return styles


def look_alike(label: int) -> int:
    """The class that shares both colours with ``label`` in the realistic data (``2j-1`` <-> ``2j``)."""
    return label + 1 if label % 2 == 1 else label - 1


_REALISTIC = realistic_styles()


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside test in object coordinates scaled so the shape spans about [-1, 1]^2."""
    if shape == "ellipse":
        return u * u + v * v <= 1.0
    if shape == "rectangle":
        return (np.abs(u) <= 0.9) & (np.abs(v) <= 0.75)
    if shape == "triangle":
        return (v <= 0.9) & (np.abs(u) <= (v + 1.0) * 0.55)
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1.1
    if shape == "cross":
        return ((np.abs(u) <= 1.0) & (np.abs(v) <= 0.38)) | ((np.abs(u) <= 0.38) & (np.abs(v) <= 1.0))
    raise ValueError(f"unknown shape {shape!r}")


def _texture(texture: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Brightness factor float [H, W] around 1 for a texture in object coordinates."""
    if texture == "plain":
        return np.ones_like(u)
    if texture == "stripes":
        return 1.0 + 0.28 * np.sign(np.sin(u * 3.0 * np.pi))
    if texture == "checker":
        return 1.0 + 0.28 * np.sign(np.sin(u * 2.5 * np.pi) * np.sin(v * 2.5 * np.pi))
    if texture == "dots":
        du, dv = np.mod(u * 2.5, 1.0) - 0.5, np.mod(v * 2.5, 1.0) - 0.5
        return np.where(du * du + dv * dv < 0.09, 0.55, 1.1)
    raise ValueError(f"unknown texture {texture!r}")


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int, channels: int) -> np.ndarray:
    """Smooth random field float32 [H, W, C] in about [-1, 1] (bicubic upsampling of a coarse grid)."""
    coarse = rng.uniform(-1.0, 1.0, size=(cells, cells, channels)).astype(np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return field.reshape(height, width, channels)


def _void_band(labels: np.ndarray, width: int) -> np.ndarray:
    """bool [H, W]: pixels within ``width - 1`` of a boundary between two different labels (both sides)."""
    edge = np.zeros(labels.shape, dtype=bool)
    diff_x = labels[:, 1:] != labels[:, :-1]
    diff_y = labels[1:, :] != labels[:-1, :]
    edge[:, 1:] |= diff_x
    edge[:, :-1] |= diff_x
    edge[1:, :] |= diff_y
    edge[:-1, :] |= diff_y
    if width > 1:
        kernel = np.ones((2 * width - 1, 2 * width - 1), np.uint8)
        edge = cv2.dilate(edge.astype(np.uint8), kernel).astype(bool)
    return edge


@dataclass
class SyntheticSample:
    """One generated sample: image uint8 [H, W, 3], labels uint8 [H, W] (no void), saliency uint8 [H, W],
    objects as (label, (xmin, ymin, xmax, ymax)) in VOC's 1-based inclusive pixel coordinates."""

    image: np.ndarray
    labels: np.ndarray
    saliency: np.ndarray
    objects: list[tuple[int, tuple[int, int, int, int]]]


def make_sample(rng: np.random.Generator, height: int, width: int) -> SyntheticSample:
    """Draw one synthetic image with its label map, saliency map and object list."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(70, 190)
    tint = rng.uniform(-18, 18, size=3)
    image = (
        base
        + tint
        + 45.0 * _smooth_noise(rng, height, width, 4, 1)
        + 12.0 * _smooth_noise(rng, height, width, 4, 3)
    )
    labels = np.zeros((height, width), dtype=np.uint8)
    instance = np.zeros((height, width), dtype=np.int64)
    strength = [0.0]  # saliency strength per instance id (0 = background)
    objects: list[tuple[int, tuple[int, int, int, int]]] = []
    scale = min(height, width)
    min_area = max(12, int(0.004 * height * width))
    wanted = int(rng.integers(1, 4))
    for _ in range(12):  # attempts: an object that would be too small or hide another is redrawn
        if len(objects) == wanted:
            break
        repeat = bool(objects) and rng.random() < 0.3  # VOC often shows several objects of one class
        label = objects[-1][0] if repeat else int(rng.integers(1, NUM_FOREGROUND + 1))
        style = _STYLES[label]
        radius_x = rng.uniform(0.14, 0.32) * scale
        radius_y = radius_x * rng.uniform(0.7, 1.3)
        cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height
        angle = rng.uniform(-0.6, 0.6)
        cos, sin = np.cos(angle), np.sin(angle)
        u = ((xx - cx) * cos + (yy - cy) * sin) / radius_x
        v = (-(xx - cx) * sin + (yy - cy) * cos) / radius_y
        inside = _shape_mask(style.shape, u, v)
        k = len(strength)
        visible = np.bincount(np.where(inside, k, instance).ravel(), minlength=k + 1)
        if visible[1:].min() < min_area:  # too small, or would hide an earlier object: skip it
            continue
        h, s, val = colorsys.rgb_to_hsv(*(c / 255.0 for c in style.colour))
        h = (h + rng.uniform(-0.015, 0.015)) % 1.0
        s = float(np.clip(s + rng.uniform(-0.1, 0.1), 0.0, 1.0))
        val = float(np.clip(val + rng.uniform(-0.07, 0.07), 0.0, 1.0))
        colour = np.array(colorsys.hsv_to_rgb(h, s, val), dtype=np.float32) * 255.0
        shade = _texture(style.texture, u, v) * (1.0 + 0.12 * (u * 0.5 - v * 0.5).clip(-1, 1))
        image[inside] = colour[None, :] * shade[inside][:, None]
        labels[inside] = label
        instance[inside] = k
        strength.append(
            float(rng.uniform(0.25, 0.5)) if rng.random() < 0.1 else float(rng.uniform(0.75, 1.0))
        )
        objects.append((label, (0, 0, 0, 0)))
    image += rng.normal(0.0, 4.0, size=image.shape)
    image_u8 = np.clip(image, 0, 255).astype(np.uint8)
    for k in range(1, len(strength)):  # boxes of the visible parts, VOC's 1-based inclusive pixels
        ys, xs = np.nonzero(instance == k)
        box = (int(xs.min()) + 1, int(ys.min()) + 1, int(xs.max()) + 1, int(ys.max()) + 1)
        objects[k - 1] = (objects[k - 1][0], box)

    saliency: np.ndarray = np.array(strength, dtype=np.float32)[instance]
    grow = int(rng.integers(-1, 2)) * max(1, scale // 48)
    if grow:
        kernel = np.ones((2 * abs(grow) + 1, 2 * abs(grow) + 1), np.uint8)
        op = cv2.dilate if grow > 0 else cv2.erode
        saliency = op(saliency, kernel)
    if rng.random() < 0.35:  # a false-positive blob on the background
        by, bx = rng.uniform(0, height), rng.uniform(0, width)
        radius = rng.uniform(0.06, 0.16) * scale
        blob = np.exp(-((yy - by) ** 2 + (xx - bx) ** 2) / (2 * radius * radius))
        saliency = np.maximum(saliency, rng.uniform(0.3, 0.8) * blob)
    sigma = max(0.8, 0.025 * scale)
    saliency = cv2.GaussianBlur(saliency, (0, 0), sigma)
    saliency = saliency + 0.04 * _smooth_noise(rng, height, width, 6, 1)[..., 0]
    saliency_u8 = np.clip(saliency * 255.0, 0, 255).astype(np.uint8)
    return SyntheticSample(image=image_u8, labels=labels, saliency=saliency_u8, objects=objects)


def _two_colour_texture(texture: str, u: np.ndarray, v: np.ndarray, phase: float) -> np.ndarray:
    """float [H, W] in [0, 1]: the share of the second colour at each pixel of a two-colour texture."""
    if texture == "plain":  # a smooth blend from the main colour to the second one
        return np.clip(0.5 + 0.35 * (u * np.cos(phase) + v * np.sin(phase)), 0.0, 1.0)
    if texture == "stripes":
        return (np.sin((u * np.cos(phase) + v * np.sin(phase)) * 3.0 * np.pi) > 0).astype(np.float32)
    if texture == "checker":
        return (np.sin(u * 2.5 * np.pi + phase) * np.sin(v * 2.5 * np.pi + phase) > 0).astype(np.float32)
    if texture == "dots":
        du, dv = np.mod(u * 2.5 + phase, 1.0) - 0.5, np.mod(v * 2.5 + phase, 1.0) - 0.5
        return (du * du + dv * dv < 0.09).astype(np.float32)
    raise ValueError(f"unknown texture {texture!r}")


def _jitter(rng: np.random.Generator, colour: tuple[int, int, int]) -> np.ndarray:
    h, s, v = colorsys.rgb_to_hsv(*(c / 255.0 for c in colour))
    h = (h + rng.uniform(-0.02, 0.02)) % 1.0
    s = float(np.clip(s + rng.uniform(-0.1, 0.1), 0.0, 1.0))
    v = float(np.clip(v + rng.uniform(-0.1, 0.1), 0.0, 1.0))
    return np.array(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32) * 255.0


def _poor_saliency(
    rng: np.random.Generator, saliency: np.ndarray, instance: np.ndarray, yy: np.ndarray, xx: np.ndarray
) -> tuple[np.ndarray, float]:
    """One deliberately poor map (real detectors' failure modes); returns it and an extra blur factor."""
    kind = rng.choice(["low-contrast", "blur", "miss-biggest", "background", "part"])
    height, width = saliency.shape
    if kind == "low-contrast":
        return 0.3 + 0.25 * saliency, 1.0
    if kind == "blur":
        return saliency, 4.0
    areas = np.bincount(instance.ravel())
    areas[0] = 0
    biggest = int(np.argmax(areas))
    if kind == "miss-biggest":
        return np.where(instance == biggest, 0.05, saliency), 1.0
    if kind == "background":  # a large salient background area (a bright wall, the sky...)
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(0.3, 0.6) * height, rng.uniform(0.3, 0.6) * width
        area = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        return np.maximum(saliency, np.where(area & (instance == 0), rng.uniform(0.7, 1.0), 0.0)), 1.0
    # only part of an object salient: a half-plane through the biggest object is lost
    ys, xs = np.nonzero(instance == biggest)
    angle = rng.uniform(0, 2 * np.pi)
    side = (xx - xs.mean()) * np.cos(angle) + (yy - ys.mean()) * np.sin(angle) > 0
    return np.where((instance == biggest) & side, 0.05, saliency), 1.0


def make_realistic_sample(rng: np.random.Generator, height: int, width: int) -> SyntheticSample:
    """Draw one sample of the ``"realistic"`` data (see the module docstring)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    scale = min(height, width)
    base = rng.uniform(80, 180)
    image = (
        base
        + rng.uniform(-20, 20, size=3)
        + 40.0 * _smooth_noise(rng, height, width, 4, 1)
        + 12.0 * _smooth_noise(rng, height, width, 4, 3)
    )
    for _ in range(int(rng.integers(0, 4))):  # low-contrast clutter: shapes that are no class
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        r = rng.uniform(0.05, 0.15) * scale
        clutter = _shape_mask(str(rng.choice(SHAPES)), (xx - cx) / r, (yy - cy) / r)
        image[clutter] += rng.uniform(-25, 25, size=3)
    labels = np.zeros((height, width), dtype=np.uint8)
    instance = np.zeros((height, width), dtype=np.int64)
    full_area: list[int] = [0]
    objects: list[tuple[int, tuple[int, int, int, int]]] = []
    min_area = max(10, int(0.004 * height * width))
    wanted = int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
    for _ in range(20):  # attempts: an object too small, or hiding half of another, is redrawn
        if len(objects) == wanted:
            break
        if objects and rng.random() < 0.3:
            label = objects[-1][0]  # several objects of one class, as in VOC
        elif objects and rng.random() < 0.3:
            label = look_alike(objects[0][0])  # a look-alike in the same image
        else:
            label = int(rng.integers(1, NUM_FOREGROUND + 1))
        style = _REALISTIC[label]
        radius_x = float(np.exp(rng.uniform(np.log(0.09), np.log(0.34)))) * scale
        radius_y = radius_x * rng.uniform(0.7, 1.3)
        cx, cy = rng.uniform(0.05, 0.95) * width, rng.uniform(0.05, 0.95) * height
        angle = rng.uniform(-np.pi, np.pi)
        cos, sin = np.cos(angle), np.sin(angle)
        u = ((xx - cx) * cos + (yy - cy) * sin) / radius_x
        v = (-(xx - cx) * sin + (yy - cy) * cos) / radius_y
        inside = _shape_mask(style.shape, u, v)
        k = len(full_area)
        visible = np.bincount(np.where(inside, k, instance).ravel(), minlength=k + 1)
        if visible[k] < min_area or any(visible[j] < 0.5 * full_area[j] for j in range(1, k)):
            continue
        mix = _two_colour_texture(style.texture, u, v, rng.uniform(0, 2 * np.pi))[..., None]
        first, second = _jitter(rng, style.colours[0]), _jitter(rng, style.colours[1])
        shade = 1.0 + 0.15 * np.clip(u * 0.5 - v * 0.5, -1, 1)[..., None]
        image[inside] = ((1.0 - mix) * first + mix * second)[inside] * shade[inside]
        labels[inside] = label
        instance[inside] = k
        full_area.append(int(inside.sum()))
        objects.append((label, (0, 0, 0, 0)))
    image += rng.normal(0.0, 5.0, size=image.shape)
    image_u8 = np.clip(image, 0, 255).astype(np.uint8)
    strength = [0.0]
    for k in range(1, len(full_area)):  # boxes of the visible parts; small objects often missed
        ys, xs = np.nonzero(instance == k)
        objects[k - 1] = (
            objects[k - 1][0],
            (int(xs.min()) + 1, int(ys.min()) + 1, int(xs.max()) + 1, int(ys.max()) + 1),
        )
        small = len(ys) < 0.03 * height * width
        strength.append(0.05 if small and rng.random() < 0.4 else float(rng.uniform(0.75, 1.0)))

    saliency: np.ndarray = np.array(strength, dtype=np.float32)[instance]
    blur = 1.0
    if rng.random() < 0.15:
        saliency, blur = _poor_saliency(rng, saliency, instance, yy, xx)
    else:
        grow = int(rng.integers(-1, 2)) * max(1, scale // 96)
        if grow:
            kernel = np.ones((2 * abs(grow) + 1, 2 * abs(grow) + 1), np.uint8)
            saliency = (cv2.dilate if grow > 0 else cv2.erode)(saliency, kernel)
    if rng.random() < 0.25:  # a false-positive blob on the background
        by, bx = rng.uniform(0, height), rng.uniform(0, width)
        radius = rng.uniform(0.06, 0.16) * scale
        blob = np.exp(-((yy - by) ** 2 + (xx - bx) ** 2) / (2 * radius * radius))
        saliency = np.maximum(saliency, rng.uniform(0.4, 0.9) * blob)
    saliency = cv2.GaussianBlur(saliency.astype(np.float32), (0, 0), blur * max(0.6, 0.012 * scale))
    saliency = saliency + 0.04 * _smooth_noise(rng, height, width, 6, 1)[..., 0]
    saliency_u8 = np.clip(saliency * 255.0, 0, 255).astype(np.uint8)
    return SyntheticSample(image=image_u8, labels=labels, saliency=saliency_u8, objects=objects)


def annotation_xml(
    image_id: str, height: int, width: int, objects: list[tuple[int, tuple[int, int, int, int]]]
) -> str:
    """A VOC ``Annotations/<id>.xml`` document for the given objects (label, (xmin, ymin, xmax, ymax))."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "VOC2012"
    ET.SubElement(root, "filename").text = f"{image_id}.jpg"
    source = ET.SubElement(root, "source")
    ET.SubElement(source, "database").text = "sal-lightning synthetic"
    size = ET.SubElement(root, "size")
    ET.SubElement(size, "width").text = str(width)
    ET.SubElement(size, "height").text = str(height)
    ET.SubElement(size, "depth").text = "3"
    ET.SubElement(root, "segmented").text = "1"
    for label, (x0, y0, x1, y1) in objects:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = VOC_CLASSES[label]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        box = ET.SubElement(obj, "bndbox")
        for tag, value in (("xmin", x0), ("ymin", y0), ("xmax", x1), ("ymax", y1)):
            ET.SubElement(box, tag).text = str(value)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def make_synthetic_voc(
    out: PathLike,
    n_train: int = 200,
    n_val: int = 50,
    size: int | tuple[int, int] = 96,
    seed: int = 0,
    *,
    difficulty: Difficulty = "realistic",
    progress: bool = False,
) -> Path:
    """Write a synthetic VOC-format dataset under ``out`` and return ``out`` (a VOC root).

    size: square side, or (height, width). difficulty: ``"realistic"`` (look-alike classes,
    saliency maps that miss and spill; the default) or ``"clean"`` (see the module docstring).
    Image ``i`` depends only on ``(seed, i)``, so the output is deterministic. Ids are
    ``synth_000000`` ...; the first ``n_train`` form ``train`` (and ``train_aug``), the next
    ``n_val`` form ``val``. A rerun with the same parameters over a complete output returns at once.
    """
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty: expected one of {list(DIFFICULTIES)}, got {difficulty!r}")
    if n_train < 0 or n_val < 0 or n_train + n_val == 0:
        raise ValueError(f"n_train and n_val must be >= 0 with at least one image, got {n_train}, {n_val}")
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if min(height, width) < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    out = Path(out)
    params: dict[str, int | str] = {
        "format": _FORMAT_VERSION,
        "n_train": n_train,
        "n_val": n_val,
        "height": height,
        "width": width,
        "seed": seed,
    }
    if difficulty != "clean":  # the clean data keeps its first marker, so its outputs are reused
        params["difficulty"] = difficulty
    marker = out / "synthetic.json"
    if marker.is_file() and json.loads(marker.read_text()) == params:
        return out
    ids = [f"synth_{i:06d}" for i in range(n_train + n_val)]
    void_width = max(1, round(min(height, width) / 100))
    seeds = np.random.SeedSequence(seed).spawn(len(ids))
    for image_id, child in tqdm(
        list(zip(ids, seeds, strict=True)), desc="synthetic VOC", disable=not progress, unit="img"
    ):
        make = make_sample if difficulty == "clean" else make_realistic_sample
        sample = make(np.random.default_rng(child), height, width)
        write_image(out / "JPEGImages" / f"{image_id}.jpg", sample.image, quality=92)
        write_label_png(out / "SegmentationClassAug" / f"{image_id}.png", sample.labels)
        voc_labels = sample.labels.copy()
        voc_labels[_void_band(sample.labels, void_width)] = IGNORE_INDEX
        write_label_png(out / "SegmentationClass" / f"{image_id}.png", voc_labels)
        write_gray_png(out / "saliency" / f"{image_id}.png", sample.saliency)
        atomic_write_text(
            out / "Annotations" / f"{image_id}.xml", annotation_xml(image_id, height, width, sample.objects)
        )
    lists = out / "ImageSets" / "Segmentation"
    write_id_list(lists / "train.txt", ids[:n_train])
    write_id_list(lists / "train_aug.txt", ids[:n_train])
    write_id_list(lists / "val.txt", ids[n_train:])
    atomic_write_text(marker, json.dumps(params, indent=2) + "\n")
    return out
