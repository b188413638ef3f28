"""Small shared numeric helpers: one home for rules that several modules apply.

Tiny denominators. XLA on CPU and GPU flushes subnormal floats to zero in comparisons and
arithmetic (``5e-324 > 0`` is ``False`` on the device, ``True`` in numpy), so a rule such as
"divide by the scale unless it is 0" gives different answers on different backends for scales
below the smallest normal number. Every division by a data-dependent scale in jinter therefore
goes through :func:`safe_divide`: a denominator whose magnitude is below ``finfo(dtype).tiny``
(zero or subnormal) counts as zero, and the quotient takes ``fill`` instead. The answer is the
same in numpy, on CPU and on accelerators.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike


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


def json_list(x: Any) -> Any:
    """``x`` as JSON-ready nested lists; non-finite floats become ``None`` (JSON has no NaN)."""
    if x is None:
        return None
    a = np.asarray(x)
    if a.dtype.kind == "f":
        a = np.where(np.isfinite(a), a, np.nan)
        return [None if np.isnan(e) else float(e) for e in a.ravel()] if a.ndim == 1 else [json_list(r) for r in a]
    return a.tolist()
