r"""Analysis of interactions: one namespace for salience, order distributions, sparsity,
top interactions, generalization power, training dynamics and the :class:`Interactions`
result object.

This module re-exports the names of the modules where they live (docs/math.md §4 and §7), so
``jinter.analysis.X`` and ``from jinter.analysis import X`` keep working:

- :mod:`jinter.statistics`: salient sets, per-order sums and strengths, counts ``R^(k)``,
  order distributions ``I^(k)``, the τ rules and sparsity curves (pure, jit-able);
- :mod:`jinter.interactions`: :class:`Interactions` (save/load, JSON and shapiq export,
  tables), :class:`InteractionRecord` and the top interactions of a sample;
- :mod:`jinter.generalization`: generalization power [H25];
- :mod:`jinter.dynamics`: mean order, start of the second phase, widening of the loss gap
  [D24].
"""

from __future__ import annotations

from jinter.dynamics import gap_widening_epoch, mean_order, phase_two_start
from jinter.generalization import GeneralizationPower, generalization_power
from jinter.interactions import InteractionRecord, Interactions, top_interactions, top_interactions_batch
from jinter.statistics import (
    order_distribution,
    order_strength,
    order_sums,
    salient_counts,
    salient_mask,
    signed_order_strength,
    sparsity_curve,
    tau_output,
    tau_relative,
)

__all__ = [
    "salient_mask",
    "order_sums",
    "order_strength",
    "signed_order_strength",
    "salient_counts",
    "order_distribution",
    "tau_relative",
    "tau_output",
    "sparsity_curve",
    "InteractionRecord",
    "top_interactions",
    "top_interactions_batch",
    "GeneralizationPower",
    "generalization_power",
    "Interactions",
    "mean_order",
    "phase_two_start",
    "gap_widening_epoch",
]
