"""Step 1 as functions: the presets, the label quality, the sub-steps and what they write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sal_lightning.data.io import read_label_png, write_label_png
from sal_lightning.stages.proxy_settings import PRESETS, ProxySettings
from sal_lightning.stages.quality import label_quality


def test_paper_presets_name_the_papers_networks() -> None:
    vgg, resnet = PRESETS["paper-vgg16"], PRESETS["paper-resnet101"]
    assert (vgg.cam_backbone, vgg.cam_conv7_channels, vgg.proxy_backbone) == (
        "vgg16_aspp",
        1024,
        "vgg16_aspp",
    )
    assert (resnet.cam_backbone, resnet.proxy_backbone) == ("vgg16_aspp", "deeplabv2_caffe_resnet101")
    assert PRESETS["paper"] == resnet
    assert PRESETS["synthetic-cpu"].cam_conv7_channels is None


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(ValueError, match="cam_steps: expected an integer >= 1, got 0"):
        ProxySettings(cam_steps=0)
    with pytest.raises(ValueError, match="fg_ratio: expected a number in"):
        ProxySettings(fg_ratio=2.0)


def test_label_quality_counts_unlabelled_pixels_as_misses(synthetic_voc: Path, tmp_path: Path) -> None:
    image_id = "synth_000000"
    gt = read_label_png(synthetic_voc / "SegmentationClass" / f"{image_id}.png")
    half = gt.copy()
    half[:, : gt.shape[1] // 2] = 255  # leave the left half unlabelled, the rest exact
    write_label_png(tmp_path / f"{image_id}.png", half)
    quality = label_quality(tmp_path, synthetic_voc, ids=[image_id])
    valid = gt != 255
    assert quality.precision == 1.0
    assert quality.coverage == pytest.approx(((half != 255) & valid).sum() / valid.sum())
    present = [c for c in np.unique(gt[valid])]
    expected = np.mean([((half == c) & (gt == c)).sum() / ((gt == c) | (half == c)).sum() for c in present])
    assert quality.miou == pytest.approx(expected)


def test_the_synthetic_cpu_example_config_is_the_preset() -> None:
    """``examples/configs/proxies_synthetic_cpu.yaml`` (the command line's preset) = ``PRESETS``."""
    import yaml

    path = Path(__file__).resolve().parents[2] / "examples" / "configs" / "proxies_synthetic_cpu.yaml"
    settings = yaml.safe_load(path.read_text())
    assert settings.pop("split") == "train"
    assert (
        ProxySettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()})
        == PRESETS["synthetic-cpu"]
    )


def _tiny_config(**changes: object) -> ProxySettings:
    """tests/conf/proxies.yaml (step 1 in seconds) as a :class:`ProxySettings`, with ``changes``."""
    import yaml

    settings = yaml.safe_load((Path(__file__).resolve().parents[1] / "conf" / "proxies.yaml").read_text())
    for key in ("split", "trainer"):
        settings.pop(key)
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
    return ProxySettings(**{**settings, **changes})


def test_step1_without_saliency_stops_before_any_work_naming_the_fix(
    synthetic_voc: Path, tmp_path: Path
) -> None:
    from sal_lightning.stages.proxies import run_proxies

    with pytest.raises(ValueError) as error:
        run_proxies(synthetic_voc, tmp_path / "step1", split="train", saliency=None, settings=_tiny_config())
    message = str(error.value)
    assert message.startswith("saliency: step 1 seeds the background from saliency maps, as DSRG does")
    assert "--saliency FOLDER" in message and "background: cam" in message
    assert not (tmp_path / "step1").exists()  # nothing trained, nothing written
    # the sub-steps that do not make seeds need no saliency
    with pytest.raises(FileNotFoundError, match="CAM classifier checkpoint not found"):
        run_proxies(
            synthetic_voc,
            tmp_path / "step1",
            split="train",
            saliency=None,
            settings=_tiny_config(),
            steps=["cams"],
        )
    with pytest.raises(ValueError, match="background: expected 'saliency' or 'cam', got 'sky'"):
        _tiny_config(background="sky")


def test_proxies_follow_predict_with_tags_and_cam_background_warns(
    synthetic_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``background: cam`` runs without saliency after one warning line; ``predict_with_tags`` decides
    whether the proxies can hold classes the image is not tagged with (a ProxyNet whose head is
    noise predicts many classes: restricted, only the tagged ones remain)."""
    import torch

    from sal_lightning.data.layout import read_xml_tags
    from sal_lightning.models.proxy import ProxyNet
    from sal_lightning.stages.proxies import run_proxies
    from sal_lightning.stages.step1 import Step1

    work = tmp_path / "step1"
    config = _tiny_config(background="cam")
    run_proxies(
        synthetic_voc,
        work,
        split="train",
        saliency=None,
        settings=config,
        steps=["cam", "cams", "seeds", "train"],
    )
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("WARNING: step 1")]
    assert len(warnings) == 1 and "lowest 30% of the CAMs (background: cam)" in warnings[0]
    assert len(list((work / "seeds").glob("*.png"))) == 12

    model = ProxyNet.load_from_checkpoint(work / "proxynet.ckpt", map_location="cpu")
    torch.manual_seed(0)
    for parameter in model.net.head_parameters():
        torch.nn.init.normal_(parameter, std=3.0)
    checkpoint = torch.load(work / "proxynet.ckpt", map_location="cpu", weights_only=False)
    checkpoint["state_dict"] = model.state_dict()
    torch.save(checkpoint, work / "noisy.ckpt")

    untagged = {}
    for with_tags in (False, True):
        settings = _tiny_config(predict_with_tags=with_tags)
        step = Step1(synthetic_voc, tmp_path / f"tags-{with_tags}", split="train", settings=settings)
        folder = step.predict_proxies(work / "noisy.ckpt")
        untagged[with_tags] = 0
        for png in sorted(folder.glob("*.png")):
            tagged = set(
                (
                    np.flatnonzero(read_xml_tags(synthetic_voc / "Annotations" / f"{png.stem}.xml")) + 1
                ).tolist()
            )
            untagged[with_tags] += len(set(np.unique(read_label_png(png)).tolist()) - tagged - {0})
    assert untagged[True] == 0 and untagged[False] > 0, untagged
