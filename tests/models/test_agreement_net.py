"""AgreementNet: agreement labels, its dataset, a real (tiny) training run, its scores, checkpoint loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sal_lightning.data.io import read_label_png, read_reference, write_scores
from sal_lightning.data.layout import read_split
from sal_lightning.data.proxy_data import AgreementDataset, agreement_labels
from sal_lightning.models import AgreementNet, MaskScorer
from sal_lightning.scoring.metrics import boundary_accuracy
from sal_lightning.stages.corrupt import make_corrupted_proxies
from sal_lightning.stages.fine import score_fine
from sal_lightning.stages.references import build_references
from sal_lightning.stages.scorer import load_scorer
from sal_lightning.stages.scorer_training import train_agreement_net
from sal_lightning.stages.trainer import TrainerSettings

CPU = TrainerSettings(accelerator="cpu")


@pytest.fixture(scope="module")
def proxies_and_references(
    tmp_path_factory: pytest.TempPathFactory, synthetic_voc: Path
) -> tuple[list[str], Path, Path]:
    work = tmp_path_factory.mktemp("agreement_net")
    ids = read_split(synthetic_voc, "train")
    make_corrupted_proxies(synthetic_voc, work / "proxies", split=ids, seed=2, progress=False)
    refs = build_references(
        synthetic_voc, work / "refs", split=ids, saliency=synthetic_voc / "saliency", progress=False
    )
    return ids, work / "proxies", refs


def test_agreement_labels_by_hand() -> None:
    proxy = np.array([[1, 1, 0], [0, 1, 0]], dtype=bool)
    ref = np.array([[1, 0, 0], [1, 1, 0]], dtype=bool)
    assert agreement_labels(proxy, ref).tolist() == [[1, 255, 0], [255, 1, 0]]
    with pytest.raises(ValueError, match="differ in size"):
        agreement_labels(proxy, ref[:, :2])


def test_agreement_dataset_at_native_size(
    synthetic_voc: Path, proxies_and_references: tuple[list[str], Path, Path]
) -> None:
    ids, proxies, refs = proxies_and_references
    data = AgreementDataset(synthetic_voc, ids, proxies, refs, input_size=64, hflip=False)
    assert len(data) == len(ids)
    sample = data[3]
    labels = read_label_png(proxies / f"{ids[3]}.png")
    expected = agreement_labels((labels >= 1) & (labels <= 20), read_reference(refs / f"{ids[3]}.png"))
    assert sample["image"].shape == (3, 64, 64) and sample["id"] == ids[3]
    assert np.array_equal(sample["mask"].numpy(), expected)
    assert set(np.unique(sample["mask"].numpy())) <= {0, 1, 255}
    with pytest.raises(FileNotFoundError, match="reference masks"):
        AgreementDataset(synthetic_voc, ids, proxies, refs.parent / "nowhere")


def test_score_is_ac_against_the_learned_foreground() -> None:
    torch.manual_seed(0)
    model = AgreementNet(input_size=32)
    image = torch.randn(2, 3, 32, 32)
    learned = model(image) > 0.5
    mask = (torch.rand(2, 32, 32) > 0.5).long()
    assert torch.allclose(model.score(image, mask), boundary_accuracy(learned, mask, definition="paper"))
    assert torch.allclose(model.score(image, learned.long()), torch.ones(2))  # a proxy equal to it: 1
    with pytest.raises(ValueError, match="decoder_channels"):
        AgreementNet(encoder_depth=3, decoder_channels=(16, 8))
    with pytest.raises(ValueError, match="definition"):
        AgreementNet(definition="iou")  # type: ignore[arg-type]


def test_training_lowers_the_loss_and_scores_every_proxy(
    synthetic_voc: Path, proxies_and_references: tuple[list[str], Path, Path], tmp_path: Path
) -> None:
    ids, proxies, refs = proxies_and_references
    torch.manual_seed(0)
    model = AgreementNet(input_size=32, lr=3e-3)
    data = AgreementDataset(synthetic_voc, ids, proxies, refs, input_size=32, hflip=False)
    image = torch.stack([data[i]["image"] for i in range(len(ids))])
    target = torch.stack([data[i]["mask"] for i in range(len(ids))])

    def loss() -> float:
        with torch.no_grad():
            return F.cross_entropy(model.net(image), target, ignore_index=255).item()

    before = loss()
    ckpt = train_agreement_net(
        synthetic_voc,
        proxies,
        references=refs,
        out=tmp_path / "ckpt",
        split=ids,
        model=model,
        max_epochs=6,
        batch_size=2,
        trainer=TrainerSettings(accelerator="cpu", enable_progress_bar=False),
    )
    model.eval()
    assert loss() < 0.7 * before
    assert torch.load(ckpt, map_location="cpu", weights_only=False)["scorer_method"] == "agreement"
    loaded = load_scorer(ckpt)
    assert isinstance(loaded, AgreementNet) and loaded.hparams["input_size"] == 32
    write_scores(tmp_path / "scores.csv", {i: {"cd": 1.0} for i in ids})  # as if coarse-scored
    rows = score_fine(
        synthetic_voc, proxies, checkpoint=ckpt, scores=tmp_path / "scores.csv", split=ids, trainer=CPU
    )
    assert sorted(rows) == sorted(ids) and all(0.0 <= r["p"] == r["sf"] <= 1.0 for r in rows.values())


def test_load_scorer_reads_the_method_the_checkpoint_names(tmp_path: Path) -> None:
    import lightning as L

    for model, method in (
        (MaskScorer(arch="light", input_size=16), "regression"),
        (AgreementNet(input_size=16), "agreement"),
    ):
        trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, max_epochs=0)
        trainer.strategy.connect(model)
        path = tmp_path / f"{type(model).__name__}.ckpt"
        trainer.save_checkpoint(path)
        with pytest.raises(ValueError, match="names no scorer method"):  # never guessed
            load_scorer(path)
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        torch.save({**checkpoint, "scorer_method": method}, path)
        assert type(load_scorer(path)) is type(model)
        torch.save({**checkpoint, "scorer_method": "nope"}, path)
        with pytest.raises(ValueError, match="'nope' scorer, which is not registered"):
            load_scorer(path)
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        load_scorer(tmp_path / "none.ckpt")
