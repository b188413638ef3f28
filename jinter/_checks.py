"""Small shared numeric helpers: one home for rules that several modules apply.

Tiny denominators. XLA on CPU and GPU flushes subnormal floats to zero in comparisons and
arithmetic (``5e-324 > 0`` is ``False`` on the device, ``True`` in numpy), so a rule such as
"divide by the scale unless it is 0" gives different answers on different backends for scales
below the smallest normal number. Every division by a data-dependent scale in jinter therefore
goes through :func:`safe_divide` (host floats in float64: :func:`safe_divide_host`): a
denominator whose magnitude is below ``finfo(dtype).tiny`` (zero or subnormal) counts as zero,
and the quotient takes ``fill`` instead. The answer is the same in numpy, on CPU and on
accelerators. (A *floor* that keeps a quantity positive, e.g. a ridge ``1e-10·max(scale, 1e-300)``,
is not a division and keeps its own constant.)

Options. :func:`check_int` and :func:`check_real` are the checks of numeric keyword options:
a bool, a non-integral or non-finite number, a string, or a value out of range is a
``ValueError`` naming the option, never a silent conversion (``2.5`` run as ``2``) or a raw
error from deep inside.

Non-finite values. :func:`check_finite` is the one check of "no NaN or inf in values over
masks": its message names the argument, the first offending mask (and batch index), that
mask's players and how many values are non-finite.
"""

from __future__ import annotations

import contextlib
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike


def held_precision(*arrays: Any) -> Any:
    """A context in which JAX computes in float64 when any of ``arrays`` (host arrays a result
    object holds) is float64 while ``jax_enable_x64`` is off; otherwise a no-op context. A
    result object's statistics then work in the dtype of the numbers it holds, not in the
    float32 that JAX would silently round them to."""
    if jax.config.jax_enable_x64 or not any(a is not None and np.asarray(a).dtype == np.float64 for a in arrays):
        return contextlib.nullcontext()
    enable = getattr(jax, "enable_x64", None)
    if enable is None:  # jax < 0.6
        from jax.experimental import enable_x64 as enable
    return enable(True)


def is_traced(*trees: Any) -> bool:
    """Whether any leaf of ``trees`` is a JAX tracer (inside ``jit``/``vmap``/``grad``): then
    value checks that need concrete numbers are skipped (the caller's shapes are still checked)."""
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(trees))


def default_tol(dtype: Any) -> float:
    """The default certified relative duality gap of the AND-OR solvers for values of ``dtype``:
    1e-5 in float64, 1e-3 in float32 and below (whose rounding stalls the certificate near 1e-4)."""
    return 1e-5 if jnp.dtype(dtype) == jnp.float64 else 1e-3


def as_real_float(x: ArrayLike, what: str) -> Array:
    """``x`` as a JAX float array; integers and booleans are promoted, complex is refused.

    Casting complex values to float would silently drop their imaginary parts, so it is an
    error naming the argument.
    """
    x = x if isinstance(x, jax.Array) else jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise TypeError(f"{what} is complex ({x.dtype}); interactions need real values: pass the real "
                        "part (or abs) explicitly if that is what you mean")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def check_numbers(x: Any, what: str) -> np.dtype:
    """The dtype of ``x`` (no host copy of a device array); strings, objects and other
    non-numbers are a ``TypeError`` naming ``what``."""
    dtype = np.dtype(x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype)
    if dtype.kind not in "biufc":
        raise TypeError(f"{what} must hold numbers, got dtype {dtype}")
    return dtype


def host_real(x: Any, what: str) -> np.ndarray:
    """``x`` as a numpy float64 array of real numbers (host data, e.g. a curve to draw):
    complex values and non-numbers are a ``TypeError`` naming ``what``, never a silent cast."""
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as e:  # ragged sequences
        raise TypeError(f"{what} must be an array of real numbers: {e}") from None
    if np.iscomplexobj(a):
        raise TypeError(f"{what} is complex ({a.dtype}); pass the real part (or abs) explicitly if that is what you mean")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold real numbers, got dtype {a.dtype}")
    return a.astype(np.float64)


def check_option(value: Any, what: str, allowed: Sequence[str | None], *, otherwise: str | None = None) -> None:
    """Refuse a value of a string option that is not one of ``allowed``: a ``ValueError``
    naming the option and listing its values (``otherwise``: what else the option accepts,
    e.g. ``"an array"``, checked by the caller).

    The allowed values are the arguments of the option's ``Literal`` type
    (``typing.get_args``), so the hint and the check cannot drift apart.

    >>> check_option("median", "baseline", ("zeros", "mean"), otherwise="an array")
    Traceback (most recent call last):
    ...
    ValueError: baseline must be 'zeros', 'mean' or an array, got 'median'
    """
    if (value is None or isinstance(value, str)) and value in allowed:
        return
    choices = [repr(a) for a in allowed] + ([otherwise] if otherwise else [])
    listed = choices[0] if len(choices) == 1 else ", ".join(choices[:-1]) + " or " + choices[-1]
    raise ValueError(f"{what} must be {listed}, got {value!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _number(value: Any) -> float | None:
    """A concrete real number (Python, numpy or 0-d array, not bool) as a float, else None."""
    if isinstance(value, (np.ndarray, jax.Array)) and value.ndim == 0 and not is_traced(value):
        if np.issubdtype(value.dtype, np.integer) or np.issubdtype(value.dtype, np.floating):
            return float(value)
        return None
    return float(value) if _is_number(value) else None


def check_int(value: Any, what: str, least: int, *, none: bool = False, most: int | None = None) -> int | None:
    """``value`` as a Python int ``≥ least`` (and ``≤ most``); ``none=True`` also lets ``None`` through.

    Integral floats (``1e4``) are accepted; bools, fractions, NaN/inf and strings are refused
    with a ``ValueError`` naming the option.

    >>> check_int(3, "patience", 1), check_int(1e4, "budget", 1), check_int(None, "max_order", 1, none=True)
    (3, 10000, None)
    >>> check_int(2.5, "max_order", 1)
    Traceback (most recent call last):
    ...
    ValueError: max_order must be an integer ≥ 1, got 2.5
    """
    if value is None and none:
        return None
    exact = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if isinstance(value, (np.ndarray, jax.Array)) and value.ndim == 0 and not is_traced(value):
        exact = bool(np.issubdtype(value.dtype, np.integer))
    x = int(value) if exact else _number(value)  # an int stays exact (no float: seeds above 2**53)
    if x is None or not (exact or np.isfinite(x)) or x != int(x) or int(x) < least or (most is not None and int(x) > most):
        rule = f"≥ {least}" if most is None else f"in [{least}, {most}]"
        raise ValueError(f"{what} must be an integer {rule}{' or None' if none else ''}, got {value!r}")
    return int(x)


def check_real(value: Any, what: str, *, least: float | None = None, above: float | None = None,
               below: float | None = None, most: float | None = None) -> float:
    """``value`` as a finite Python float within the bounds given: ``≥ least``, ``> above``,
    ``< below``, ``≤ most`` (0-d numpy / JAX arrays are accepted; bools and strings are not).

    >>> check_real(0.001, "r2_slack", least=0.0), check_real(0.1, "holdout", above=0.0, below=1.0)
    (0.001, 0.1)
    >>> check_real(float("nan"), "r2_slack", least=0.0)
    Traceback (most recent call last):
    ...
    ValueError: r2_slack must be a finite number ≥ 0, got nan
    """
    x = _number(value)
    bounds = [(least, "≥", lambda a, b: a >= b), (above, ">", lambda a, b: a > b),
              (below, "<", lambda a, b: a < b), (most, "≤", lambda a, b: a <= b)]
    ok = x is not None and np.isfinite(x) and all(b is None or test(x, b) for b, _, test in bounds)
    if not ok:
        low = [f"{sign} {b:g}" for b, sign, _ in bounds[:2] if b is not None]
        high = [f"{sign} {b:g}" for b, sign, _ in bounds[2:] if b is not None]
        if low and high:
            rule = f"in {'[' if least is not None else '('}{(least if least is not None else above):g}, " \
                   f"{(most if most is not None else below):g}{']' if most is not None else ')'}"
        else:
            rule = " and ".join(low + high)
        raise ValueError(f"{what} must be a finite number{' ' + rule if rule else ''}, got {value!r}")
    return float(x)


def check_ints(values: Any, what: str, least: int = 0, *, flatten: bool = False) -> tuple[int, ...]:
    """A sequence of integers ``≥ least`` as a tuple (each entry as :func:`check_int`); a string, a
    scalar, or (without ``flatten``) a nested sequence is a ``TypeError`` naming ``what``.

    >>> check_ints((8, 8), "image_shape", 1), check_ints([[0, 2]], "groups", flatten=True)
    ((8, 8), (0, 2))
    """
    arr = None if isinstance(values, (str, bytes)) else np.asarray(values, dtype=object)
    if arr is None or arr.ndim == 0 or (not flatten and arr.ndim != 1):
        raise TypeError(f"{what} must be a sequence of integers, got {values!r}")
    return tuple(check_int(v, what + " entries", least) for v in arr.reshape(-1))


def check_axis(axis: Any, batch_ndim: int | tuple[int, ...], what: str = "sample_axis") -> int | None:
    """``axis`` of the ``batch_ndim`` leading (batch) axes as a non-negative int, or ``None``.

    Negative values count from the last batch axis (``-1`` is the last leading axis, never the
    subset axis). With no batch axes any integer is accepted and there is nothing to average.
    Given the batch *shape* instead of its length, an axis of length 0 (nothing to average:
    the mean would be NaN) is refused too.

    >>> check_axis(-1, 2), check_axis(0, 0), check_axis(None, 3)
    (1, 0, None)
    >>> check_axis(2, 2)
    Traceback (most recent call last):
    ...
    ValueError: sample_axis must be None or an integer in [-2, 2) (one of the 2 leading axes), got 2
    """
    if axis is None:
        return None
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, (bool, np.bool_)):
        raise ValueError(f"{what} must be None or an integer, got {axis!r}")
    shape = batch_ndim if isinstance(batch_ndim, tuple) else None
    batch_ndim = len(shape) if shape is not None else batch_ndim
    axis = int(axis)
    if batch_ndim == 0:
        return axis
    if not -batch_ndim <= axis < batch_ndim:
        raise ValueError(f"{what} must be None or an integer in [{-batch_ndim}, {batch_ndim}) "
                         f"(one of the {batch_ndim} leading axes), got {axis}")
    if shape is not None and shape[axis % batch_ndim] == 0:
        raise ValueError(f"{what}={axis} averages over an axis of length 0 (batch shape {shape}): there are no samples")
    return axis % batch_ndim


def broadcasts_to(shape: tuple[int, ...], batch: tuple[int, ...]) -> bool:
    """``shape`` broadcasts to ``batch`` without adding or growing axes beyond it."""
    try:
        return np.broadcast_shapes(shape, batch) == batch
    except ValueError:
        return False


def check_tau(tau: ArrayLike, what: str = "tau", batch: tuple[int, ...] | None = None) -> None:
    """Refuse a concrete salience threshold that is NaN or negative (or not real), naming ``what``;
    with ``batch``, also one whose shape does not broadcast to it (one τ per sample or one for
    all; a τ that would add axes is refused too)."""
    if batch is not None:
        if not broadcasts_to(np.shape(tau), batch):
            check_tau(tau, what)  # NaN or negative first: the same message for every bad value
            raise ValueError(f"{what} must broadcast to the batch shape {batch} (one threshold per sample or one "
                             f"for all), got shape {np.shape(tau)}")
    if is_traced(tau):
        return
    t = np.asarray(tau)
    if not (np.issubdtype(t.dtype, np.floating) or np.issubdtype(t.dtype, np.integer)) or t.dtype == np.bool_:
        raise ValueError(f"{what} must be a real threshold ≥ 0 (or an array of them), got {tau!r}")
    if np.any(np.isnan(t)) or np.any(t < 0):
        raise ValueError(f"{what} must be ≥ 0 and not NaN, got {tau!r}")


def player_names(players: Sequence[Any] | None, n: int) -> tuple[str, ...] | None:
    """Names of all ``n`` players as strings (``None`` stays ``None``); a string, a non-sequence or
    another number of names is a ``ValueError`` naming ``players``."""
    if players is None:
        return None
    if isinstance(players, (str, bytes)) or not hasattr(players, "__iter__"):
        raise ValueError(f"players must be a sequence of n={n} player names, got {players!r}")
    given = list(players)
    if len(given) != n:
        raise ValueError(f"players must name all n={n} players, got {len(given)} names")
    for i, p in enumerate(given):
        if not isinstance(p, (str, np.str_, int, np.integer)) or isinstance(p, (bool, np.bool_)):
            raise ValueError(f"players must be names (strings, or integers written as strings), got {p!r} at "
                             f"position {i}")
    names = tuple(str(p) for p in given)
    if len(set(names)) != n:
        twice = sorted({p for p in names if names.count(p) > 1})
        raise ValueError(f"players must have distinct names, got {twice} more than once")
    return names


def sample_index(sample: Any, batch_shape: tuple[int, ...]) -> tuple[int, ...]:
    """``sample`` (an int, or a tuple with one int per batch axis; negative from the end) as the
    non-negative index of one sample of ``batch_shape``; anything else is a ``ValueError``.

    >>> sample_index(-1, (3,)), sample_index((0, 2), (2, 4))
    ((2,), (0, 2))
    """
    index = tuple(sample) if isinstance(sample, (tuple, list)) else (sample,)
    ok = len(index) == len(batch_shape) and all(
        isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)) and -b <= i < b
        for i, b in zip(index, batch_shape))
    if not ok:
        raise ValueError(f"sample {sample!r} does not index one sample of batch shape {batch_shape}")
    return tuple(int(i) % b for i, b in zip(index, batch_shape))


def check_bool(value: Any, what: str) -> bool:
    """``value`` as a bool; only ``True``/``False`` (numpy bools too) are accepted, by name."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be True or False, got {value!r}")
    return bool(value)


def tiny(dtype) -> float:
    """Smallest positive normal number of a floating ``dtype`` (integers: that of float64)."""
    dtype = np.dtype(dtype)
    return float(np.finfo(dtype if np.issubdtype(dtype, np.floating) else np.float64).tiny)


def safe_divide(num: ArrayLike, den: ArrayLike, fill: float = 0.0) -> Array:
    """``num / den`` where ``|den| ≥ tiny``, else ``fill`` (no NaN, no overflow from subnormals).

    >>> import jax.numpy as jnp
    >>> safe_divide(jnp.array([1.0, 1.0, 1.0]), jnp.array([2.0, 0.0, 1e-320])).tolist()
    [0.5, 0.0, 0.0]
    """
    num, den = jnp.asarray(num), jnp.asarray(den)
    ok = jnp.abs(den) >= tiny(jnp.result_type(num, den))
    return jnp.where(ok, num / jnp.where(ok, den, 1), fill)


def safe_divide_host(num: ArrayLike, den: ArrayLike, fill: float = 0.0) -> float | np.ndarray:
    """:func:`safe_divide` on the host, in float64 whatever ``jax_enable_x64`` says: ``num / den``
    where ``|den| ≥ finfo(float64).tiny``, else ``fill``; a float for scalars, else an array.

    >>> safe_divide_host(1.0, 4.0), safe_divide_host(1.0, 0.0), safe_divide_host([1.0, 2.0], 1e-320)
    (0.25, 0.0, array([0., 0.]))
    """
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    ok = np.abs(den) >= tiny(np.float64)
    out = np.where(ok, num / np.where(ok, den, 1.0), fill)
    return float(out) if out.ndim == 0 else out


def _players_text(who: Sequence[int], limit: int = 20) -> str:
    """``(0, 3)``; past ``limit`` players ``(0, 1, …, 19, … (25 in all))``."""
    who = [int(i) for i in who]
    if len(who) <= limit:
        return str(tuple(who))
    return "(" + ", ".join(map(str, who[:limit])) + f", … ({len(who)} in all))"


def check_finite(
    x: ArrayLike,
    what: str,
    *,
    masks: ArrayLike | None = None,
    offset: int = 0,
    index_name: str = "mask",
    context: str = "",
    error: type[Exception] = ValueError,
) -> None:
    """Refuse NaN or inf in ``x``, values whose last axis runs over masks (skipped when traced).

    Raises ``error`` (a ``ValueError`` by default) naming ``what``, how many values are
    non-finite, and the first of them: the first entry along the last axis that has one, at its
    first batch index (the leading axes), with that entry's mask and players. ``context`` is
    appended to the message.

    Args:
        x: values of shape ``(*batch, m)`` (a scalar is named without a mask).
        what: the argument's name or description, the start of the message.
        masks: what entry ``j`` of the last axis is. ``None``: the integer mask ``offset + j``
            (``x`` over all ``2**n`` subsets); integers ``(m,)``: the integer mask ``masks[j]``;
            booleans ``(m, n)``: the mask row ``masks[j]``, numbered ``offset + j``.
        offset: the number of the first entry (``masks`` ``None`` or boolean rows).
        index_name: what the number is called (``"mask"``, ``"mask row"``).
        context: appended to the message (e.g. ``" in unit u0007"``).
        error: the exception class.

    >>> import numpy as np
    >>> check_finite(np.array([[0.0, 1.0, 2.0, 3.0], [0.0, np.inf, 2.0, np.nan]]), "v")
    Traceback (most recent call last):
    ...
    ValueError: v: 2 non-finite (NaN or inf) value(s), the first (inf) at batch index (1,), mask 1 = players (0,)
    >>> check_finite(np.array([1.0, np.nan]), "value_fn's output", masks=np.array([[1, 0, 0], [0, 1, 1]], bool),
    ...              offset=10, index_name="mask row")
    Traceback (most recent call last):
    ...
    ValueError: value_fn's output: 1 non-finite (NaN or inf) value(s), the first (nan) at mask row 11 = players (1, 2)
    """
    if is_traced(x):
        return
    a = np.asarray(x)
    if a.dtype.kind not in "fc":  # booleans and integers are finite
        return
    bad = ~np.isfinite(a)
    if not bad.any():
        return
    count = f"{int(bad.sum())} non-finite (NaN or inf) value(s)"
    if a.ndim == 0:
        raise error(f"{what}: {count} ({a.item()}){context}")
    m = a.shape[-1]
    flat = bad.reshape(-1, m)
    j = int(np.argmax(flat.any(axis=0)))  # the first offending mask, then its first batch index
    b = int(np.argmax(flat[:, j]))
    val = a.reshape(-1, m)[b, j].item()
    batch = a.shape[:-1]
    where = f"batch index {tuple(int(i) for i in np.unravel_index(b, batch))}, " if batch else ""
    rows = None if masks is None else np.asarray(masks)
    if rows is not None and rows.ndim == 2:
        label, who = offset + j, np.flatnonzero(rows[j]).tolist()
    else:
        label = offset + j if rows is None else int(rows[j])
        who = [i for i in range(label.bit_length()) if label >> i & 1]
    raise error(f"{what}: {count}, the first ({val}) at {where}{index_name} {label} = players "
                f"{_players_text(who)}{context}")


def kron_power(factor: ArrayLike, n: int) -> np.ndarray:
    """``factor ⊗ factor ⊗ … ⊗ factor`` (``n`` factors; ``n = 0``: ones of shape ``(1,)*ndim``),
    in numpy, built as ``kron(kron(1, factor), factor)…``. A 2×2 factor gives the ``2**n × 2**n``
    matrix of the transform over subsets, a vector of length 2 (a diagonal) the ``2**n``
    products over the bits.

    >>> kron_power(np.array([[1, 0], [1, 1]]), 2)
    array([[1, 0, 0, 0],
           [1, 1, 0, 0],
           [1, 0, 1, 0],
           [1, 1, 1, 1]])
    >>> kron_power(np.array([2.0, 3.0]), 2).tolist()
    [4.0, 6.0, 6.0, 9.0]
    """
    factor = np.asarray(factor)
    out = np.ones((1,) * factor.ndim, dtype=factor.dtype)
    for _ in range(int(n)):
        out = np.kron(out, factor)
    return out


def json_list(x: Any) -> Any:
    """``x`` as JSON-ready nested lists; non-finite floats become ``None`` (JSON has no NaN)."""
    if x is None:
        return None
    a = np.asarray(x)
    if a.dtype.kind == "f":
        a = np.where(np.isfinite(a), a, np.nan)
        return [None if np.isnan(e) else float(e) for e in a.ravel()] if a.ndim == 1 else [json_list(r) for r in a]
    return a.tolist()
