"""The PASCAL VOC folder layout: the root, split lists, file paths by id, and image tags.

A VOC root is the folder holding ``JPEGImages/`` (``VOCdevkit/VOC2012``); a ``VOCdevkit`` folder
(``VOC2012/`` inside) or its parent is accepted too. Image tags (multi-hot float32 ``[C]``, C the
foreground classes of the root's ``classes.txt``, VOC's 20 without one) come from, in the
``"auto"`` order: ``Annotations/<id>.xml`` (the name of every ``<object>``), a ``cls_labels.npy``
dict as PSA/IRN ship it, SBD's ``cls/<id>.mat`` files, or the ground-truth mask.
"""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from sal_lightning._atomic import atomic_path
from sal_lightning.data.classes import CLASSES_FILE, DEFAULT_CLASSES, read_classes
from sal_lightning.data.io import PathLike, check_image_id, check_unique_ids, read_id_list, write_id_list
from sal_lightning.data.voc import NUM_FOREGROUND, tags_from_labels

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "train_aug", "test", "trainval")
"""Split names looked up as ``ImageSets/Segmentation/<name>.txt``; anything else is a list file path."""

GT_DIRS: tuple[str, ...] = ("SegmentationClass", "SegmentationClassAug")
"""Ground-truth folders searched, in order, for ``<id>.png``."""

TagsSource = Literal["auto", "xml", "cls_labels", "sbd", "mask"]


def resolve_voc_root(root: PathLike) -> Path:
    """The folder holding ``JPEGImages/`` among ``root``, ``root/VOC2012``, ``root/VOCdevkit/VOC2012``."""
    root = Path(root).expanduser()
    candidates = [root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"]
    for candidate in candidates:
        if (candidate / "JPEGImages").is_dir():
            return candidate
    tried = ", ".join(str(c / "JPEGImages") for c in candidates)
    raise FileNotFoundError(
        f"root {root}: not a VOC root (no JPEGImages/ folder; tried {tried}). Point root at "
        "VOCdevkit/VOC2012, download with VOCSegmentationDataModule(download=True) or "
        "`sal-lightning data download`, or write a synthetic one with `sal-lightning data synth`."
    )


def root_classes(root: PathLike) -> tuple[str, ...]:
    """The class list of a VOC-layout root: its ``classes.txt`` when present, else VOC's 21 names.

    ``root`` is the folder holding ``JPEGImages/`` (a ``VOCdevkit`` parent is accepted, as for
    every reader of the data layer).
    """
    path = resolve_voc_root(root) / CLASSES_FILE
    return read_classes(path) if path.is_file() else DEFAULT_CLASSES


def split_path(root: Path, split: PathLike) -> Path:
    """The id-list file of a split name (``ImageSets/Segmentation/<name>.txt``) or a list file path."""
    text = os.fspath(split)
    if text in SPLIT_NAMES:
        return root / "ImageSets" / "Segmentation" / f"{text}.txt"
    return Path(text).expanduser()


def read_split(root: Path, split: PathLike) -> list[str]:
    """Ids of a split (by name or list path); a missing ``train_aug`` list says how to make one."""
    path = split_path(root, split)
    if not path.is_file():
        if os.fspath(split) == "train_aug":
            raise FileNotFoundError(
                f"{path}: the train_aug list is missing. It is not part of the VOC2012 tar: with "
                "SegmentationClassAug/ in place run `sal-lightning data train-aug --root "
                f"{root}` (ids with a SegmentationClassAug PNG minus val, 10,582 for the standard "
                "release), or give train_split as the path of your own list file."
            )
        raise FileNotFoundError(f"{path}: split list {os.fspath(split)!r} not found")
    return read_id_list(path)


def resolve_ids(
    root: PathLike, split: PathLike | Sequence[str] | None, folder: PathLike | None = None
) -> list[str]:
    """Image ids from a list of ids, a split name or list file of the VOC root, or (``None``) every
    ``<id>.png`` in ``folder`` (sorted; a folder of proxies or pseudo-labels)."""
    if split is None:
        if folder is None:
            raise ValueError("split: give ids, a split, or a folder of PNGs to take them from")
        path = Path(folder)
        if not path.is_dir():
            raise FileNotFoundError(f"proxies: folder {path} not found")
        found = sorted(p.stem for p in path.glob("*.png") if not p.name.startswith("."))
        if not found:
            raise FileNotFoundError(f"{path}: no PNGs found")
        return check_unique_ids(found, str(path))
    if isinstance(split, str | os.PathLike):
        return read_split(resolve_voc_root(root), split)
    return check_unique_ids(list(split), "split")


def make_train_aug_list(root: PathLike, exclude_split: str = "val") -> list[str]:
    """Write ``ImageSets/Segmentation/train_aug.txt``: ids with a ``SegmentationClassAug`` PNG minus ``val``.

    With the standard SegmentationClassAug release (12,031 PNGs) this gives the 10,582 train_aug ids.
    Returns the ids (sorted).

    Args:
        root: the VOC root (or a ``VOCdevkit`` parent) holding ``SegmentationClassAug/``.
        exclude_split: the split whose ids are left out (the evaluation split).
    """
    voc = resolve_voc_root(root)
    aug = voc / "SegmentationClassAug"
    if not aug.is_dir():
        raise FileNotFoundError(
            f"{aug}: SegmentationClassAug folder not found (extract SegmentationClassAug.zip here)"
        )
    excluded = set(read_split(voc, exclude_split))
    ids = sorted(p.stem for p in aug.glob("*.png") if p.stem not in excluded and not p.stem.startswith("."))
    if not ids:
        raise ValueError(f"{aug}: no PNGs outside the {exclude_split!r} split")
    write_id_list(split_path(voc, "train_aug"), ids)
    return ids


def missing_files(paths: Iterable[Path]) -> list[Path]:
    """The paths that are not existing files."""
    return [p for p in paths if not p.is_file()]


def raise_if_missing(paths: Sequence[Path], what: str, where: PathLike) -> None:
    """``FileNotFoundError`` naming how many of ``paths`` are missing and the first few."""
    missing = missing_files(paths)
    if missing:
        shown = ", ".join(p.name for p in missing[:5])
        raise FileNotFoundError(
            f"{where}: {len(missing)} of {len(paths)} {what} missing, e.g. {shown}"
            f"{' ...' if len(missing) > 5 else ''}"
        )


def find_gt_mask(root: Path, image_id: str, gt_dirs: Sequence[str] = GT_DIRS) -> Path | None:
    """The first ``<gt_dir>/<id>.png`` that exists under the root, or None."""
    for folder in gt_dirs:
        path = root / folder / f"{image_id}.png"
        if path.is_file():
            return path
    return None


def read_xml_tags(path: PathLike, classes: Sequence[str] = DEFAULT_CLASSES) -> np.ndarray:
    """Tags float32 ``[C]`` from a VOC annotation: every ``<object>``'s name (difficult ones included).

    ``classes`` is the class list, background first (VOC's 21 by default; ``C = len(classes) - 1``);
    a name outside it raises a ``ValueError`` naming the file and the class file.
    """
    try:
        tree = ET.parse(path)
    except ET.ParseError as error:
        raise ValueError(f"{path}: cannot parse VOC annotation XML ({error})") from error
    index = {name: k for k, name in enumerate(classes) if k > 0}
    tags = np.zeros(len(classes) - 1, dtype=np.float32)
    for obj in tree.getroot().iter("object"):
        name = obj.findtext("name")
        if name is None:
            raise ValueError(f"{path}: <object> without <name>")
        label = index.get(name.strip())
        if label is None:
            raise ValueError(
                f"{path}: unknown class name {name!r}; expected one of {', '.join(classes[1:])} "
                f"(the root's {CLASSES_FILE}, or VOC's classes without one)"
            )
        tags[label - 1] = 1.0
    return tags


def _cls_key(key: object) -> str:
    """PSA/IRN keys: ``"2007_000032"`` as is, ``2007000032`` (int) -> ``"2007_000032"``."""
    if isinstance(key, (int, np.integer)):
        text = str(int(key))
        return f"{text[:4]}_{text[4:]}" if len(text) == 10 else text
    if isinstance(key, bytes):
        return key.decode()
    return str(key)


def load_cls_labels(path: PathLike, num_tags: int = NUM_FOREGROUND) -> dict[str, np.ndarray]:
    """Read a ``cls_labels.npy`` (a pickled dict id -> float [C]) into id -> float32 [C].

    ``C = num_tags``: VOC's 20 by default. Integer keys (``2007000032``) become VOC ids
    (``2007_000032``). The file is a pickle: load only files you trust.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: cls_labels file not found")
    try:
        raw = np.load(path, allow_pickle=True).item()
    except (ValueError, OSError) as error:
        raise ValueError(f"{path}: expected a pickled dict id -> float[{num_tags}] ({error})") from error
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path}: expected a dict id -> float[{num_tags}], got {type(raw).__name__}")
    out: dict[str, np.ndarray] = {}
    for key, value in raw.items():
        tags = np.asarray(value, dtype=np.float32).reshape(-1)
        if tags.shape != (num_tags,) or not np.isin(tags, (0.0, 1.0)).all():
            raise ValueError(
                f"{path}: entry {key!r} must be {num_tags} values in {{0, 1}} (one per foreground class "
                f"of the root's {CLASSES_FILE}, VOC's 20 without one), got {len(tags)} values"
            )
        out[_cls_key(key)] = tags
    return out


def write_cls_labels(path: PathLike, tags: Mapping[str, np.ndarray], num_tags: int) -> None:
    """Merge ``tags`` (id -> float32 [C]) into the ``cls_labels.npy`` at ``path`` (made if missing).

    Atomic; the file is rewritten only when its table changes.
    """
    old = load_cls_labels(path, num_tags) if Path(path).is_file() else {}
    table = {**old, **tags}
    if old and old.keys() == table.keys() and all(np.array_equal(old[k], table[k]) for k in old):
        return
    with atomic_path(Path(path)) as tmp:
        np.save(tmp, np.array(table, dtype=object), allow_pickle=True)


def _sbd_struct(path: PathLike) -> object:
    from scipy.io import loadmat

    try:
        mat = loadmat(os.fspath(path), squeeze_me=True, struct_as_record=False)
    except (ValueError, OSError, NotImplementedError) as error:
        raise ValueError(f"{path}: cannot read SBD .mat file ({error})") from error
    if "GTcls" not in mat:
        raise ValueError(f"{path}: expected an SBD cls file with a 'GTcls' struct, found {sorted(mat)}")
    return mat["GTcls"]


def read_sbd_segmentation(path: PathLike) -> np.ndarray:
    """Class label map uint8 [H, W] (0..20) from SBD's ``cls/<id>.mat`` (``GTcls.Segmentation``)."""
    labels = np.asarray(_sbd_struct(path).Segmentation)  # type: ignore[attr-defined]
    if labels.ndim != 2 or labels.size == 0 or labels.min() < 0 or labels.max() > NUM_FOREGROUND:
        raise ValueError(f"{path}: GTcls.Segmentation must be a 2-D map of 0..20, got shape {labels.shape}")
    return labels.astype(np.uint8)


def read_sbd_tags(path: PathLike) -> np.ndarray:
    """Tags float32 [20] from SBD's ``cls/<id>.mat``: ``GTcls.CategoriesPresent`` (1-based classes),
    or the classes in ``GTcls.Segmentation`` when that field is absent."""
    gt = _sbd_struct(path)
    present = getattr(gt, "CategoriesPresent", None)
    if present is None:
        return tags_from_labels(read_sbd_segmentation(path))
    classes = np.atleast_1d(np.asarray(present, dtype=np.int64)).reshape(-1)
    if classes.size and (classes.min() < 1 or classes.max() > NUM_FOREGROUND):
        raise ValueError(f"{path}: CategoriesPresent must hold classes 1..20, got {classes.tolist()}")
    tags = np.zeros(NUM_FOREGROUND, dtype=np.float32)
    tags[classes - 1] = 1.0
    return tags


def resolve_tags(
    root: Path,
    ids: Sequence[str],
    source: TagsSource = "auto",
    cls_labels: PathLike | None = None,
    sbd_dir: PathLike | None = None,
    classes: Sequence[str] | None = None,
) -> dict[str, np.ndarray | None]:
    """Tags of every id: float32 ``[C]``, or None where they are to be read from the mask.

    ``classes``: the class list, background first (default: the root's ``classes.txt``, else
    VOC's); ``C = len(classes) - 1``. SBD's files hold VOC's 20 classes only.

    source ``"auto"`` takes, per id, the first available of: ``Annotations/<id>.xml``; the
    ``cls_labels`` file (default ``<root>/cls_labels.npy`` when it exists); ``<sbd_dir>/cls/<id>.mat``
    (``sbd_dir`` may be SBD's ``dataset`` folder or its ``cls`` folder); the mask (None: a one-line
    notice on stderr says so, once per root). A named source must cover every id, else
    ``FileNotFoundError``/``ValueError`` says how many are missing.
    """
    for image_id in ids:
        check_image_id(image_id)
    classes = root_classes(root) if classes is None else tuple(classes)
    num_tags = len(classes) - 1
    if sbd_dir is not None and num_tags != NUM_FOREGROUND:
        raise ValueError(
            f"sbd_dir: SBD's files hold VOC's 20 classes, but {root} lists {num_tags} in {CLASSES_FILE}"
        )
    if cls_labels is None and (root / "cls_labels.npy").is_file() and source in ("auto", "cls_labels"):
        cls_labels = root / "cls_labels.npy"
    use_table = cls_labels is not None and source in ("auto", "cls_labels")
    table = load_cls_labels(cls_labels, num_tags) if use_table else {}  # type: ignore[arg-type]
    sbd_cls: Path | None = None
    if sbd_dir is not None:
        sbd_cls = Path(sbd_dir) / "cls" if (Path(sbd_dir) / "cls").is_dir() else Path(sbd_dir)
        if not sbd_cls.is_dir():
            raise FileNotFoundError(
                f"sbd_dir {sbd_dir}: folder not found (expected SBD's dataset/ or dataset/cls/)"
            )

    if source == "xml":
        paths = [root / "Annotations" / f"{i}.xml" for i in ids]
        raise_if_missing(paths, "annotation XML files", root / "Annotations")
        return {i: read_xml_tags(p, classes) for i, p in zip(ids, paths, strict=True)}
    if source == "cls_labels":
        if cls_labels is None:
            raise FileNotFoundError(
                f"{root / 'cls_labels.npy'}: tags_source='cls_labels' needs a cls_labels file"
            )
        absent = [i for i in ids if i not in table]
        if absent:
            raise ValueError(
                f"{cls_labels}: {len(absent)} of {len(ids)} ids have no entry, e.g. {absent[:5]}"
            )
        return {i: table[i] for i in ids}
    if source == "sbd":
        if sbd_cls is None:
            raise FileNotFoundError("tags_source='sbd' needs sbd_dir (SBD's dataset/ folder holding cls/)")
        paths = [sbd_cls / f"{i}.mat" for i in ids]
        raise_if_missing(paths, "SBD cls .mat files", sbd_cls)
        return {i: read_sbd_tags(p) for i, p in zip(ids, paths, strict=True)}
    if source == "mask":
        return dict.fromkeys(ids)
    if source != "auto":
        raise ValueError(f"tags_source must be one of auto, xml, cls_labels, sbd, mask; got {source!r}")

    out: dict[str, np.ndarray | None] = {}
    for image_id in ids:
        xml = root / "Annotations" / f"{image_id}.xml"
        if xml.is_file():
            out[image_id] = read_xml_tags(xml, classes)
        elif image_id in table:
            out[image_id] = table[image_id]
        elif sbd_cls is not None and (sbd_cls / f"{image_id}.mat").is_file():
            out[image_id] = read_sbd_tags(sbd_cls / f"{image_id}.mat")
        else:
            out[image_id] = None
    fallback = sum(v is None for v in out.values())
    if fallback:
        note_mask_tags(root, fallback, len(out))
    return out


_NOTED: set[str] = set()


def note_mask_tags(root: Path, count: int, total: int) -> None:
    """Say once per root and process, in one line on stderr, that tags come from the ground-truth
    masks (no XML, ``cls_labels`` or SBD file): the image-level labels are then read off the
    pixel labels, which a weakly supervised run must know."""
    if str(root) in _NOTED:
        return
    _NOTED.add(str(root))
    print(
        f"notice: tags of {count} of {total} images of {root} come from the ground-truth masks "
        "(no Annotations XML, cls_labels.npy entry or SBD file for them)",
        file=sys.stderr,
        flush=True,
    )
