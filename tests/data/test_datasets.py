"""VOCDataset: what it yields from VOC-layout folders, every tags source, extras, and bad input."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from sal_lightning.data.datasets import VOCDataset
from sal_lightning.data.io import read_id_list, write_id_list, write_image, write_label_png, write_scores
from sal_lightning.data.layout import make_train_aug_list, read_sbd_segmentation, resolve_voc_root
from sal_lightning.data.voc import VOC_CLASSES


def _on(tags: torch.Tensor) -> torch.Tensor:
    """Indices of the tags that are on."""
    return torch.nonzero(tags).flatten()


def _xml_tags(path: Path) -> list[int]:
    names = {o.findtext("name") for o in ET.parse(path).getroot().iter("object")}
    return sorted(VOC_CLASSES.index(n) - 1 for n in names)


def test_yields_the_batch_contract_with_tags_from_xml(synthetic_voc: Path) -> None:
    dataset = VOCDataset(synthetic_voc, "val")
    assert len(dataset) == 6 and dataset.ids == read_id_list(synthetic_voc / "ImageSets/Segmentation/val.txt")
    for k in range(len(dataset)):
        sample = dataset[k]
        image_id = sample["id"]
        assert sample["image"].shape == (3, 64, 64) and sample["image"].dtype == torch.float32
        assert sample["mask"].dtype == torch.long and sample["size"] == (64, 64)
        assert sample["weight"].item() == 1.0 and sample["weight"].dim() == 0
        assert _on(sample["tags"]).tolist() == _xml_tags(synthetic_voc / f"Annotations/{image_id}.xml")
        # masks are unchanged by reading: compare with PIL's raw palette indices
        raw = np.asarray(Image.open(synthetic_voc / f"SegmentationClass/{image_id}.png"))
        assert np.array_equal(sample["mask"].numpy(), raw)


def test_tags_from_masks_match_xml(synthetic_voc: Path) -> None:
    by_mask = VOCDataset(synthetic_voc, "train", tags_source="mask")
    by_xml = VOCDataset(synthetic_voc, "train", tags_source="xml")
    for k in range(len(by_mask)):
        assert torch.equal(by_mask[k]["tags"], by_xml[k]["tags"])


def test_tags_from_masks_are_announced_once(voc_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without XML, cls_labels or SBD files the tags come from the ground truth: one line says so."""
    shutil.rmtree(voc_copy / "Annotations")
    capsys.readouterr()
    VOCDataset(voc_copy, "train", tags_source="mask")  # asked for: nothing to announce
    assert capsys.readouterr().err == ""
    first = VOCDataset(voc_copy, "train")
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and f"tags of 12 of 12 images of {voc_copy} come from the ground-truth masks" in err
    )
    VOCDataset(voc_copy, "val")
    assert capsys.readouterr().err == ""  # once per root
    assert first[0]["tags"].sum() >= 1


def test_voc_devkit_parent_and_train_aug_list(voc_copy: Path) -> None:
    devkit = voc_copy.parent / "VOCdevkit"
    devkit.mkdir()
    shutil.move(voc_copy, devkit / "VOC2012")
    assert resolve_voc_root(devkit) == devkit / "VOC2012" == resolve_voc_root(voc_copy.parent)
    (devkit / "VOC2012/ImageSets/Segmentation/train_aug.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"train_aug list is missing.*sal-lightning data train-aug"):
        VOCDataset(devkit, "train_aug")
    ids = make_train_aug_list(devkit)  # SegmentationClassAug ids minus val
    assert ids == [f"synth_{i:06d}" for i in range(12)]
    assert len(VOCDataset(devkit, "train_aug")) == 12
    with pytest.raises(FileNotFoundError, match="not a VOC root"):
        resolve_voc_root(voc_copy.parent / "nowhere")


def _tiny_root(root: Path, ids: list[str], labels: list[np.ndarray]) -> Path:
    """A VOC root by hand: images, grayscale-free palette masks, no XML."""
    for image_id, lab in zip(ids, labels, strict=True):
        write_image(root / "JPEGImages" / f"{image_id}.jpg", np.full((*lab.shape, 3), 128, np.uint8))
        write_label_png(root / "SegmentationClass" / f"{image_id}.png", lab)
    write_id_list(root / "ImageSets/Segmentation/train.txt", ids)
    return root


def test_tags_from_cls_labels_with_int_and_str_keys(tmp_path: Path) -> None:
    ids = ["2007_000032", "2007_000039", "2008_000002"]
    labels = [np.full((8, 8), c, np.uint8) for c in (1, 2, 3)]
    root = _tiny_root(tmp_path / "voc", ids, labels)
    table = {2007000032: np.eye(20, dtype=np.float32)[4], "2007_000039": np.eye(20, dtype=np.float32)[5]}
    np.save(root / "cls_labels.npy", table)  # PSA/IRN layout: a pickled dict
    dataset = VOCDataset(root, "train")  # auto: cls_labels.npy where listed, else the mask
    tags = [_on(dataset[k]["tags"]).tolist() for k in range(3)]
    assert tags == [[4], [5], [2]]
    with pytest.raises(ValueError, match=r"cls_labels\.npy: 1 of 3 ids have no entry.*2008_000002"):
        VOCDataset(root, "train", tags_source="cls_labels")
    with pytest.raises(FileNotFoundError, match=r"3 of 3 annotation XML files missing"):
        VOCDataset(root, "train", tags_source="xml")


def test_tags_from_sbd_mat(tmp_path: Path) -> None:
    ids = ["2008_000003", "2008_000008"]
    root = _tiny_root(tmp_path / "voc", ids, [np.zeros((6, 6), np.uint8)] * 2)
    sbd = tmp_path / "benchmark_RELEASE" / "dataset"
    (sbd / "cls").mkdir(parents=True)
    seg = np.zeros((6, 6), np.uint8)
    seg[1:3, 1:4] = 15
    seg[4:, 4:] = 9
    scipy.io.savemat(
        sbd / "cls" / "2008_000003.mat",
        {
            "GTcls": {
                "Segmentation": seg,
                "Boundaries": np.zeros(1),
                "CategoriesPresent": np.array([[9], [15]]),
            }
        },
    )
    scipy.io.savemat(
        sbd / "cls" / "2008_000008.mat", {"GTcls": {"Segmentation": seg, "CategoriesPresent": 7}}
    )
    assert np.array_equal(read_sbd_segmentation(sbd / "cls" / "2008_000003.mat"), seg)
    dataset = VOCDataset(root, "train", sbd_dir=sbd, tags_source="sbd")
    assert [_on(dataset[k]["tags"]).tolist() for k in range(2)] == [[8, 14], [6]]
    scipy.io.savemat(sbd / "cls" / "2008_000008.mat", {"other": np.zeros(2)})
    with pytest.raises(ValueError, match=r"2008_000008\.mat: expected an SBD cls file with a 'GTcls' struct"):
        VOCDataset(root, "train", sbd_dir=sbd, tags_source="sbd")


def test_proxies_weights_strong_ids_and_selection(voc_copy: Path, tmp_path: Path) -> None:
    train = read_id_list(voc_copy / "ImageSets/Segmentation/train.txt")
    proxies = tmp_path / "proxies"
    for k, image_id in enumerate(train):
        write_label_png(proxies / f"{image_id}.png", np.full((64, 64), k % 21, np.uint8))
    weights = {i: (0.0 if k % 3 == 0 else 0.5 + 0.01 * k) for k, i in enumerate(train)}
    write_scores(tmp_path / "scores.csv", {i: {"weight": w} for i, w in weights.items()})
    strong = train[:2]  # train[0] has weight 0 in the scores, but strong ids always count with weight 1
    write_id_list(tmp_path / "strong.txt", strong)
    dataset = VOCDataset(
        voc_copy,
        "train",
        proxies=proxies,
        scores=tmp_path / "scores.csv",
        strong_ids=tmp_path / "strong.txt",
        skip_zero_weight=True,
    )
    expected_ids = [i for i in train if i in strong or weights[i] > 0]
    assert dataset.ids == expected_ids and len(dataset) == 9  # 8 selected + strong train[0]
    for k in range(len(dataset)):
        sample = dataset[k]
        image_id = sample["id"]
        gt = np.asarray(Image.open(voc_copy / f"SegmentationClass/{image_id}.png"))
        if image_id in strong:
            assert sample["weight"].item() == 1.0 and np.array_equal(sample["mask"].numpy(), gt)
        else:
            assert sample["weight"].item() == pytest.approx(weights[image_id])
            assert (sample["mask"] == train.index(image_id) % 21).all()
        # tags stay the image's own (XML), never the proxy's
        assert _on(sample["tags"]).tolist() == _xml_tags(voc_copy / f"Annotations/{image_id}.xml")
    unselected = VOCDataset(voc_copy, "train", proxies=proxies, scores=tmp_path / "scores.csv")
    assert len(unselected) == 12 and unselected[0]["weight"].item() == 0.0


def test_saliency_and_unlabelled_samples(synthetic_voc: Path) -> None:
    dataset = VOCDataset(synthetic_voc, "val", saliency=synthetic_voc / "saliency", use_masks=False)
    sample = dataset[0]
    raw = np.asarray(Image.open(synthetic_voc / f"saliency/{sample['id']}.png"))
    assert torch.allclose(sample["saliency"], torch.from_numpy(raw / 255.0).float(), atol=1e-6)
    assert (sample["mask"] == 255).all() and sample["tags"].sum() >= 1


def test_missing_files_are_counted_and_named(voc_copy: Path) -> None:
    for i in (3, 5, 7):
        (voc_copy / f"JPEGImages/synth_{i:06d}.jpg").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"JPEGImages: 3 of 12 images missing, e\.g\. synth_000003\.jpg"
    ):
        VOCDataset(voc_copy, "train")
    (voc_copy / "SegmentationClass/synth_000013.png").unlink()
    (voc_copy / "SegmentationClassAug/synth_000013.png").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"1 of 6 ground-truth masks missing, e\.g\. synth_000013\.png"
    ):
        VOCDataset(voc_copy, "val")
    assert len(VOCDataset(voc_copy, "val", use_masks=False)) == 6
    with pytest.raises(FileNotFoundError, match=r"proxies: folder .*nothing not found"):
        VOCDataset(voc_copy, "val", proxies=voc_copy / "nothing")
    for path in (voc_copy / "saliency").glob("synth_00001[2-7].png"):
        path.unlink()
    with pytest.raises(FileNotFoundError, match=r"saliency: 6 of 6 saliency maps missing"):
        VOCDataset(voc_copy, "val", saliency=voc_copy / "saliency", use_masks=False)


def test_bad_masks_ids_and_scores(voc_copy: Path, tmp_path: Path) -> None:
    write_label_png(voc_copy / "SegmentationClass/synth_000012.png", np.zeros((60, 64), np.uint8))
    with pytest.raises(
        ValueError, match=r"synth_000012\.png: size \(60, 64\) \(H, W\) differs from its image"
    ):
        VOCDataset(voc_copy, "val")
    Image.fromarray(np.full((64, 64), 42, np.uint8), mode="L").save(
        voc_copy / "SegmentationClass/synth_000012.png"
    )
    dataset = VOCDataset(voc_copy, "val")  # label values are checked when the mask is read
    with pytest.raises(ValueError, match=r"synth_000012\.png: label values must be 0\.\.20 or 255.*\[42\]"):
        dataset[0]
    (voc_copy / "JPEGImages/synth_000013.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"synth_000013\.jpg: cannot read image header"):
        VOCDataset(voc_copy, "val")
    with pytest.raises(ValueError, match=r"invalid image id '\.\./x'"):
        VOCDataset(voc_copy, ["../x"])
    with pytest.raises(ValueError, match=r"split: 1 duplicate image ids"):
        VOCDataset(voc_copy, ["synth_000001", "synth_000001"])
    with pytest.raises(ValueError, match=r"strong_ids: 1 ids are not in split train"):
        VOCDataset(voc_copy, "train", strong_ids=["synth_000017"])
    write_scores(tmp_path / "scores.csv", {"synth_000000": {"weight": 1.0}, "synth_000001": {"sc": 0.4}})
    with pytest.raises(ValueError, match=r"scores\.csv: 11 of 12 ids of split train have no weight"):
        VOCDataset(voc_copy, "train", scores=tmp_path / "scores.csv")
