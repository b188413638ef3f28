"""The record of one interaction, :class:`InteractionRecord` (lowest layer: no jinter imports).

It lives here, below the solvers and the analysis, so that both :mod:`jinter.sparse` and
:mod:`jinter.interactions` can build records; its public home is :mod:`jinter.interactions`
(``jinter.InteractionRecord``), which re-exports it.
"""

from __future__ import annotations

from typing import NamedTuple


class InteractionRecord(NamedTuple):
    """One interaction of one sample: its players, type (``"and"``/``"or"``) and value."""

    players: tuple[int, ...]
    type: str
    value: float
    mask: int
    order: int
    names: tuple[str, ...] | None = None

    @property
    def label(self) -> str:
        """``"AND{a, b}"`` with player names when known, else indices."""
        who = self.names if self.names is not None else self.players
        return f"{self.type.upper()}{{{', '.join(map(str, who))}}}"
