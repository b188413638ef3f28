r"""Analysis of interactions: one namespace for salience, order distributions, sparsity,
top interactions, generalization power, training dynamics and the :class:`Interactions`
result object.

This module re-exports the names of the modules where they live (docs/math.md §4 and §7), so
``jinter.analysis.X`` and ``from jinter.analysis import X`` keep working:

- :mod:`jinter.statistics`: salient sets, per-order sums and strengths, counts ``R^(k)``,
  order distributions ``I^(k)``, the τ rules and sparsity curves (pure, jit-able);
- :mod:`jinter.interactions`: :class:`Interactions` (save/load, JSON and shapiq export
  through :mod:`jinter.shapiq_io`, tables), :class:`InteractionRecord` and the top
  interactions of a sample;
- :mod:`jinter.generalization`: generalization power [H25];
- :mod:`jinter.dynamics`: mean order, start of the second phase, widening of the loss gap
  [D24].
"""

from __future__ import annotations

# One list per name: the facade is exactly the home modules' ``__all__``.
from jinter import dynamics as _dynamics
from jinter import generalization as _generalization
from jinter import interactions as _interactions
from jinter import statistics as _statistics
from jinter.dynamics import *  # noqa: F403
from jinter.generalization import *  # noqa: F403
from jinter.interactions import *  # noqa: F403
from jinter.statistics import *  # noqa: F403

__all__ = [*_statistics.__all__, *_interactions.__all__, *_generalization.__all__, *_dynamics.__all__]
