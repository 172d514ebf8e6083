"""The mask scorer's training set, synthesised from the proxies themselves (SAL-Net Sec. III-B2).

No image in a weakly supervised setting has a true quality label, so the scorer learns from masks
whose quality the reference masks can vouch for. With ``AC`` the boundary accuracy of a proxy
against its reference mask (Eq. 3), four kinds of (image, binary mask, target) samples are made,
in the paper's proportions on VOC (about 4k : 1k : 3k : 2k of 10k samples for 10.5k images):

``positive``
    every proxy with ``AC >= positive_threshold`` (0.8), target = its AC;
``negative``
    every proxy with ``AC <= negative_threshold`` (0.3), target = its AC;
``degraded``
    copies of positive masks, eroded or partly erased (a random half-plane cut; ``"dilate"`` is
    an option beyond the paper), kept when their AC, recomputed against the same reference, falls
    in the middle range between the two thresholds (target = the recomputed AC);
    ``degraded_share * samples_per_image * images`` of them (paper: 0.3 x 1 x 10.5k, about 3k);
``cutpaste``
    multi-object composites: the foreground of a proxy with ``AC >= donor_threshold`` (0.9) is cut
    out of its image (pixels and mask) and pasted on the *background region* of another image
    whose proxy has ``AC >= receiver_threshold`` (0.3): of ``max_tries`` random places the one
    that covers the least of the receiver's foreground. The composite mask is the receiver's
    foreground plus the pasted shape; the composite reference is the receiver's reference with the
    pasted area replaced by the donor's; target = the AC of the composite mask against it.
    ``cutpaste_share * samples_per_image * images`` of them (paper: about 2k).

Proxies in the open middle range are left out, as in the paper: their reference may be the
unreliable part. ``samples_per_image`` scales the synthesised kinds (on a few hundred images the
paper's one sample per image gives a few hundred samples; synthesising more is cheap). Everything
is drawn from one ``numpy`` generator seeded by ``seed``, so a given input and configuration
always give the same samples. Samples are :class:`ScorerSample` objects;
:func:`sal_lightning.stages.trainset.build_scorer_training_set` reads the proxies from a VOC root
and writes the samples as a sample folder (:mod:`sal_lightning.data.scorer_data`) that
:class:`~sal_lightning.data.datamodules.MaskScorerDataModule` trains on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal, Protocol

import cv2
import numpy as np
from scipy import ndimage
from tqdm import tqdm

Degradation = Literal["erode", "dilate", "erase"]
DEGRADATIONS: tuple[Degradation, ...] = ("erode", "dilate", "erase")


@dataclass(frozen=True)
class SynthesisSettings:
    """Thresholds, shares and strengths of the scorer's training-set synthesis (module docstring).

    Attributes:
        positive_threshold: the AC from which a proxy is a positive sample (>=).
        negative_threshold: the AC up to which a proxy is a negative sample (<=).
        donor_threshold: the AC from which a proxy gives its objects to cut-paste samples (>=).
        receiver_threshold: the AC from which a proxy receives pasted objects (>=).
        samples_per_image: scales the number of synthesised samples (1: the paper's ~10k samples
            for VOC's 10.5k images).
        degraded_share: degraded samples per image and per unit of ``samples_per_image`` (paper:
            0.3).
        cutpaste_share: cut-paste samples per image and per unit of ``samples_per_image`` (paper:
            0.2).
        degradations: the ways a positive mask is degraded: ``"erode"`` and ``"erase"`` (the
            paper's), ``"dilate"`` (an option).
        max_tries: draws per degraded sample before giving up on landing in the middle range, and
            places tried per cut-paste sample.
        radius_range: erosion / dilation radius as a fraction of ``sqrt(mask area)``.
        erase_range: fraction of the mask's pixels removed by a partial erase.
        scale_range: donor rescaling before pasting (it is also shrunk to fit the receiver).
        seed: seed of the generator.

    The AC of a degraded or composite mask is computed by the record source
    (:meth:`RecordSource.accuracy`), with the settings of the coarse scores.
    """

    positive_threshold: float = 0.8
    negative_threshold: float = 0.3
    donor_threshold: float = 0.9
    receiver_threshold: float = 0.3
    samples_per_image: float = 1.0
    degraded_share: float = 0.3
    cutpaste_share: float = 0.2
    degradations: tuple[Degradation, ...] = ("erode", "erase")
    max_tries: int = 6
    radius_range: tuple[float, float] = (0.05, 0.35)
    erase_range: tuple[float, float] = (0.2, 0.7)
    scale_range: tuple[float, float] = (0.6, 1.0)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("positive_threshold", "negative_threshold", "donor_threshold", "receiver_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: expected a value in [0, 1], got {getattr(self, name)}")
        if self.negative_threshold >= self.positive_threshold:
            raise ValueError(
                f"negative_threshold ({self.negative_threshold}) must be below "
                f"positive_threshold ({self.positive_threshold})"
            )
        for name in ("samples_per_image", "degraded_share", "cutpaste_share"):
            if not getattr(self, name) >= 0:  # NaN fails too
                raise ValueError(f"{name}: expected a number >= 0, got {getattr(self, name)}")
        unknown = [d for d in self.degradations if d not in DEGRADATIONS]
        if unknown or not self.degradations:
            raise ValueError(f"degradations: expected some of {DEGRADATIONS}, got {self.degradations}")
        for name in ("radius_range", "erase_range", "scale_range"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name}: expected 0 < low <= high, got {(lo, hi)}")
        if isinstance(self.max_tries, bool) or not isinstance(self.max_tries, int) or self.max_tries < 1:
            raise ValueError(f"max_tries: expected an integer >= 1, got {self.max_tries}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed: expected an integer >= 0, got {self.seed!r}")

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly view (stored beside the samples)."""
        return asdict(self)


@dataclass
class ScorerSample:
    """One scorer sample: image uint8 [H, W, 3], mask bool [H, W], target quality in [0, 1]."""

    sample_id: str
    image: np.ndarray
    mask: np.ndarray
    target: float
    image_id: str = ""
    kind: str = ""


@dataclass
class ProxyRecord:
    """One proxy: image uint8 ``[H, W, 3]``, foreground and reference bool ``[H, W]``, and its AC."""

    image_id: str
    image: np.ndarray
    foreground: np.ndarray
    reference: np.ndarray
    ac: float


class RecordSource(Protocol):
    """Where :func:`synthesize_samples` reads proxies from (e.g.
    :class:`~sal_lightning.stages.trainset.ProxySource`, which reads a VOC root and two folders).

    ``ac`` holds AC values already known (the rest are computed by :meth:`load` and added to it);
    ``check`` raises naming what is missing for ``ids``; ``accuracy`` is the AC (Eq. 3) of a mask
    (bool ``[H, W]``) against a reference (bool ``[H, W]``) on an image (uint8 ``[H, W, 3]``).
    """

    ac: dict[str, float]

    def check(self, ids: Sequence[str]) -> None: ...

    def load(self, image_id: str) -> ProxyRecord: ...

    def accuracy(self, image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float: ...


def _disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius * radius


def degrade_mask(mask: np.ndarray, op: Degradation, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A degraded copy of a bool ``[H, W]`` mask.

    ``"erode"`` / ``"dilate"``: by a disk of radius ``strength * sqrt(area)`` (at least 1 pixel);
    ``"erase"``: removes the ``strength`` fraction of the mask's pixels on one side of a line of
    random direction. Returns bool ``[H, W]``.
    """
    if op in ("erode", "dilate"):
        radius = max(1, round(strength * float(np.sqrt(mask.sum()))))
        fn = ndimage.binary_erosion if op == "erode" else ndimage.binary_dilation
        return np.asarray(fn(mask, structure=_disk(radius)))
    if op == "erase":
        ys, xs = np.nonzero(mask)
        if len(ys) == 0:
            return mask.copy()
        theta = rng.uniform(0.0, 2.0 * np.pi)
        proj = ys * np.sin(theta) + xs * np.cos(theta)
        cut = np.quantile(proj, float(np.clip(strength, 0.0, 1.0)))
        out = mask.copy()
        out[ys[proj < cut], xs[proj < cut]] = False
        return out
    raise ValueError(f"op: expected one of {DEGRADATIONS}, got {op!r}")


@dataclass
class Composite:
    """A cut-paste result: image uint8 ``[H, W, 3]``; mask, reference and pasted bool ``[H, W]``."""

    image: np.ndarray
    mask: np.ndarray
    reference: np.ndarray
    pasted: np.ndarray


def cut_paste(donor: ProxyRecord, receiver: ProxyRecord, scale: float, top: int, left: int) -> Composite:
    """Paste the donor's foreground (pixels, shape and reference) onto the receiver's image.

    The donor's foreground bounding box is rescaled by ``scale`` (image bilinear, masks nearest)
    and its top-left corner placed at ``(top, left)`` of the receiver; it must fit inside. Pixels
    of the pasted shape take the donor's colours; the mask is ``receiver foreground | pasted``;
    the reference is the receiver's outside the pasted shape and the donor's inside it.
    """
    ys, xs = np.nonzero(donor.foreground)
    if len(ys) == 0:
        raise ValueError(f"donor {donor.image_id}: empty foreground, nothing to paste")
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop_img: np.ndarray = donor.image[y0:y1, x0:x1]
    crop_fg: np.ndarray = donor.foreground[y0:y1, x0:x1].astype(np.uint8)
    crop_ref: np.ndarray = donor.reference[y0:y1, x0:x1].astype(np.uint8)
    h = max(1, round((y1 - y0) * scale))
    w = max(1, round((x1 - x0) * scale))
    if (h, w) != crop_fg.shape:
        crop_img = cv2.resize(crop_img, (w, h), interpolation=cv2.INTER_LINEAR)
        crop_fg = cv2.resize(crop_fg, (w, h), interpolation=cv2.INTER_NEAREST)
        crop_ref = cv2.resize(crop_ref, (w, h), interpolation=cv2.INTER_NEAREST)
    height, width = receiver.foreground.shape
    if top < 0 or left < 0 or top + h > height or left + w > width:
        raise ValueError(f"paste box {(top, left, h, w)} does not fit in the receiver's {(height, width)}")
    pasted = np.zeros((height, width), dtype=bool)
    pasted[top : top + h, left : left + w] = crop_fg > 0
    donor_ref = np.zeros((height, width), dtype=bool)
    donor_ref[top : top + h, left : left + w] = crop_ref > 0
    image = receiver.image.copy()
    window = image[top : top + h, left : left + w]
    window[crop_fg > 0] = crop_img[crop_fg > 0]
    return Composite(
        image=image,
        mask=receiver.foreground | pasted,
        reference=np.where(pasted, donor_ref, receiver.reference),
        pasted=pasted,
    )


def background_place(
    foreground: np.ndarray, box: tuple[int, int], tries: int, rng: np.random.Generator
) -> tuple[int, int]:
    """Top-left corner of an ``(h, w)`` box on the background of a bool ``[H, W]`` foreground.

    Of ``tries`` uniformly drawn places, the first that covers no foreground pixel, else the one
    that covers the fewest; the box must fit in the image.
    """
    height, width = foreground.shape
    h, w = box
    if h > height or w > width:
        raise ValueError(f"box {box} does not fit in an image of {(height, width)}")
    # foreground pixels in every h x w window, from the summed-area table
    table = np.pad(foreground.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    best: tuple[int, int, int] | None = None
    for _ in range(max(1, tries)):
        top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        covered = int(
            table[top + h, left + w] - table[top, left + w] - table[top + h, left] + table[top, left]
        )
        if best is None or covered < best[0]:
            best = (covered, top, left)
        if covered == 0:
            break
    assert best is not None
    return best[1], best[2]


def _split_kinds(acs: Mapping[str, float], config: SynthesisSettings) -> dict[str, list[str]]:
    ids = sorted(acs)
    return {
        "positive": [i for i in ids if acs[i] >= config.positive_threshold],
        "negative": [i for i in ids if acs[i] <= config.negative_threshold],
        "donor": [i for i in ids if acs[i] >= config.donor_threshold],
        "receiver": [i for i in ids if acs[i] >= config.receiver_threshold],
    }


def synthesize_samples(
    source: RecordSource, ids: Sequence[str], config: SynthesisSettings | None = None, progress: bool = True
) -> Iterator[ScorerSample]:
    """Yield the scorer's training samples for ``ids`` (module docstring), deterministically.

    Sample ids: ``<id>__pos``, ``<id>__neg``, ``<id>__deg<k>``, ``<receiver id>__cut<k>``; each
    sample's ``image_id`` is the image it comes from (the receiver for composites), so a split by
    ``image_id`` keeps an image's samples together.
    """
    config = config or SynthesisSettings()
    ids = list(ids)
    source.check(ids)
    acs: dict[str, float] = {}
    for image_id in tqdm(ids, desc="scorer set: AC", unit="img", disable=not progress):
        acs[image_id] = source.ac[image_id] if image_id in source.ac else source.load(image_id).ac
    source.ac.update(acs)
    kinds = _split_kinds(acs, config)
    rng = np.random.default_rng(config.seed)

    for kind, short in (("positive", "pos"), ("negative", "neg")):
        for image_id in kinds[kind]:
            rec = source.load(image_id)
            yield ScorerSample(
                f"{image_id}__{short}", rec.image, rec.foreground, rec.ac, image_id=image_id, kind=kind
            )

    per_kind = config.samples_per_image * len(ids)
    n_degraded = round(config.degraded_share * per_kind) if kinds["positive"] else 0
    lo, hi = config.negative_threshold, config.positive_threshold
    bar = tqdm(total=n_degraded, desc="scorer set: degraded", unit="sample", disable=not progress)
    for k in range(n_degraded):
        rec = source.load(kinds["positive"][int(rng.integers(len(kinds["positive"])))])
        op: Degradation = config.degradations[int(rng.integers(len(config.degradations)))]
        best: tuple[np.ndarray, float] | None = None
        for _ in range(config.max_tries):
            r_lo, r_hi = config.erase_range if op == "erase" else config.radius_range
            mask = degrade_mask(rec.foreground, op, float(rng.uniform(r_lo, r_hi)), rng)
            target = source.accuracy(rec.image, rec.reference, mask)
            if mask.any() and lo < target < hi:
                best = (mask, target)
                break
        bar.update()
        if best is not None:
            yield ScorerSample(
                f"{rec.image_id}__deg{k}", rec.image, best[0], best[1], image_id=rec.image_id, kind="degraded"
            )
    bar.close()

    donors, receivers = kinds["donor"], kinds["receiver"]
    n_composite = round(config.cutpaste_share * per_kind) if donors and receivers else 0
    for k in tqdm(range(n_composite), desc="scorer set: cut-paste", unit="sample", disable=not progress):
        donor = source.load(donors[int(rng.integers(len(donors)))])
        choices = [r for r in receivers if r != donor.image_id]
        if not choices or not donor.foreground.any():
            continue
        receiver = source.load(choices[int(rng.integers(len(choices)))])
        ys, xs = np.nonzero(donor.foreground)
        bh, bw = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        height, width = receiver.foreground.shape
        fit = min(1.0, 0.9 * height / bh, 0.9 * width / bw)
        scale = fit * float(rng.uniform(*config.scale_range))
        h, w = max(1, round(bh * scale)), max(1, round(bw * scale))
        top, left = background_place(receiver.foreground, (h, w), config.max_tries, rng)
        comp = cut_paste(donor, receiver, scale, top, left=left)
        target = source.accuracy(comp.image, comp.reference, comp.mask)
        yield ScorerSample(
            f"{receiver.image_id}__cut{k}",
            comp.image,
            comp.mask,
            target,
            image_id=receiver.image_id,
            kind="cutpaste",
        )
