"""SAL-Net and SEC/DSRG losses, pure PyTorch (no Lightning import)."""

from sal_lightning.losses.dsrg import flood_fill, grow_seeds
from sal_lightning.losses.sec import ConstrainLoss, ExpandLoss, SeedLoss, global_weighted_rank_pooling
from sal_lightning.losses.seeds import normalize_cams, seeds_from_cams

__all__: list[str] = [
    "ConstrainLoss",
    "ExpandLoss",
    "SeedLoss",
    "flood_fill",
    "global_weighted_rank_pooling",
    "grow_seeds",
    "normalize_cams",
    "seeds_from_cams",
]
