"""``sal-lightning weights download``: every weight of a configuration into the caches the run reads;
the pipeline fetches them before its first step, or stops with one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
import yaml
from safetensors.torch import save_file
from segmentation_models_pytorch.encoders import encoders, get_encoder

from sal_lightning.cli import main
from sal_lightning.nn.hub import COCO_INIT, url_weights
from tests.nn.caffe_layout import caffe_state_dict


@pytest.fixture
def offline_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path | str]:
    """Empty caches, a file:// Hugging Face mirror with smp's resnet18 and a file:// URL of a
    torchvision ResNet-18 file, all made here."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    settings = encoders["resnet18"]["pretrained_settings"]["imagenet"]
    mirror = tmp_path / "mirror"
    smp_file = mirror / settings["repo_id"] / "resolve" / settings["revision"] / "model.safetensors"
    smp_file.parent.mkdir(parents=True)
    save_file(get_encoder("resnet18").state_dict(), str(smp_file))
    monkeypatch.setenv("HF_ENDPOINT", mirror.as_uri())
    url_file = mirror / "resnet18-imagenet.pth"
    torch.save(torchvision.models.resnet18().state_dict(), url_file)
    return {"cache": tmp_path / "torch" / "hub" / "checkpoints", "url": url_file.as_uri()}


def _pipeline_config(path: Path, root: Path, url: str) -> Path:
    config = {
        "root": str(root),
        "proxies": {
            "background": "cam",
            "cam_backbone": "deeplabv3_resnet18",
            "cam_encoder_weights": url,
            "proxy_backbone": "deeplabv2_caffe_resnet101",
            "proxy_encoder_weights": "coco",
        },
        "retrain": {"model": {"backbone": "deeplabv2_resnet18", "encoder_weights": "imagenet"}},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_weights_download_fills_the_caches_and_names_what_it_cannot(
    offline_world: dict[str, Path | str],
    synthetic_voc: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache, url = Path(offline_world["cache"]), str(offline_world["url"])
    config = _pipeline_config(tmp_path / "pipeline.yaml", synthetic_voc, url)
    assert main(["weights", "download", "--config", str(config)]) == 2  # the COCO file has no URL
    out, err = capsys.readouterr()
    assert "proxies (CAM network): " in out and "retrain.model: 'imagenet' -> " in out
    assert "proxies (ProxyNet): 'coco' MISSING" in out
    lines = [line for line in err.splitlines() if "error" in line]  # besides the progress bars
    assert len(lines) == 1 and lines[0].startswith("sal-lightning weights: error: 1 of 3 weights settings")
    assert "deeplabv1_resnet101-coco.pth" in lines[0] and "convert.py --dataset coco" in lines[0]
    assert url_weights(url).path.is_file()  # the others were fetched all the same
    assert len(list(cache.glob("smp-hub--resnet18.imagenet-*.safetensors"))) == 1

    torch.save(caffe_state_dict(seed=0), cache / COCO_INIT.filename)  # converted by hand, copied there
    trainer_config = tmp_path / "fit.yaml"
    trainer_config.write_text(
        yaml.safe_dump(
            {
                "model": {
                    "class_path": "sal_lightning.models.ProxyNet",
                    "init_args": {"backbone": "deeplabv2_caffe_resnet101", "encoder_weights": "coco"},
                }
            }
        )
    )
    assert main(["weights", "download", "--config", f"[{config}, {trainer_config}]"]) == 0
    out = capsys.readouterr().out
    assert f"model: 'coco' -> {cache / COCO_INIT.filename}" in out and "weights ready: 4 files" in out


def test_the_pipeline_stops_before_its_first_step_without_a_weight(
    offline_world: dict[str, Path | str],
    synthetic_voc: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = _pipeline_config(tmp_path / "pipeline.yaml", synthetic_voc, str(offline_world["url"]))
    workdir = tmp_path / "run"
    assert main(["pipeline", "--config", str(config), "--workdir", str(workdir)]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(lines) == 1 and lines[0].startswith("sal-lightning pipeline: error: proxies (ProxyNet): ")
    assert "deeplabv1_resnet101-coco.pth" in lines[0]
    assert not any(p.suffix == ".png" for p in workdir.rglob("*"))  # no step ran
