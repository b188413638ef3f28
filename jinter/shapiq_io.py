r"""Export of interactions in the JSON layout of shapiq's ``InteractionValues``.

:func:`to_shapiq_json` writes ONE sample's AND interactions as shapiq's index ``"Moebius"`` or
its OR interactions as ``"Co-Moebius"`` (docs/math.md §2 for the two transforms);
:meth:`jinter.Interactions.to_shapiq_json` calls it with the object's τ, player names and
sample. shapiq reads the file with ``InteractionValues.from_json_file``; shapiq itself is not
needed here.
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
from typing import Any, Literal, Sequence, get_args

import numpy as np
from jaxtyping import ArrayLike, Float

from jinter._checks import check_bool, check_finite, check_ints, check_option, check_real, check_tau, player_names
from jinter._files import atomic_write_bytes
from jinter._version import __version__
from jinter.transforms import num_players

__all__ = ["to_shapiq_json"]

_Kind = Literal["and", "or"]  # AND or OR interactions


def to_shapiq_json(
    i_and: Float[ArrayLike, "2**n"],
    i_or: Float[ArrayLike, "2**n"] | None = None,
    kind: _Kind = "and",
    path: str | os.PathLike | None = None,
    *,
    tau: float = 0.0,
    salient_only: bool = False,
    tau_rule: str = "fixed",
    players: Sequence[Any] | None = None,
    sample: Sequence[int] = (),
    created_from: str = "jinter.shapiq_io",
) -> dict[str, Any]:
    """One sample in the JSON layout of shapiq's ``InteractionValues.to_json_file``.

    ``kind="and"`` exports AND interactions as index ``"Moebius"`` (bias =
    ``baseline_value`` = value of ``()``). ``kind="or"`` exports the OR part as index
    ``"Co-Moebius"``: shapiq's co-Möbius ``m*(T) = Σ_{L⊆T}(−1)^{|T|−|L|} u(N∖T ∪ L)``
    relates to ours by ``I_or(T) = (−1)^{|T|+1} m*(T)``, so values are converted; its
    ``()`` entry and ``baseline_value`` are ``u(∅) = i_or[0]`` (0 in the AND-OR split), as in
    shapiq's own ``ExactComputer(...)("Co-Moebius")`` and as its ``from_json_file`` sets ``()``
    (the formula's ``m*(∅)`` would be ``u(N)``, which shapiq does not store there). Keys are
    ``"Empty"`` and comma-joined players, ordered by size then lexicographically.

    Args:
        i_and, i_or: interactions of ONE sample, shape ``(2**n,)`` (``i_or`` only for ``"or"``).
        kind: ``"and"`` or ``"or"``.
        path: if given, the document is also written there (``.json``).
        tau: salience threshold of ``salient_only``, also recorded in ``parameters``.
        salient_only: keep only salient interactions (``|I| ≥ τ``) besides ``()``.
        tau_rule, players, sample: recorded in ``parameters`` (how τ was chosen, player names,
            index of the sample in its batch).
        created_from: recorded as ``created_from``.

    Returns:
        The JSON document as a dict.
    """
    for what, x in (("i_and", i_and), ("i_or", i_or)):
        if hasattr(x, "I_and"):
            raise TypeError(f"{what} must be an array of one sample's interactions, got {type(x).__name__}; "
                            "an Interactions object exports itself with its to_shapiq_json method")
    check_option(kind, "kind", get_args(_Kind))
    sample = (sample,) if isinstance(sample, (int, np.integer)) and not isinstance(sample, bool) else sample
    sample = check_ints(sample, "sample") if len(np.shape(sample)) or np.size(sample) else ()
    if kind == "or" and i_or is None:
        raise ValueError("these interactions have no OR part")
    vals = np.asarray(i_and if kind == "and" else i_or)
    n = num_players(vals, what=f"i_{kind}")
    if vals.ndim != 1:
        raise ValueError(f"to_shapiq_json exports one sample (shape (2**n,)), got {vals.shape}")
    if np.iscomplexobj(vals) or not (np.issubdtype(vals.dtype, np.number) or vals.dtype == np.bool_):
        raise TypeError(f"i_{kind} must be real interactions, got dtype {vals.dtype}")
    check_finite(vals, f"i_{kind}")  # NaN / inf would make the document invalid JSON
    check_tau(tau)
    tau = check_real(tau, "tau", least=0.0)  # finite: JSON has no inf
    check_bool(salient_only, "salient_only")
    names = player_names(players, n)
    if i_or is not None and np.shape(i_or) != np.shape(i_and):
        raise ValueError(f"i_or must have the shape of i_and {np.shape(i_and)}, got {np.shape(i_or)}")
    data: dict[str, float] = {"Empty": float(vals[0])}  # the baseline, for "or" too (shapiq's convention)
    for k in range(1, n + 1):
        sign = 1.0 if kind == "and" or k % 2 else -1.0
        for who in itertools.combinations(range(n), k):
            mask = sum(1 << p for p in who)
            x = float(vals[mask])
            if salient_only and not abs(x) >= tau:
                continue
            data[",".join(map(str, who))] = sign * x
    doc = {
        "object_name": "InteractionValues",
        "data_type": "interaction_values",
        "version": f"jinter {__version__}",
        "created_from": created_from,
        "description": f"jinter {kind.upper()} interactions"
        + (" (OR part as shapiq Co-Moebius: I_or(T) = (-1)^(|T|+1) m*(T))" if kind == "or" else ""),
        "parameters": {
            "jinter_type": kind,
            "sample": list(sample),
            "tau": tau,
            "tau_rule": str(tau_rule),
            "salient_only": bool(salient_only),
            "players": None if names is None else list(names),
        },
        "timestamp": _utc_now(),
        "metadata": {
            "n_players": n,
            "index": "Moebius" if kind == "and" else "Co-Moebius",
            "max_order": n,
            "min_order": 0,
            "estimated": False,
            "estimation_budget": None,
            "baseline_value": float(vals[0]),
        },
        "data": data,
    }
    if path is not None:
        atomic_write_bytes(path, json.dumps(doc, indent=2).encode("utf-8"))
    return doc


def _utc_now() -> str:
    return datetime.datetime.now(tz=datetime.timezone.utc).isoformat()
