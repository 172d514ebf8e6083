"""Coarse scores: boundary accuracy (Eq. 3), class distribution (Eq. 4), coarse score (Eq. 5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import binary_f1_score

from sal_lightning.scoring import boundary_accuracy, class_distribution, coarse_score, fine_score, foreground


def _hand_case() -> tuple[torch.Tensor, torch.Tensor]:
    # H: 4 pixels; B: 6 pixels (one more marked ignore); overlap 3 -> |H∪B| = 7
    reference = torch.zeros(1, 4, 4, dtype=torch.bool)
    reference[0, 0, :4] = True
    mask = torch.zeros(1, 4, 4, dtype=torch.long)
    mask[0, 0, 1:4] = 5
    mask[0, 1, 0:3] = 7
    mask[0, 3, 3] = 255
    return reference, mask


def test_paper_definition_hand_worked() -> None:
    reference, mask = _hand_case()
    prec, rec = 3 / 4, 3 / 7
    expected = 2 * prec * rec / (prec + rec)
    assert boundary_accuracy(reference, mask).item() == pytest.approx(expected, rel=1e-6)
    objectness = torch.tensor([0.2])
    with_f = boundary_accuracy(reference, mask, objectness, b=0.1)
    assert with_f.item() == pytest.approx(expected * 0.2**0.1, rel=1e-6)


def test_fmeasure_definition_hand_worked_and_against_torchmetrics() -> None:
    reference, mask = _hand_case()
    assert boundary_accuracy(reference, mask, definition="fmeasure").item() == pytest.approx(2 * 3 / (4 + 6))
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(5, 20, 30, generator=g) < 0.4
    labels = torch.randint(0, 21, (5, 20, 30), generator=g) * (torch.rand(5, 20, 30, generator=g) < 0.5)
    ours = boundary_accuracy(ref, labels, definition="fmeasure")
    fg = labels > 0
    expected = torch.stack([binary_f1_score(fg[i].int(), ref[i].int()) for i in range(5)])
    assert torch.allclose(ours, expected, atol=1e-6)


def test_paper_definition_against_numpy() -> None:
    g = torch.Generator().manual_seed(1)
    ref = torch.randint(0, 2, (4, 9, 11), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 3, (4, 9, 11), generator=g)
    labels[labels == 2] = 255
    ours = boundary_accuracy(ref, labels)
    for i in range(4):
        h, b = ref[i].numpy() > 0, labels[i].numpy() == 1
        prec = np.logical_and(h, b).sum() / h.sum()
        rec = np.logical_and(h, b).sum() / np.logical_or(h, b).sum()
        assert ours[i].item() == pytest.approx(2 * prec * rec / (prec + rec), rel=1e-6)


@pytest.mark.parametrize("definition", ["paper", "fmeasure"])
def test_empty_masks_score_zero(definition: str) -> None:
    full = torch.ones(3, 5, 5, dtype=torch.bool)
    empty = torch.zeros(3, 5, 5, dtype=torch.bool)
    ignored = torch.full((3, 5, 5), 255)
    for ref, mask in ((full, empty), (empty, full), (empty, empty), (full, ignored)):
        ac = boundary_accuracy(ref, mask, torch.ones(3), definition=definition)  # type: ignore[arg-type]
        assert torch.equal(ac, torch.zeros(3))
    assert torch.equal(boundary_accuracy(full, full, definition=definition), torch.ones(3))  # type: ignore[arg-type]


def test_empty_batch_and_strided_masks() -> None:
    none = torch.zeros(0, 4, 4, dtype=torch.long)
    assert boundary_accuracy(none > 0, none).shape == (0,)
    assert class_distribution(none, torch.zeros(0, 20)).shape == (0,)
    g = torch.Generator().manual_seed(3)
    ref = torch.rand(3, 40, 300, generator=g) < 0.5  # rows of 300 > 255: block counting + remainder
    labels = torch.randint(0, 3, (3, 40, 300), generator=g)
    strided = boundary_accuracy(ref[:, ::3, 1:], labels[:, ::3, 1:], definition="fmeasure")
    fg, h = labels[:, ::3, 1:] > 0, ref[:, ::3, 1:]
    expected = 2 * (fg & h).sum((1, 2)) / (fg.sum((1, 2)) + h.sum((1, 2)))
    assert torch.allclose(strided, expected.float(), atol=1e-6)


def test_single_mask_and_foreground_rule() -> None:
    reference, mask = _hand_case()
    batched = boundary_accuracy(reference, mask)
    single = boundary_accuracy(reference[0], mask[0], torch.tensor(1.0))
    assert single.dim() == 0 and single.item() == pytest.approx(batched.item())
    assert foreground(torch.tensor([0, 1, 20, 255])).tolist() == [False, True, True, False]


def test_class_distribution_hand_worked() -> None:
    labels = torch.tensor([[[0, 1, 1, 2], [3, 255, 0, 1]], [[0, 0, 255, 0], [0, 0, 0, 0]]])
    tags = torch.zeros(2, 20)
    tags[0, 0] = 1.0  # class 1 tagged; classes 2, 3 are not
    tags[1, 4] = 1.0
    cd = class_distribution(labels, tags)
    assert cd.tolist() == pytest.approx([3 / 5, 0.0])  # image 1 has no foreground
    assert class_distribution(labels[0], tags[0]).item() == pytest.approx(3 / 5)
    assert class_distribution(labels.to(torch.uint8), tags.bool()).tolist() == pytest.approx([3 / 5, 0.0])


def test_class_distribution_against_numpy() -> None:
    g = torch.Generator().manual_seed(2)
    labels = torch.randint(0, 23, (6, 10, 12), generator=g)
    labels[labels == 22] = 255  # 21 is an out-of-range label: not foreground either
    tags = (torch.rand(6, 20, generator=g) < 0.3).float()
    ours = class_distribution(labels, tags)
    for i in range(6):
        lab = labels[i].numpy()
        fg = (lab >= 1) & (lab <= 20)
        tagged = np.isin(lab, np.flatnonzero(tags[i].numpy()) + 1) & fg
        assert ours[i].item() == pytest.approx(tagged.sum() / fg.sum() if fg.sum() else 0.0, rel=1e-6)


def test_class_distribution_custom_ignore_index() -> None:
    labels = torch.tensor([[[1, 2, 2]]])
    tags = torch.tensor([[1.0, 0.0]])
    assert class_distribution(labels, tags).item() == pytest.approx(1 / 3)
    assert class_distribution(labels, tags, ignore_index=2).item() == pytest.approx(1.0)


def test_coarse_score_is_product() -> None:
    ac, cd = torch.tensor([0.5, 0.9, 0.0]), torch.tensor([1.0, 0.5, 0.7])
    assert torch.allclose(coarse_score(ac, cd), torch.tensor([0.5, 0.45, 0.0]))
    with pytest.raises(ValueError, match="cd: expected the shape of ac"):
        coarse_score(ac, cd[:2])


def test_fine_score_is_the_scorers_quality_times_cd() -> None:
    p, cd = torch.tensor([0.8, 0.2, 1.0]), torch.tensor([0.5, 1.0, 0.0])
    assert torch.allclose(fine_score(p, cd), torch.tensor([0.4, 0.2, 0.0]))
    with pytest.raises(ValueError, match="cd: expected the shape of p"):
        fine_score(p, cd[:1])


def test_bad_inputs_name_the_argument() -> None:
    ref = torch.zeros(2, 4, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"mask: expected shape \[B, H, W\]"):
        boundary_accuracy(ref, torch.zeros(2, 4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="reference: expected a bool or integer mask"):
        boundary_accuracy(ref.float(), torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"objectness: expected shape \[B\]"):
        boundary_accuracy(ref, ref, torch.ones(3))
    with pytest.raises(ValueError, match="definition: expected"):
        boundary_accuracy(ref, ref, definition="iou")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"labels: expected a tensor \[B, H, W\] \(int\)"):
        class_distribution(torch.zeros(2, 4, 4), torch.zeros(2, 20))
    with pytest.raises(ValueError, match=r"tags: expected shape \[B, C\]"):
        class_distribution(torch.zeros(2, 4, 4, dtype=torch.long), torch.zeros(3, 20))
