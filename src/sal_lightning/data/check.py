"""Check a VOC-format root before a long run: every list, file, size and label value.

The label values are checked against the root's class list: ``0..C`` and 255, with ``C`` the
foreground classes of its ``classes.txt`` (background first), VOC's 20 without one.
"""

from __future__ import annotations

from collections.abc import Sequence

from tqdm import tqdm

from sal_lightning.data.io import PathLike, read_gray_png, read_image, read_label_png
from sal_lightning.data.layout import SPLIT_NAMES, resolve_voc_root, root_classes, split_path


def check_root(
    root: PathLike,
    split: str | Sequence[str] | None = None,
    proxies: PathLike | None = None,
    saliency: PathLike | None = None,
) -> dict[str, int]:
    """Build each split's dataset and decode every image, mask, proxy and saliency map of it (a
    truncated JPEG fails here, not in the middle of a pipeline); returns ``{split: images}``.

    The class file (``classes.txt``) is read and validated first, and the tags (XML names,
    ``cls_labels.npy`` entries) must fit it.

    Args:
        root: the VOC root (or a ``VOCdevkit`` parent).
        split: a split name or list file, or several; ``None``: every split list present.
        proxies: also check this folder of proxy PNGs (one per id).
        saliency: also check this folder of saliency PNGs (one per id).
    """
    voc = resolve_voc_root(root)
    classes = root_classes(voc)
    from sal_lightning.data.datasets import VOCDataset  # torch: once the root is known to exist

    if split is None:
        splits = [s for s in SPLIT_NAMES if s != "test" and split_path(voc, s).is_file()]
    else:
        splits = [split] if isinstance(split, str) else list(split)
    if not splits:
        raise FileNotFoundError(f"{voc / 'ImageSets' / 'Segmentation'}: no split lists found")
    counts: dict[str, int] = {}
    for name in splits:
        dataset = VOCDataset(voc, name, proxies=proxies, saliency=saliency, classes=classes)
        for source in tqdm(dataset.samples, desc=f"checking {name}", unit="img"):
            read_image(source.image)  # decodes every pixel
            for mask in {source.mask, source.tags_mask} - {None}:
                read_label_png(mask, dataset.num_classes)  # raises on values outside 0..C / 255
            if source.saliency is not None:
                read_gray_png(source.saliency)
        counts[name] = len(dataset)
    return counts
