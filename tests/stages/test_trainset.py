"""The scorer's training set: thresholds per kind, recomputed targets, cut-paste alignment, determinism."""

from __future__ import annotations

import collections
import functools
from pathlib import Path

import numpy as np
import pytest

from sal_lightning.data.io import read_image
from sal_lightning.data.layout import read_split
from sal_lightning.data.scorer_data import read_scorer_index
from sal_lightning.scoring.coarse import boundary_accuracy_np
from sal_lightning.scoring.synthesis import SynthesisSettings, synthesize_samples
from sal_lightning.stages.corrupt import make_corrupted_proxies
from sal_lightning.stages.references import build_references
from sal_lightning.stages.trainset import ProxySource, build_scorer_training_set


@pytest.fixture(scope="module")
def scored(
    tmp_path_factory: pytest.TempPathFactory, synthetic_voc: Path
) -> tuple[Path, list[str], Path, Path]:
    """Corrupted proxies (known quality) and references from the synthetic saliency maps."""
    work = tmp_path_factory.mktemp("synthesis")
    ids = read_split(synthetic_voc, "train") + read_split(synthetic_voc, "val")
    make_corrupted_proxies(synthetic_voc, work / "proxies", split=ids, seed=1, progress=False)
    refs = build_references(
        synthetic_voc, work / "refs", split=ids, saliency=synthetic_voc / "saliency", progress=False
    )
    return synthetic_voc, ids, work / "proxies", refs


def test_training_set_thresholds_targets_and_alignment(scored: tuple[Path, list[str], Path, Path]) -> None:
    root, ids, proxies, refs = scored
    config = SynthesisSettings(samples_per_image=2.0, cutpaste_share=0.5, seed=3)
    source = ProxySource(root, proxies, refs)
    samples = list(synthesize_samples(source, ids, config, progress=False))
    kinds = collections.Counter(s.kind for s in samples)
    assert kinds["positive"] > 0 and kinds["negative"] > 0 and kinds["degraded"] > 0 and kinds["cutpaste"] > 0
    acs = source.ac
    for s in samples:
        assert s.mask.shape == s.image.shape[:2] and s.mask.dtype == bool and 0.0 <= s.target <= 1.0
        if s.kind == "positive":
            assert s.target >= 0.8 and s.target == pytest.approx(acs[s.image_id])
        elif s.kind == "negative":
            assert s.target <= 0.3 and s.target == pytest.approx(acs[s.image_id])
        elif s.kind == "degraded":
            assert 0.3 < s.target < 0.8 and acs[s.image_id] >= 0.8  # copies of good masks
            rec = source.load(s.image_id)
            assert s.target == pytest.approx(boundary_accuracy_np(rec.image, rec.reference, s.mask))
            assert np.array_equal(s.image, rec.image)
        else:  # cut-paste: the receiver's image, changed only under the (grown) mask
            rec = source.load(s.image_id)
            assert acs[s.image_id] >= 0.3
            changed = np.any(s.image != rec.image, axis=-1)
            assert changed.any() and (changed <= s.mask).all()
            assert (rec.foreground <= s.mask).all()
            assert s.mask.sum() > rec.foreground.sum()
    # middle-range proxies are left out as base samples
    base = {s.image_id for s in samples if s.kind in ("positive", "negative")}
    assert all(acs[i] >= 0.8 or acs[i] <= 0.3 for i in base)
    assert any(0.3 < a < 0.8 for a in acs.values())
    # deterministic for a seed, different for another
    again = list(synthesize_samples(ProxySource(root, proxies, refs), ids, config, progress=False))
    assert [s.sample_id for s in again] == [s.sample_id for s in samples]
    assert all(
        np.array_equal(a.mask, b.mask) and a.target == b.target for a, b in zip(again, samples, strict=True)
    )
    other = SynthesisSettings(samples_per_image=2.0, cutpaste_share=0.5, seed=4)
    changed = list(synthesize_samples(ProxySource(root, proxies, refs), ids, other, progress=False))
    assert [s.sample_id for s in changed] != [s.sample_id for s in samples] or any(
        not np.array_equal(a.mask, b.mask) for a, b in zip(changed, samples, strict=False)
    )


def test_thresholds_and_shares_are_parameters(scored: tuple[Path, list[str], Path, Path]) -> None:
    root, ids, proxies, refs = scored
    config = SynthesisSettings(
        positive_threshold=0.6, negative_threshold=0.5, degraded_share=0.0, cutpaste_share=0.0
    )
    samples = list(synthesize_samples(ProxySource(root, proxies, refs), ids, config, progress=False))
    assert {s.kind for s in samples} <= {"positive", "negative"}
    assert all(s.target >= 0.6 for s in samples if s.kind == "positive")
    assert all(s.target <= 0.5 for s in samples if s.kind == "negative")
    with pytest.raises(ValueError, match="negative_threshold"):
        SynthesisSettings(positive_threshold=0.3, negative_threshold=0.4)
    with pytest.raises(ValueError, match="cutpaste_share"):
        SynthesisSettings(cutpaste_share=-1)
    with pytest.raises(ValueError, match="degradations"):
        SynthesisSettings(degradations=("blur",))  # type: ignore[arg-type]


def test_build_writes_a_sample_folder_once(
    scored: tuple[Path, list[str], Path, Path], tmp_path: Path
) -> None:
    root, ids, proxies, refs = scored
    config = SynthesisSettings(cutpaste_share=0.5)
    build = functools.partial(build_scorer_training_set, root, proxies, split=ids, progress=False)
    out = build(references=refs, out=tmp_path / "samples", synthesis=config)
    rows = read_scorer_index(out)
    assert rows and {r["kind"] for r in rows} <= {"positive", "negative", "degraded", "cutpaste"}
    first = rows[0]["sample_id"]
    assert read_image(out / f"{first}.jpg").shape[:2] == (64, 64)
    stamp = (out / "samples.csv").stat().st_mtime_ns
    assert build(references=refs, out=out, synthesis=config) == out
    assert (out / "samples.csv").stat().st_mtime_ns == stamp  # same settings: nothing redone
    with pytest.raises(FileExistsError, match="overwrite"):
        build(references=refs, out=out, synthesis=SynthesisSettings(seed=9))
    build(references=refs, out=out, synthesis=SynthesisSettings(seed=9), overwrite=True)
    assert not list(tmp_path.glob(".samples.*"))  # no temporary folder left behind
    with pytest.raises(FileNotFoundError, match="reference masks"):
        build(references=tmp_path / "none", out=tmp_path / "s2", synthesis=config)


def test_paper_proportions_scale_with_samples_per_image(scored: tuple[Path, list[str], Path, Path]) -> None:
    root, ids, proxies, refs = scored
    counts = {}
    for spi in (1.0, 3.0):
        config = SynthesisSettings(samples_per_image=spi, degradations=("erode", "erase", "dilate"))
        kinds = collections.Counter(
            s.kind for s in synthesize_samples(ProxySource(root, proxies, refs), ids, config, progress=False)
        )
        counts[spi] = kinds
        assert kinds["cutpaste"] == round(0.2 * spi * len(ids))  # every composite is kept
        assert 0 < kinds["degraded"] <= round(0.3 * spi * len(ids))  # kept when in the middle range
    assert counts[3.0]["positive"] == counts[1.0]["positive"]  # each proxy once, whatever the scale
    assert counts[3.0]["negative"] == counts[1.0]["negative"]
    assert counts[3.0]["degraded"] > 2 * counts[1.0]["degraded"]
    assert SynthesisSettings().degradations == ("erode", "erase")  # the paper's two
