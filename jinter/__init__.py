"""jinter: exact AND-OR interactions of deep networks, in JAX.

Top level: the transforms (:mod:`jinter.transforms`), masked-input evaluation
(:mod:`jinter.masking`), the AND-OR decomposition (:mod:`jinter.decomposition`) and the
analysis of interactions (:mod:`jinter.statistics`, :mod:`jinter.interactions`,
:mod:`jinter.generalization`; all of them and :mod:`jinter.dynamics` also through
:mod:`jinter.analysis`). Submodules: :mod:`jinter.theory`
(closed-form dynamics, decay/spindle, sparsity bound), :mod:`jinter.shapiq_io` (shapiq JSON
export), :mod:`jinter.plots` (matplotlib),
:mod:`jinter.models`, :mod:`jinter.data`, :mod:`jinter.training`, :mod:`jinter.sweep`,
:mod:`jinter.report` (the ``jinter demo`` study).
"""

from jinter import analysis as analysis  # the facade stays an attribute of the package, as before
from jinter import shapiq_io, theory
from jinter._budget import MemoryBudgetError, memory_budget
from jinter._version import __version__ as __version__
from jinter.decomposition import AndOrOptions, AndOrResult, SharedAndOrResult, and_or, and_or_shared
from jinter.generalization import GeneralizationPower, generalization_power
from jinter.interactions import InteractionRecord, Interactions, top_interactions, top_interactions_batch
from jinter.masking import (
    HostModel,
    LearnedBaseline,
    NonFiniteOutputError,
    PatchPlayers,
    TabularPlayers,
    TokenPlayers,
    host_model,
    learn_baseline,
    log_odds,
    logit,
    masked_outputs,
    mean_baseline,
)
from jinter.sparse import SparseAndOrResult, masked_value_fn, sparse_and_or
from jinter.statistics import (
    order_distribution,
    order_strength,
    salient_counts,
    salient_mask,
    shared_salient,
    signed_order_strength,
    sparsity_curve,
    tau_output,
    tau_relative,
)
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

__all__ = [
    # transforms
    "kron_apply",
    "mobius",
    "zeta",
    "or_mobius",
    "or_zeta",
    "reconstruct",
    "matching_error",
    "num_players",
    "mask_orders",
    "masks_of_order",
    "mask_to_players",
    "players_to_mask",
    # masking
    "masked_outputs",
    "TabularPlayers",
    "PatchPlayers",
    "TokenPlayers",
    "mean_baseline",
    "learn_baseline",
    "LearnedBaseline",
    "log_odds",
    "logit",
    "host_model",
    "HostModel",
    "NonFiniteOutputError",
    # decomposition
    "and_or",
    "and_or_shared",
    "AndOrResult",
    "AndOrOptions",
    "SharedAndOrResult",
    # sparse (many players, budget of calls)
    "sparse_and_or",
    "SparseAndOrResult",
    "masked_value_fn",
    # analysis
    "Interactions",
    "InteractionRecord",
    "GeneralizationPower",
    "salient_mask",
    "shared_salient",
    "tau_relative",
    "tau_output",
    "order_strength",
    "order_distribution",
    "signed_order_strength",
    "salient_counts",
    "sparsity_curve",
    "top_interactions",
    "top_interactions_batch",
    "generalization_power",
    # memory
    "MemoryBudgetError",
    "memory_budget",
    # submodules
    "theory",
    "shapiq_io",
]
