"""SAL-Net and SEC/DSRG losses, pure PyTorch (no Lightning import)."""

from sal_lightning.losses.attention import AttentionLoss, attention_refine
from sal_lightning.losses.dsrg import flood_fill, grow_seeds
from sal_lightning.losses.sec import ConstrainLoss, ExpandLoss, SeedLoss, global_weighted_rank_pooling
from sal_lightning.losses.seeds import normalize_cams, seeds_from_cams
from sal_lightning.losses.selection import SelectionLoss, per_image_cross_entropy, selection_weights

__all__: list[str] = [
    "AttentionLoss",
    "ConstrainLoss",
    "ExpandLoss",
    "SeedLoss",
    "SelectionLoss",
    "attention_refine",
    "flood_fill",
    "global_weighted_rank_pooling",
    "grow_seeds",
    "normalize_cams",
    "per_image_cross_entropy",
    "seeds_from_cams",
    "selection_weights",
]
