"""The ``"realistic"`` synthetic data: look-alike classes of two colours, occluding objects of many
sizes, saliency maps that miss and spill (see :mod:`sal_lightning.data.synthetic`)."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import cv2
import numpy as np

from sal_lightning.data.scenes import (
    SHAPES,
    TEXTURES,
    SyntheticSample,
    add_blob,
    grow_or_shrink,
    object_coordinates,
    shape_mask,
    smooth_noise,
)
from sal_lightning.data.voc import NUM_FOREGROUND

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
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 4),
    (4, 5),
    (5, 0),
    (0, 3),
    (1, 4),
    (2, 5),
    (3, 0),
)


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


def make_realistic_sample(
    rng: np.random.Generator, height: int, width: int, num_foreground: int = NUM_FOREGROUND
) -> SyntheticSample:
    """Draw one sample of the ``"realistic"`` data (see the module docstring).

    Labels are drawn from ``1..num_foreground``; past 20 classes the looks repeat (class ``c``
    looks like class ``(c - 1) % 20 + 1``), so such classes are told apart by nothing.
    """
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    scale = min(height, width)
    base = rng.uniform(80, 180)
    image = (
        base
        + rng.uniform(-20, 20, size=3)
        + 40.0 * smooth_noise(rng, height, width, 4, channels=1)
        + 12.0 * smooth_noise(rng, height, width, 4, channels=3)
    )
    for _ in range(int(rng.integers(0, 4))):  # low-contrast clutter: shapes that are no class
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        r = rng.uniform(0.05, 0.15) * scale
        clutter = shape_mask(str(rng.choice(SHAPES)), (xx - cx) / r, (yy - cy) / r)
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
            label = label if label <= num_foreground else objects[0][0]
        else:
            label = int(rng.integers(1, num_foreground + 1))
        style = _REALISTIC[(label - 1) % NUM_FOREGROUND + 1]
        radius_x = float(np.exp(rng.uniform(np.log(0.09), np.log(0.34)))) * scale
        radius_y = radius_x * rng.uniform(0.7, 1.3)
        cx, cy = rng.uniform(0.05, 0.95) * width, rng.uniform(0.05, 0.95) * height
        angle = rng.uniform(-np.pi, np.pi)
        u, v = object_coordinates(xx, yy, (cx, cy), angle, radii=(radius_x, radius_y))
        inside = shape_mask(style.shape, u, v)
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
        saliency, blur = _poor_saliency(rng, saliency, instance, yy, xx=xx)
    else:
        saliency = grow_or_shrink(rng, saliency, max(1, scale // 96))
    saliency = add_blob(rng, saliency, yy, xx, chance=0.25, strength=(0.4, 0.9))  # a false-positive blob
    saliency = cv2.GaussianBlur(saliency.astype(np.float32), (0, 0), blur * max(0.6, 0.012 * scale))
    saliency = saliency + 0.04 * smooth_noise(rng, height, width, 6, channels=1)[..., 0]
    saliency_u8 = np.clip(saliency * 255.0, 0, 255).astype(np.uint8)
    return SyntheticSample(image=image_u8, labels=labels, saliency=saliency_u8, objects=objects)
