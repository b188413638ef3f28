r"""The result object :class:`Interactions` and the top interactions of a sample.

:class:`Interactions` is the read-only value object on top of the pure functions of
:mod:`jinter.statistics` and :mod:`jinter.generalization` (τ and its rule, player names,
provenance, save/load, JSON and shapiq export (:mod:`jinter.shapiq_io`), tables).
:func:`top_interactions` and :func:`top_interactions_batch` rank interactions on the host as
:class:`InteractionRecord`. :class:`Interactions` is an
:class:`~jinter.statistics.InteractionResult`, and so are (registered here) the results of
:func:`jinter.and_or` and :func:`jinter.and_or_shared`.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import zipfile
from typing import Any, Literal, Mapping, Sequence, get_args

import jax
import numpy as np
from jaxtyping import ArrayLike, Float

from jinter._checks import (
    broadcasts_to,
    check_bool,
    check_finite,
    check_int,
    check_option,
    check_real,
    check_tau,
    held_precision,
    player_names,
    sample_index,
)
from jinter._files import atomic_write_bytes
from jinter._records import InteractionRecord
from jinter.decomposition import AndOrResult, SharedAndOrResult
from jinter.generalization import GeneralizationPower, generalization_power
from jinter.shapiq_io import _Kind, to_shapiq_json
from jinter.statistics import (
    InteractionResult,
    _and_or_arrays,
    order_distribution,
    salient_counts,
    salient_mask,
    signed_order_strength,
    sparsity_curve,
    tau_output,
    tau_relative,
)
from jinter.transforms import mask_to_players, num_players

__all__ = ["Interactions", "InteractionRecord", "top_interactions", "top_interactions_batch"]

_TauRule = Literal["relative", "output"]  # a τ rule by name (else τ is a number/array)

# The decomposition's named tuples hold I_and/I_or: InteractionResult lives below them (the
# decomposition imports jinter.statistics), so they are registered here, the lowest module
# that sees both (Interactions too, after its definition).
InteractionResult.register(AndOrResult)
InteractionResult.register(SharedAndOrResult)


# --------------------------------------------------------------------------------------------
# Top interactions (host side)


def _json_keys(x: Any):
    """Every key of every mapping inside ``x`` (nested in mappings and lists)."""
    if isinstance(x, Mapping):
        for k, v in x.items():
            yield k
            yield from _json_keys(v)
    elif isinstance(x, (list, tuple)):
        for v in x:
            yield from _json_keys(v)


def _json_array(name: str, entry: Mapping[str, Any]) -> np.ndarray:
    """An array of :meth:`Interactions.to_json` back: its values must fit its dtype exactly."""
    data = np.asarray(entry["data"])
    a = data.astype(np.dtype(entry["dtype"])).reshape(entry["shape"])
    if data.size and not np.array_equal(a.ravel().astype(data.dtype), data.ravel()):
        raise ValueError(f"array {name!r}: its values do not fit its dtype {entry['dtype']!r}")
    return a


def top_interactions(
    i_and: Float[ArrayLike, "2**n"],
    i_or: Float[ArrayLike, "2**n"] | None = None,
    k: int = 10,
    players: Sequence[Any] | None = None,
    *,
    tau: float | None = None,
) -> list[InteractionRecord]:
    """The ``k`` strongest interactions (``|I|``, ``S ≠ ∅``) of one sample, strongest first.

    Ties are broken deterministically: AND before OR, then smaller mask first.

    Args:
        i_and, i_or: interactions of ONE sample, shape ``(2**n,)``
            (see :func:`top_interactions_batch` for batches).
        k: number of records (fewer if fewer interactions qualify).
        players: optional player names, stored in ``InteractionRecord.names``.
        tau: if given, only salient interactions (``|I| ≥ τ``) are returned.
    """
    arrays = [np.asarray(a) for a in _and_or_arrays(i_and, i_or)]
    if arrays[0].ndim != 1:
        raise ValueError(
            f"top_interactions takes one sample (shape (2**n,)), got {arrays[0].shape}; "
            "use top_interactions_batch for batches"
        )
    k = check_int(k, "k", 0)
    if tau is not None:
        check_tau(tau)
    n = num_players(arrays[0])
    names = player_names(players, n)
    for name, a in zip(("I_and", "I_or"), arrays):
        check_finite(a, name)
    flat = np.concatenate([np.abs(a[1:]) for a in arrays])
    cand = np.arange(flat.size)
    if tau is not None:
        cand = cand[flat >= float(tau)]
    k = min(int(k), cand.size)
    if k == 0:
        return []
    if k < cand.size:
        thr = np.partition(flat[cand], cand.size - k)[cand.size - k]
        cand = cand[flat[cand] >= thr]
    cand = cand[np.lexsort((cand, -flat[cand]))][:k]
    m = 2**n - 1
    out = []
    for idx in cand.tolist():
        t, mask = divmod(idx, m)
        mask += 1
        who = mask_to_players(mask)
        out.append(
            InteractionRecord(
                players=who,
                type=("and", "or")[t],
                value=float(arrays[t][mask]),
                mask=mask,
                order=len(who),
                names=None if names is None else tuple(names[p] for p in who),
            )
        )
    return out


def top_interactions_batch(
    i_and: Float[ArrayLike, "*batch 2**n"],
    i_or: Float[ArrayLike, "*batch 2**n"] | None = None,
    k: int = 10,
    players: Sequence[Any] | None = None,
    *,
    tau: ArrayLike | None = None,
) -> list:
    """:func:`top_interactions` for every leading index: nested lists shaped like ``*batch``.

    ``tau`` (optional) broadcasts against the leading axes (one τ per sample).
    """
    arrays = [np.asarray(a) for a in _and_or_arrays(i_and, i_or)]
    batch = arrays[0].shape[:-1]
    if tau is not None:
        check_tau(tau, "tau", batch)
    taus = None if tau is None else np.broadcast_to(np.asarray(tau, dtype=float), batch)

    def rec(index: tuple[int, ...]) -> list:
        if len(index) == len(batch):
            sub = [a[index] for a in arrays]
            t = None if taus is None else float(taus[index])
            return top_interactions(sub[0], sub[1] if len(sub) == 2 else None, k, players, tau=t)
        return [rec(index + (j,)) for j in range(batch[len(index)])]

    return rec(())


# --------------------------------------------------------------------------------------------
# The result object

_FORMAT = "jinter.Interactions"
_FORMAT_VERSION = 1
_ARRAY_FIELDS = ("I_and", "I_or", "tau", "v", "q", "gamma", "objective", "gap")
_SUBSET_FIELDS = ("I_or", "v", "q", "gamma")  # same shape as I_and when present
_FILE_KEYS = {"I_and": "i_and", "I_or": "i_or"}  # names in .npz / JSON files (format 1, unchanged)
_RESULT_EXTRAS = ("lower_bound", "iterations", "converged")


class _ReadOnlyDict(dict):
    """A ``dict`` (so JSON writes it and it compares equal to one) that refuses changes."""

    def _refuse(self, *args: Any, **kwargs: Any):
        raise TypeError("Interactions.metadata is read-only (the result is frozen); build a new object with "
                        "dataclasses.replace(x, metadata={**x.metadata, ...})")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _refuse

    def __reduce__(self):  # copy, deepcopy and pickle rebuild it whole instead of item by item
        return (type(self), (dict(self),))


class _ReadOnlyList(list):
    """A ``list`` that refuses changes (inside read-only metadata)."""

    _refuse = _ReadOnlyDict._refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = append = extend = insert = pop = remove = _refuse
    clear = sort = reverse = _refuse

    def __reduce__(self):
        return (type(self), (list(self),))


def _read_only(x: Any) -> Any:
    """JSON data with every dict and list replaced by a read-only one."""
    if isinstance(x, dict):
        return _ReadOnlyDict({k: _read_only(v) for k, v in x.items()})
    if isinstance(x, list):
        return _ReadOnlyList(_read_only(v) for v in x)
    return x


def _jsonable(x: Any) -> Any:
    if isinstance(x, (np.ndarray, np.generic, jax.Array)):
        return np.asarray(x).tolist()
    return x


def _in_held_precision(method: Any) -> Any:
    """Run an :class:`Interactions` method in the precision of the arrays it holds
    (:func:`jinter._checks.held_precision`: float64 arrays are not rounded to float32 when
    ``jax_enable_x64`` is off)."""

    @functools.wraps(method)
    def run(self: Interactions, *args: Any, **kwargs: Any) -> Any:
        others = [a.I_and for a in args if isinstance(a, Interactions)]
        with held_precision(self.I_and, *others):
            return method(self, *args, **kwargs)

    return run


def _resolve_tau(
    tau: Any,
    tau_frac: float | None,
    i_and: np.ndarray,
    i_or: np.ndarray | None,
    v: np.ndarray | None,
    sample_axis: int | None,
) -> tuple[np.ndarray, str]:
    with held_precision(i_and, v):
        return _tau_rule(tau, tau_frac, i_and, i_or, v, sample_axis)


def _tau_rule(tau, tau_frac, i_and, i_or, v, sample_axis):
    if isinstance(tau, str):
        check_option(tau, "tau", get_args(_TauRule), otherwise="a number/array")
        if tau == "relative":
            frac = 0.05 if tau_frac is None else check_real(tau_frac, "tau_frac", above=0.0)
            return np.asarray(tau_relative(i_and, i_or, frac)), f"relative(frac={frac!r})"
        if v is None:  # tau == "output"
            raise ValueError('tau="output" needs the outputs v on all masks')
        frac = 0.03 if tau_frac is None else check_real(tau_frac, "tau_frac", above=0.0)
        t = np.asarray(tau_output(v, frac, sample_axis, keepdims=True))
        if t.size == 1:
            t = t.reshape(())
        return t, f"output(frac={frac!r}, sample_axis={sample_axis})"
    if tau_frac is not None:
        raise ValueError("tau_frac only applies to tau='relative' or tau='output'")
    return np.asarray(tau), "fixed"


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Interactions:
    """AND-OR interactions with their threshold and provenance (a read-only value object).

    The stateful convenience on top of the pure functions of :mod:`jinter.statistics` and
    :mod:`jinter.generalization`: every method calls one of them. Arrays are read-only numpy copies.

    Attributes:
        I_and: AND interactions ``(..., 2**n)``; ``I_and[..., 0]`` holds the bias. ``I_and`` and
            ``I_or`` are the one spelling of every jinter result type (:class:`~jinter.AndOrResult`,
            :class:`~jinter.SharedAndOrResult`, :class:`~jinter.sweep.SweepResult`,
            :class:`Interactions`); ``i_and``/``i_or`` remain read-only aliases here for code
            written against jinter 0.1.
        I_or: OR interactions of the same shape (``I_or[..., 0] = 0``), or ``None``.
        n: number of players (checked against the arrays; inferred if ``None``).
        tau: salience threshold, broadcasting against the leading axes.
        tau_rule: how ``tau`` was chosen, e.g. ``"relative(frac=0.05)"`` [R24, C24],
            ``"output(frac=0.03, sample_axis=0)"`` [D24] or ``"fixed"``.
        v, q, gamma: optional outputs on all masks, noise term and AND-OR split (docs/math.md §3).
        objective, gap: optional ℓ1 objective and duality gap of the decomposition.
        players: optional player names (length n).
        metadata: free-form JSON-serializable dict.
    """

    I_and: np.ndarray
    I_or: np.ndarray | None = None
    n: int | None = None
    tau: Any = 0.0
    tau_rule: str = "fixed"
    v: np.ndarray | None = None
    q: np.ndarray | None = None
    gamma: np.ndarray | None = None
    objective: np.ndarray | None = None
    gap: np.ndarray | None = None
    players: tuple[str, ...] | None = None
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        put = lambda k, x: object.__setattr__(self, k, x)  # noqa: E731 - frozen dataclass
        for name in _ARRAY_FIELDS:
            x = getattr(self, name)
            if x is None:
                continue
            a = np.array(x)
            if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
                raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
            if a.dtype.itemsize > 8:  # long double: JAX computes in at most float64, and JSON holds float64
                raise ValueError(f"{name} has dtype {a.dtype}; jinter holds at most 64-bit values "
                                 f"(convert with .astype(np.float64) if the rounding is acceptable)")
            if np.issubdtype(a.dtype, np.integer):  # values are real numbers: integer sums would wrap
                a = a.astype(np.float64)
            elif not a.dtype.isnative:  # e.g. '>f8' from a file: the same values in native order
                a = a.astype(a.dtype.newbyteorder("="))
            if name == "I_and" or name in _SUBSET_FIELDS:
                check_finite(a, name)  # names the mask
            elif not np.all(np.isfinite(a)):
                raise ValueError(f"{name} contains NaN or infinite values")
            a.setflags(write=False)
            put(name, a)
        n = num_players(self.I_and, what="i_and")
        if self.n is not None and (isinstance(self.n, (bool, np.bool_)) or check_int(self.n, "n", 0) != n):
            raise ValueError(f"n={self.n} does not match i_and with last axis {self.I_and.shape[-1]}")
        put("n", n)
        for name in _SUBSET_FIELDS:
            x = getattr(self, name)
            if x is not None and x.shape != self.I_and.shape:
                raise ValueError(f"{name} must have the shape of i_and {self.I_and.shape}, got {x.shape}")
        batch = self.batch_shape
        check_tau(self.tau, "tau", batch)
        for name in ("objective", "gap"):  # per sample, or per input of a shared split (models first)
            x = getattr(self, name)
            if x is not None and not broadcasts_to(x.shape, batch):
                raise ValueError(f"{name} must have one value per sample (broadcasting to {batch}), got {x.shape}")
            if x is not None and np.any(x < 0):  # an ℓ1 objective and a relative duality gap are ≥ 0
                raise ValueError(f"{name} must be ≥ 0, got {x.min()}")
        if not isinstance(self.tau_rule, str):
            raise ValueError(f"tau_rule must be a string describing how tau was chosen, got {self.tau_rule!r}")
        put("players", player_names(self.players, n))
        if not isinstance(self.metadata, Mapping):
            raise ValueError(f"metadata must be a mapping with string keys, got {type(self.metadata).__name__}")
        meta = dict(self.metadata)
        try:
            if not all(isinstance(k, str) for k in _json_keys(meta)):
                raise ValueError("keys must be strings (JSON would turn them into strings on a round trip)")
            meta = json.loads(json.dumps(meta, allow_nan=False))  # stored as the file will hold it: tuples → lists
        except (TypeError, ValueError) as e:
            raise ValueError(f"metadata must be JSON-serializable: {e}") from None
        put("metadata", _read_only(meta))

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_arrays(
        cls,
        i_and: Float[ArrayLike, "*batch 2**n"],
        i_or: Float[ArrayLike, "*batch 2**n"] | None = None,
        *,
        v: Float[ArrayLike, "*batch 2**n"] | None = None,
        tau: _TauRule | ArrayLike = "relative",
        tau_frac: float | None = None,
        sample_axis: int | None = 0,
        players: Sequence[Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Interactions:
        """Build from arrays, choosing τ by rule.

        Args:
            tau: ``"relative"`` (``frac·max|I|`` per sample, frac 0.05 [R24, C24]),
                ``"output"`` (``frac·E_x|v(x_N) − v(x_∅)|``, frac 0.03 [D24], needs ``v``;
                averaged over ``sample_axis``) or a fixed number/array.
            tau_frac: overrides the default fraction of the rule.
            fields: other dataclass fields (``q``, ``gamma``, ``objective``, ``gap``).
        """
        i_and = np.asarray(i_and)
        i_or = None if i_or is None else np.asarray(i_or)
        v = None if v is None else np.asarray(v)
        t, rule = _resolve_tau(tau, tau_frac, i_and, i_or, v, sample_axis)
        return cls(
            I_and=i_and, I_or=i_or, tau=t, tau_rule=rule, v=v, players=players,
            metadata=dict(metadata or {}), **fields,
        )  # fmt: skip

    @classmethod
    def from_and_or(
        cls,
        result: Any,
        v: Float[ArrayLike, "*batch 2**n"] | None = None,
        players: Sequence[Any] | None = None,
        tau: _TauRule | ArrayLike = "relative",
        metadata: Mapping[str, Any] | None = None,
        *,
        tau_frac: float | None = None,
        sample_axis: int | None | Literal["auto"] = "auto",
    ) -> Interactions:
        """Build from an AND-OR decomposition result: an :class:`~jinter.AndOrResult` or a
        :class:`~jinter.SharedAndOrResult` (of a :class:`~jinter.sweep.SweepResult`, pass its
        ``and_or``). Its ``I_and``, ``I_or``, ``q``, ``objective``, ``gap`` and (AndOrResult)
        ``gamma`` are kept; ``lower_bound``, ``iterations`` and ``converged`` go to
        ``metadata["decomposition"]``. τ as in :meth:`from_arrays`; ``sample_axis="auto"`` (the
        default) averages ``tau="output"`` over axis 0 of an ``AndOrResult`` and over axis 1 of a
        ``SharedAndOrResult`` (its axis 0 holds the models: one τ per model, as for one model).
        A :class:`~jinter.sweep.SweepResult`'s ``and_or`` has the axes checkpoint × sample: pass
        ``sample_axis=1`` for one τ per checkpoint, as the demo's report uses.

        Raises:
            TypeError: ``result`` is of another type.
        """
        shared = isinstance(result, SharedAndOrResult)
        if isinstance(result, AndOrResult):
            gamma = result.gamma
        elif shared:
            gamma = None  # per model γ̄ + γ̂^(i), not one array of the result
        else:
            raise TypeError(
                "result must be an AndOrResult or a SharedAndOrResult (of a SweepResult, pass "
                f"sweep.and_or), got {type(result).__name__}"
            )
        if isinstance(sample_axis, str):
            check_option(sample_axis, "sample_axis", ("auto",), otherwise="an axis or None")
            sample_axis = (1 if np.ndim(result.I_and) > 2 else None) if shared else 0
        meta = dict(metadata or {})
        extras = {k: _jsonable(x) for k in _RESULT_EXTRAS if (x := getattr(result, k)) is not None}
        if extras and "decomposition" in meta:
            raise ValueError('metadata["decomposition"] is where from_and_or keeps the solver\'s lower_bound, '
                             "iterations and converged; use another key")
        if extras:
            meta["decomposition"] = extras
        return cls.from_arrays(
            result.I_and, result.I_or, v=v, tau=tau, tau_frac=tau_frac, sample_axis=sample_axis,
            players=players, metadata=meta, q=result.q, gamma=gamma, objective=result.objective,
            gap=result.gap,
        )  # fmt: skip

    def with_tau(
        self, tau: _TauRule | ArrayLike, tau_frac: float | None = None, sample_axis: int | None = 0
    ) -> Interactions:
        """A copy with τ chosen again (same rules as :meth:`from_arrays`)."""
        t, rule = _resolve_tau(tau, tau_frac, self.I_and, self.I_or, self.v, sample_axis)
        return dataclasses.replace(self, tau=t, tau_rule=rule)

    # ---------------------------------------------------------------- basics
    @property
    def i_and(self) -> np.ndarray:
        """Alias of :attr:`I_and` (jinter 0.1's spelling)."""
        return self.I_and

    @property
    def i_or(self) -> np.ndarray | None:
        """Alias of :attr:`I_or` (jinter 0.1's spelling)."""
        return self.I_or

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Leading (sample) axes of the interaction arrays."""
        return self.I_and.shape[:-1]

    def __repr__(self) -> str:
        kinds = "AND-OR" if self.I_or is not None else "AND"
        return (
            f"Interactions({kinds}, n={self.n}, batch_shape={self.batch_shape}, "
            f"dtype={self.I_and.dtype}, tau_rule={self.tau_rule!r})"
        )

    def _sample_index(self, sample: int | tuple[int, ...] | None) -> tuple[int, ...]:
        if sample is None:
            if self.batch_shape:
                raise ValueError(f"batch shape is {self.batch_shape}: pass sample=(index of one sample)")
            return ()
        return sample_index(sample, self.batch_shape)

    def _tau_of(self, index: tuple[int, ...]) -> float:
        return float(np.broadcast_to(self.tau, self.batch_shape)[index])

    # ---------------------------------------------------------------- analysis
    @_in_held_precision
    def salient_mask(self) -> tuple[np.ndarray, np.ndarray | None]:
        """``(salient AND, salient OR)`` boolean masks (:func:`salient_mask`)."""
        return tuple(
            None if i is None else np.asarray(salient_mask(i, self.tau)) for i in (self.I_and, self.I_or)
        )  # type: ignore[return-value]

    @_in_held_precision
    def salient_counts(self) -> np.ndarray:
        """Per sample ``R^(k)`` (:func:`salient_counts`)."""
        return np.asarray(salient_counts(self.I_and, self.I_or, self.tau))

    @_in_held_precision
    def order_distribution(self, sample_axis: int | None = 0) -> np.ndarray:
        """Normalized ``I^(k)`` of [D24] (:func:`order_distribution`)."""
        return np.asarray(order_distribution(self.I_and, self.I_or, self.tau, sample_axis=sample_axis))

    @_in_held_precision
    def signed_order_strength(self) -> tuple[np.ndarray, np.ndarray]:
        """Per sample ``(A^(k),+, A^(k),−)`` (:func:`signed_order_strength`)."""
        pos, neg = signed_order_strength(self.I_and, self.I_or, self.tau)
        return np.asarray(pos), np.asarray(neg)

    @_in_held_precision
    def sparsity_curve(self, sample_axis: int | None = 0) -> np.ndarray:
        """Sorted normalized strengths (:func:`sparsity_curve`)."""
        return np.asarray(sparsity_curve(self.I_and, self.I_or, sample_axis))

    @_in_held_precision
    def top(
        self, k: int = 10, sample: int | tuple[int, ...] | None = None, *, salient_only: bool = False
    ) -> list[InteractionRecord]:
        """The ``k`` strongest interactions of one sample (:func:`top_interactions`)."""
        check_bool(salient_only, "salient_only")
        index = self._sample_index(sample)
        return top_interactions(
            self.I_and[index], None if self.I_or is None else self.I_or[index], k, self.players,
            tau=self._tau_of(index) if salient_only else None,
        )  # fmt: skip

    @_in_held_precision
    def generalization_power(self, base: Interactions, *, sample_axis: int | None = 0) -> GeneralizationPower:
        """[H25] generalization power against a baseline model's interactions, each with its τ."""
        if not isinstance(base, Interactions):
            raise TypeError(f"base must be an Interactions object (with its own τ), got {type(base).__name__}; "
                            "for arrays use jinter.generalization_power(i_model, i_base, tau_model, tau_base)")
        return generalization_power(self, base, self.tau, base.tau, sample_axis=sample_axis)

    @_in_held_precision
    def to_table(
        self,
        sample: int | tuple[int, ...] | None = None,
        *,
        salient_only: bool = False,
        include_bias: bool = False,
    ) -> list[dict[str, Any]]:
        """Plain rows ``{mask, players, order, type, value, salient}`` (plus ``names`` when
        players are named and ``sample`` for batches without a chosen ``sample``).

        The bias ``i_and[..., 0]`` is a row of type ``"bias"`` only with ``include_bias``.
        """
        check_bool(salient_only, "salient_only")
        check_bool(include_bias, "include_bias")
        if sample is not None or not self.batch_shape:
            indices = [self._sample_index(sample)]
            with_sample = False
        else:
            indices = list(np.ndindex(*self.batch_shape))
            with_sample = True
        who = [mask_to_players(m) for m in range(2**self.n)]
        sal_and, sal_or = self.salient_mask()
        kinds = [("and", self.I_and, sal_and)] + ([("or", self.I_or, sal_or)] if self.I_or is not None else [])
        rows = []
        for index in indices:
            for kind, arr, sal in kinds:
                vals, flags = arr[index].tolist(), sal[index].tolist()
                for mask in range(0 if (include_bias and kind == "and") else 1, 2**self.n):
                    if salient_only and not flags[mask]:
                        continue
                    row: dict[str, Any] = {}
                    if with_sample:
                        row["sample"] = index
                    row.update(
                        mask=mask, players=who[mask], order=len(who[mask]),
                        type=kind if mask else "bias", value=vals[mask], salient=bool(flags[mask]),
                    )  # fmt: skip
                    if self.players is not None:
                        row["names"] = tuple(self.players[p] for p in who[mask])
                    rows.append(row)
        return rows

    # ---------------------------------------------------------------- persistence
    def _header(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "n": self.n,
            "tau_rule": self.tau_rule,
            "players": None if self.players is None else list(self.players),
            "metadata": self.metadata,
            "arrays": sorted(self._arrays()),  # what the file holds: a reader refuses a file missing one
        }

    @classmethod
    def _from_parts(cls, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Interactions:
        if not isinstance(header, Mapping):
            raise ValueError(f"its header is a {type(header).__name__}, not a mapping")
        if header.get("format") != _FORMAT:
            raise ValueError(f"not a {_FORMAT} file (format={header.get('format')!r})")
        version = header.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"its format version must be an integer ≥ 1, got {version!r}")
        if version > _FORMAT_VERSION:
            raise ValueError(f"file format version {version} is newer than {_FORMAT_VERSION}")
        unknown = sorted(set(arrays) - {_FILE_KEYS.get(k, k) for k in _ARRAY_FIELDS})
        if unknown:
            raise ValueError(f"it holds arrays that are not fields of {_FORMAT}: {unknown}")
        players = header.get("players")
        listed = header.get("arrays")  # absent in files written before it was recorded
        if listed is not None and sorted(listed) != sorted(arrays):
            missing, extra = sorted(set(listed) - set(arrays)), sorted(set(arrays) - set(listed))
            raise ValueError(f"its arrays do not match its header: missing {missing}, not listed {extra}")
        return cls(
            **{k: arrays[_FILE_KEYS.get(k, k)] for k in _ARRAY_FIELDS if _FILE_KEYS.get(k, k) in arrays},
            n=header["n"], tau_rule=header["tau_rule"],
            players=None if players is None else tuple(players), metadata=header.get("metadata", {}),
        )  # fmt: skip

    def _arrays(self) -> dict[str, np.ndarray]:
        return {_FILE_KEYS.get(k, k): getattr(self, k) for k in _ARRAY_FIELDS if getattr(self, k) is not None}

    def save(self, path: str | os.PathLike) -> None:
        """Write an ``.npz`` file: the arrays bit-exact plus a JSON header entry (no pickle).

        The file is written atomically (an existing one is replaced only by a complete file)."""
        buf = io.BytesIO()
        np.savez(buf, header_json=np.array(json.dumps(self._header())), **self._arrays())
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Interactions:
        """Read a file written by :meth:`save`; a file that is not one (or is cut short) is a
        ``ValueError`` naming it."""
        try:
            with open(path, "rb") as f:  # our handle: closed however np.load fails
                if not zipfile.is_zipfile(f):
                    raise ValueError("not an .npz archive (Interactions.save writes one)")
                f.seek(0)
                z = np.load(f, allow_pickle=False)
                if not isinstance(z, np.lib.npyio.NpzFile):
                    raise ValueError(f"not a {_FORMAT} file (a single array, no header)")
                with z:
                    if "header_json" not in z.files:
                        raise ValueError(f"not a {_FORMAT} file (no header)")
                    header = json.loads(str(z["header_json"]))
                    arrays = {k: z[k] for k in z.files if k != "header_json"}
            return cls._from_parts(header, arrays)
        except FileNotFoundError:
            raise
        except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile) as e:
            raise ValueError(f"{os.fspath(path)!r} is not a readable {_FORMAT} file: {e}") from e

    def to_json(self, **dumps_kwargs: Any) -> str:
        """JSON text with every array as ``{dtype, shape, data}``; :meth:`from_json` restores it
        exactly (floats are written with round-trip precision)."""
        doc = self._header()
        doc["arrays"] = {
            k: {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.ravel().tolist()}
            for k, a in self._arrays().items()
        }
        return json.dumps(doc, **dumps_kwargs)

    @classmethod
    def from_json(cls, text: str) -> Interactions:
        """Inverse of :meth:`to_json`."""
        try:
            doc = json.loads(text)
            arrays = {k: _json_array(k, e) for k, e in doc.get("arrays", {}).items()}
            return cls._from_parts(doc, arrays)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"not a readable {_FORMAT} JSON document: {type(e).__name__}: {e}") from e

    def to_shapiq_json(
        self,
        kind: _Kind = "and",
        sample: int | tuple[int, ...] | None = None,
        path: str | os.PathLike | None = None,
        *,
        salient_only: bool = False,
    ) -> dict[str, Any]:
        """One sample in the JSON layout of shapiq's ``InteractionValues.to_json_file``
        (:func:`jinter.shapiq_io.to_shapiq_json` with this object's τ, τ rule and player names).

        Args:
            kind: ``"and"`` (index ``"Moebius"``) or ``"or"`` (``"Co-Moebius"``, values converted).
            sample: index of the sample for batched interactions.
            path: if given, the document is also written there (``.json``).
            salient_only: keep only salient interactions (``|I| ≥ τ``) besides ``()``.

        Returns:
            The JSON document as a dict.
        """
        check_option(kind, "kind", get_args(_Kind))
        index = self._sample_index(sample)
        return to_shapiq_json(
            self.I_and[index], None if self.I_or is None else self.I_or[index], kind, path,
            tau=self._tau_of(index), salient_only=salient_only, tau_rule=self.tau_rule,
            players=self.players, sample=index, created_from="jinter.Interactions",
        )  # fmt: skip


InteractionResult.register(Interactions)
