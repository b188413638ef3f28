"""jinter: exact AND-OR interactions of deep networks, in JAX."""

from jinter._budget import MemoryBudgetError, memory_budget
from jinter.transforms import (
    kron_apply,
    mask_orders,
    mask_to_players,
    masks_of_order,
    matching_error,
    mobius,
    num_players,
    or_mobius,
    or_zeta,
    players_to_mask,
    reconstruct,
    zeta,
)

__version__ = "0.1.0"

__all__ = [
    "MemoryBudgetError",
    "kron_apply",
    "mask_orders",
    "mask_to_players",
    "masks_of_order",
    "matching_error",
    "memory_budget",
    "mobius",
    "num_players",
    "or_mobius",
    "or_zeta",
    "players_to_mask",
    "reconstruct",
    "zeta",
]
