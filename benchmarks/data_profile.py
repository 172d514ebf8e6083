"""What makes a VOC-format weakly supervised set hard, measured: saliency quality, class mix,
object sizes, look-alike classes and (with proxies) their quality and class errors.

    python benchmarks/data_profile.py ROOT [--saliency DIR] [--proxies DIR] [--split train]

Compare the built-in synthetic data (``sal-lightning data synth``) with another set, e.g. the
profile that the README of an independent benchmark (such as ``voclike-s11``) gives. Every figure is
computed on the pixels whose ``SegmentationClass`` value is not 255:

- saliency F-measure: ``2|G∩S| / (|G| + |S|)`` between the ground-truth foreground G and the
  saliency map S thresholded at 128, and at twice the map's mean (the adaptive threshold of
  saliency benchmarks): median and share below 0.6; the share of small objects (under 5% of the
  image) of which less than 30% is salient;
- true AC of the proxies: the same F-measure between G and the proxy foreground;
- class error: the proxy holds a class that is not among the image's tags, or labels most of an
  object with another foreground class.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from sal_lightning.data.io import read_gray_png, read_image, read_label_png
from sal_lightning.data.layout import find_gt_mask, read_split, resolve_voc_root


def f_measure(a: np.ndarray, b: np.ndarray) -> float:
    """``2|A∩B| / (|A| + |B|)`` of two boolean masks (1.0 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * float((a & b).sum()) / total


def colour_confusion(root: Path, ids: list[str]) -> float:
    """Accuracy of a nearest-class-mean colour classifier on whole objects (half the ids fit it,
    half test it): how far colour alone identifies a class."""
    feats: dict[int, list[np.ndarray]] = {}
    rows = []
    for n, image_id in enumerate(ids):
        image = read_image(root / "JPEGImages" / f"{image_id}.jpg").astype(np.float32)
        gt = read_label_png(find_gt_mask(root, image_id))
        for label in set(np.unique(gt).tolist()) - {0, 255}:
            median = np.median(image[gt == label], axis=0)
            (feats.setdefault(label, []) if n % 2 == 0 else rows).append(
                median if n % 2 == 0 else (label, median)
            )
    if not feats or not rows:
        return float("nan")
    labels = sorted(feats)
    centres = np.array([np.mean(feats[c], axis=0) for c in labels])
    hits = [labels[int(np.argmin(((centres - m) ** 2).sum(1)))] == label for label, m in rows]
    return float(np.mean(hits))


def profile(root: Path, split: str, saliency: Path | None, proxies: Path | None) -> dict[str, float]:
    root = resolve_voc_root(root)
    ids = read_split(root, split)
    sal_f, sal_adaptive, small_missed, small_total, classes_per_image, object_share = [], [], 0, 0, [], []
    true_ac, class_error = [], []
    for image_id in ids:
        gt = read_label_png(find_gt_mask(root, image_id))
        valid = gt != 255
        fg = (gt > 0) & valid
        tags = set(np.unique(gt[valid]).tolist()) - {0}
        classes_per_image.append(len(tags))
        objects, count = ndimage.label(fg)
        for k in range(1, count + 1):
            object_share.append(float((objects == k).mean()))
        if saliency is not None:
            values = read_gray_png(saliency / f"{image_id}.png").astype(np.float64)
            sal = values >= 128
            sal_f.append(f_measure(fg[valid], sal[valid]))
            adaptive = values >= min(2.0 * values[valid].mean(), 255.0)
            sal_adaptive.append(f_measure(fg[valid], adaptive[valid]))
            for k in range(1, count + 1):
                obj = objects == k
                if obj.mean() < 0.05:  # a small object: under 5% of the image
                    small_total += 1
                    small_missed += int((sal & obj).sum() < 0.3 * obj.sum())
        if proxies is not None:
            proxy = read_label_png(proxies / f"{image_id}.png")
            true_ac.append(f_measure(fg[valid], (proxy > 0)[valid]))
            wrong = bool(set(np.unique(proxy[valid]).tolist()) - {0, 255} - tags)
            for label in tags:  # most of a class's region labelled with another foreground class
                region = (gt == label) & valid
                other = (proxy[region] > 0) & (proxy[region] != label) & (proxy[region] != 255)
                wrong |= bool(other.mean() > 0.5) if region.any() else False
            class_error.append(wrong)
    out: dict[str, float] = {
        "images": len(ids),
        "one_class_share": float(np.mean(np.array(classes_per_image) == 1)),
        "object_share_median": float(np.median(object_share)) if object_share else float("nan"),
        "colour_only_accuracy": colour_confusion(root, ids),
    }
    if sal_f:
        out |= {
            "saliency_f_median": float(np.median(sal_f)),
            "saliency_f_below_0.6": float(np.mean(np.array(sal_f) < 0.6)),
            "saliency_f_adaptive_median": float(np.median(sal_adaptive)),
            "saliency_f_adaptive_below_0.6": float(np.mean(np.array(sal_adaptive) < 0.6)),
            "small_objects_missed": small_missed / small_total if small_total else float("nan"),
            "small_objects": small_total,
        }
    if true_ac:
        out |= {"true_ac_median": float(np.median(true_ac)), "class_error_share": float(np.mean(class_error))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="VOC root")
    parser.add_argument("--split", default="train", help="split to profile")
    parser.add_argument("--saliency", type=Path, default=None, help="saliency PNG folder")
    parser.add_argument("--proxies", type=Path, default=None, help="proxy PNG folder")
    args = parser.parse_args()
    result = profile(args.root, args.split, args.saliency, args.proxies)
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}, indent=2))


if __name__ == "__main__":
    main()
