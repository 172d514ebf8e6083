"""SAL-Net's selection and attention losses in a plain PyTorch training loop (CPU, a few seconds).

Synthetic task: 32x32 images with one coloured square of one of 4 classes on a noisy background.
Every training image comes with a *proxy* annotation, as a weakly supervised pipeline would produce
it: most follow the object (with an unlabelled 1-pixel border, as VOC's void band), a third are bad
(wrong class, or a blob in the wrong place). The image-level tags and a class-agnostic reference
mask (standing in for saliency) are clean.

The loop scores each proxy with the coarse score of Eq. 3-5, keeps the good ones with Eq. 9, and
trains a tiny segmenter with ``L = L_sel + 2 * L_atten`` (Eq. 14), the segmentation logits
re-weighted by the classification branch (Eq. 11). For comparison it also trains on all proxies for
the same number of steps, and reports the mean IoU of both on clean validation masks.

Run: ``python examples/losses_in_your_loop.py``
"""

from __future__ import annotations

import time

import torch
from torch import Tensor, nn

from sal_lightning import AttentionLoss, SelectionLoss
from sal_lightning.losses import attention_refine, selection_weights
from sal_lightning.nn import HybridDilatedClassifier
from sal_lightning.scoring import boundary_accuracy, class_distribution, coarse_score, mask_objectness

NUM_FOREGROUND = 4  # foreground classes; label 0 is background
COLOURS = torch.tensor([[1.0, 0.2, 0.2], [0.2, 1.0, 0.2], [0.2, 0.2, 1.0], [1.0, 1.0, 0.2]])
SIZE = 32


def make_data(n: int, generator: torch.Generator) -> dict[str, Tensor]:
    """Images ``[n,3,S,S]``, true masks ``[n,S,S]``, noisy proxies ``[n,S,S]``, tags ``[n,C]``."""
    images = 0.1 * torch.rand(n, 3, SIZE, SIZE, generator=generator)
    masks = torch.zeros(n, SIZE, SIZE, dtype=torch.long)
    proxies = torch.zeros_like(masks)
    classes = torch.randint(0, NUM_FOREGROUND, (n,), generator=generator)
    bad = torch.rand(n, generator=generator) < 1 / 3
    for i in range(n):
        size = int(torch.randint(10, 18, (1,), generator=generator))
        y, x = (int(v) for v in torch.randint(0, SIZE - size, (2,), generator=generator))
        c = int(classes[i])
        images[i, :, y : y + size, x : x + size] = COLOURS[c][:, None, None]
        masks[i, y : y + size, x : x + size] = c + 1
        if not bad[i]:  # a good proxy: the object, its 1-pixel border left unlabelled (255)
            proxies[i, y : y + size, x : x + size] = 255
            proxies[i, y + 1 : y + size - 1, x + 1 : x + size - 1] = c + 1
        elif i % 2:  # wrong class
            proxies[i, y : y + size, x : x + size] = (c + 1) % NUM_FOREGROUND + 1
        else:  # misplaced blob
            y2, x2 = (SIZE - size - y, SIZE - size - x)
            proxies[i, y2 : y2 + size, x2 : x2 + size] = c + 1
    tags = nn.functional.one_hot(classes, NUM_FOREGROUND).float()
    return {"image": images, "mask": masks, "proxy": proxies, "tags": tags, "bad": bad}


class TinySegmenter(nn.Module):
    """A small conv backbone with a segmentation head and the hybrid dilated classification branch."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU()
        )
        self.seg_head = nn.Conv2d(16, NUM_FOREGROUND + 1, 1)
        self.cls_head = HybridDilatedClassifier(16, num_foreground=NUM_FOREGROUND)

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        features = self.backbone(image)
        return self.seg_head(features), self.cls_head(features)


def mean_iou(model: nn.Module, data: dict[str, Tensor]) -> float:
    """Mean intersection-over-union over background and the classes, on the clean masks."""
    with torch.no_grad():
        seg_logits, class_logits = model(data["image"])
        pred = attention_refine(seg_logits, class_logits).argmax(dim=1)
    k = NUM_FOREGROUND + 1
    confusion = torch.bincount(data["mask"].flatten() * k + pred.flatten(), minlength=k * k).reshape(k, k)
    iou = confusion.diag() / (confusion.sum(0) + confusion.sum(1) - confusion.diag()).clamp_min(1)
    return iou.mean().item()


def train(data: dict[str, Tensor], weights: Tensor, steps: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = TinySegmenter()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    selection_loss, attention_loss = SelectionLoss(), AttentionLoss()
    generator = torch.Generator().manual_seed(seed)
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(weights), (16,), generator=generator)
        seg_logits, class_logits = model(data["image"][idx])
        refined = attention_refine(seg_logits, class_logits)  # Eq. 11
        loss = selection_loss(refined, data["proxy"][idx], weights[idx]) + 2.0 * attention_loss(
            class_logits, data["tags"][idx]
        )  # Eq. 14
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 25 == 0:
            print(f"  step {step:3d}  loss {loss.item():.3f}")
    return model


def main() -> None:
    torch.set_num_threads(1)  # tensors this small train fastest on one thread
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(0)
    train_set, val_set = make_data(96, generator), make_data(48, generator)

    # Eq. 3-5: score every proxy against the reference mask and the clean tags
    reference = train_set["mask"] > 0  # stands in for a saliency-based reference mask
    objectness = mask_objectness(train_set["image"], train_set["proxy"])
    ac = boundary_accuracy(reference, train_set["proxy"], objectness, b=0.1)
    cd = class_distribution(train_set["proxy"], train_set["tags"])
    sc = coarse_score(ac, cd)
    weights = selection_weights(sc, tau=0.6)  # Eq. 9
    bad = train_set["bad"]
    print(
        f"scored {len(sc)} proxies: mean SC {sc[~bad].mean():.2f} (good) vs {sc[bad].mean():.2f} (bad); "
        f"selected {int(weights.sum())}, of which {int(weights[bad].sum())} bad"
    )

    print("training on the selected proxies (selection + attention losses)")
    selected = train(train_set, weights, steps=100, seed=1)
    print("training on all proxies (the same losses, every weight 1)")
    everything = train(train_set, torch.ones_like(weights), steps=100, seed=1)

    miou_sel, miou_all = mean_iou(selected, val_set), mean_iou(everything, val_set)
    print(
        f"done in {time.perf_counter() - start:.1f} s: val mIoU on clean masks "
        f"{miou_sel:.3f} with selection vs {miou_all:.3f} on all proxies"
    )


if __name__ == "__main__":
    main()
