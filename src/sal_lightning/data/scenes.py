"""Synthetic scenes: shapes, textures, the ``"clean"`` data's classes and scenes, and what the scenes of
both difficulties share (see :mod:`sal_lightning.data.synthetic`)."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import cv2
import numpy as np

from sal_lightning.data.voc import NUM_FOREGROUND

SHAPES: tuple[str, ...] = ("ellipse", "rectangle", "triangle", "diamond", "cross")
TEXTURES: tuple[str, ...] = ("plain", "stripes", "checker", "dots")


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


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
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


def smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int, channels: int) -> np.ndarray:
    """Smooth random field float32 [H, W, C] in about [-1, 1] (bicubic upsampling of a coarse grid)."""
    coarse = rng.uniform(-1.0, 1.0, size=(cells, cells, channels)).astype(np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return field.reshape(height, width, channels)


def object_coordinates(
    xx: np.ndarray, yy: np.ndarray, centre: tuple[float, float], angle: float, radii: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's coordinates ``(u, v)`` in an object's frame: centred, rotated by ``angle``, in
    units of its radii (the object is where ``shape_mask(shape, u, v)``)."""
    cos, sin = np.cos(angle), np.sin(angle)
    dx, dy = xx - centre[0], yy - centre[1]
    return (dx * cos + dy * sin) / radii[0], (-dx * sin + dy * cos) / radii[1]


def add_blob(
    rng: np.random.Generator,
    saliency: np.ndarray,
    yy: np.ndarray,
    xx: np.ndarray,
    chance: float,
    strength: tuple[float, float],
) -> np.ndarray:
    """``saliency`` with, at probability ``chance``, a Gaussian blob somewhere (a false positive)."""
    if rng.random() < chance:
        height, width = saliency.shape
        by, bx = rng.uniform(0, height), rng.uniform(0, width)
        radius = rng.uniform(0.06, 0.16) * min(height, width)
        blob = np.exp(-((yy - by) ** 2 + (xx - bx) ** 2) / (2 * radius * radius))
        saliency = np.maximum(saliency, rng.uniform(*strength) * blob)
    return saliency


def grow_or_shrink(rng: np.random.Generator, saliency: np.ndarray, step: int) -> np.ndarray:
    """``saliency`` dilated, eroded (by ``step`` pixels) or left as it is, at random."""
    grow = int(rng.integers(-1, 2)) * step
    if not grow:
        return saliency
    kernel = np.ones((2 * abs(grow) + 1, 2 * abs(grow) + 1), np.uint8)
    return (cv2.dilate if grow > 0 else cv2.erode)(saliency, kernel)


@dataclass
class SyntheticSample:
    """One generated sample: image uint8 [H, W, 3], labels uint8 [H, W] (no void), saliency uint8 [H, W],
    objects as (label, (xmin, ymin, xmax, ymax)) in VOC's 1-based inclusive pixel coordinates."""

    image: np.ndarray
    labels: np.ndarray
    saliency: np.ndarray
    objects: list[tuple[int, tuple[int, int, int, int]]]


def make_sample(
    rng: np.random.Generator, height: int, width: int, num_foreground: int = NUM_FOREGROUND
) -> SyntheticSample:
    """Draw one synthetic image with its label map, saliency map and object list.

    Labels are drawn from ``1..num_foreground``; past 20 classes the looks repeat.
    """
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(70, 190)
    tint = rng.uniform(-18, 18, size=3)
    image = (
        base
        + tint
        + 45.0 * smooth_noise(rng, height, width, 4, channels=1)
        + 12.0 * smooth_noise(rng, height, width, 4, channels=3)
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
        label = objects[-1][0] if repeat else int(rng.integers(1, num_foreground + 1))
        style = _STYLES[(label - 1) % NUM_FOREGROUND + 1]
        radius_x = rng.uniform(0.14, 0.32) * scale
        radius_y = radius_x * rng.uniform(0.7, 1.3)
        cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height
        angle = rng.uniform(-0.6, 0.6)
        u, v = object_coordinates(xx, yy, (cx, cy), angle, radii=(radius_x, radius_y))
        inside = shape_mask(style.shape, u, v)
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
    saliency = grow_or_shrink(rng, saliency, max(1, scale // 48))
    saliency = add_blob(rng, saliency, yy, xx, chance=0.35, strength=(0.3, 0.8))  # a false-positive blob
    sigma = max(0.8, 0.025 * scale)
    saliency = cv2.GaussianBlur(saliency, (0, 0), sigma)
    saliency = saliency + 0.04 * smooth_noise(rng, height, width, 6, channels=1)[..., 0]
    saliency_u8 = np.clip(saliency * 255.0, 0, 255).astype(np.uint8)
    return SyntheticSample(image=image_u8, labels=labels, saliency=saliency_u8, objects=objects)
