r"""Exact AND-OR decomposition at the certified optimum (docs/math.md §3, [D24] eq. 11, [C24]).

The split ``o_and = ½(v+q)+γ``, ``o_or = ½(v+q)−γ`` is chosen to minimize
``Σ_{T≠∅} |I_and(T)| + |I_or(T)|`` over ``γ`` and the noise ``q`` in its box. With
``u = mobius(o_and)`` the OR part is ``I_or = K u + c − L q`` where ``K = ⊗[[1,1],[0,−1]]``
(self-inverse), ``L = M·R = ⊗[[0,1],[1,−1]]`` (Möbius after index reversal, symmetric) and
``c = −L v``. So the problem is the ℓ1 program

    min_{u, |q|≤ρ}  Σ_{T≠∅} |u_T| + |(K u + c − L q)_T|,      ρ = q_ratio·|v(N) − v(∅)|,

whose operators are butterflies (O(n·2^n), never a ``2^n×2^n`` matrix). Its dual is

    max_y  ⟨y, c⟩ − ρ‖L y‖₁   s.t.  ‖y‖∞ ≤ 1, ‖Kᵀy‖∞ ≤ 1, y_∅ = 0

(``y_∅ = 0`` because the ∅ entries carry no cost; then ``(Kᵀy)_∅ = y_∅ = 0`` matches the free
``u_∅``; the ``q`` box contributes the support function ``ρ‖Lᵀy‖₁``). Any ``y`` rescaled to
feasibility gives a certified lower bound, so every iterate has a valid duality gap.

Solver: Douglas–Rachford splitting (ADMM) between the soft-threshold / box prox and the
projection on the affine set ``V = {(u, w, q) : w = K u + c − L q}``, accelerated by reflected
Halpern anchoring with adaptive restarts (as in restarted PDLP / r2HPDHG): the optax
transformation :func:`halpern` turns each fixed-point step into the anchored one, and
:func:`halpern_fixed_point` drives it inside a ``lax.while_loop`` that stops when the relative
duality gap is ≤ ``tol``.

* ``q_ratio = 0`` (no ``q``): the projection on ``{(u, K u + c)}`` is exact and costs a few
  butterflies, ``(I + KᵀK)⁻¹ = (⊗Q)(I + ⊗Λ)⁻¹(⊗Q)ᵀ`` from the 2×2 eigendecomposition of ``kᵀk``.
* ``q_ratio > 0``: the projection on ``V`` needs ``λ = G⁻¹ r`` with ``G = I + KKᵀ + LLᵀ``, a sum
  of two Kronecker products that do not commute (no single Kronecker diagonalization exists).
  In the Walsh–Hadamard basis ``G_h = I + ⊗[[½, ½], [½, 5/2]] + ⊗[[½, −½], [−½, 5/2]]``; its
  Kronecker diagonal is an excellent preconditioner (condition number ≈ 15 at n = 8, 38 at
  n = 10, vs 3·10³ / 2·10⁴ unpreconditioned), so preconditioned conjugate gradients (two
  butterflies a step), warm-started from the previous ``λ`` and stopped at a residual ≤ 0.2×
  the last fixed-point residual (inexact DR with errors that shrink with the residual), gives
  the projection (≈ 10 CG steps per iteration; warm-starting CG at the extrapolation
  ``2λ_k − λ_{k−1}`` saved 10% but left one random n = 6 game uncertified, so it is not used).
  On games of a trained MLP at n = 10 this converges to ``tol = 1e-5`` in 300–1500 iterations
  (≈ 0.1 s per game on a CPU); random Gaussian and planted-plus-noise games are harder
  (3–10k iterations, 0.2–0.8 s at ≈ 80 µs an iteration; n = 12: 6–20k at ≈ 320 µs). For n ≤ 10 in
  float64 the projection is instead exact (:func:`_splitting_graph`: the graph form in
  ``s = γ + ½q``, ``t = γ − ½q``, two butterfly solves and no inner CG; 35–45 µs an iteration at
  n = 10; docs/math.md §3.5). (The
  semi-proximal ADMM used before stalled or diverged.)

Active-set polish (``q_ratio > 0``, internal, off by default: ``_POLISH_EVERY = 0``): from an
iterate, guess the support of the interactions and the rows where the ``q`` box binds, and
solve the reduced equality system of that face exactly (:func:`_polish_active_set`, dense
Cholesky); its primal point and dual point are extra candidates for the same certificate, so a
wrong guess costs time only. Measured on hard n = 10 games it did not pay for itself (see
``_POLISH_EVERY``): the guess settles late, when the iteration is nearly done.

Safeguards: the loop keeps the best objective and the best lower bound seen at the checks, so
the result never gets worse while iterating; the objective is evaluated on the assembled
interactions and the bound on a rescaled feasible dual point, so the certificate
``lower_bound ≤ optimum ≤ objective`` holds for any iterate, however inexact the inner solves.

The shared decomposition of several models [C24] (:func:`and_or_shared`) uses the same
Halpern–Douglas–Rachford iteration; its graph projection is exact (see its docstring).

Precision: float64 reaches ``tol = 1e-5`` and below. In float32 the rounding of the certificate
stalls the gap near 1e-4 to 3e-4 at n = 10, so the float32 default is ``tol = 1e-3``; the
objective then agrees with the float64 optimum to 1e-4 to 4e-4 relative (measured at n = 8 to 12;
tested to 1e-3 at n = 6 and 7, with and without the noise term, and for the shared version).
A zero optimum is certified: differences within the rounding of the objective's sums
(``8(n+1)·eps`` times the objective of the all-AND split) count as a zero gap.

Tie rules (games with many optimal ``γ``): (1) ``γ`` is only defined up to a constant (a
constant shift changes no interaction with ``T ≠ ∅``); we fix ``γ(∅) = 0``, i.e.
``o_and(∅) = o_or(∅) = ½ b``. (2) The AND and the OR interaction of a single player are the
same function of S, so every game is degenerate along ``γ += δ·[i ∈ S]``, which moves δ from
``I_or({i})`` to ``I_and({i})``; :func:`and_or` reports the sum in ``I_and({i})`` and
``I_or({i}) = 0`` (at an optimum both share a sign, so the objective is unchanged; on an
iterate merging can only lower it). (3) Any other tie: with ``canonical=True`` the least
``‖γ‖₂² + ‖q‖₂²`` optimum (before merging singletons; unique, independent of the start), found
by Tikhonov continuation and verified (see :func:`and_or`); with ``canonical=False`` (default
for now) the iteration's own, which is deterministic and starts from zero (or ``warm_start``):
equal inputs give bit-identical outputs on a given backend, but not a characterized optimum.
The reported ``gamma`` is the split *after* merging singletons, so that
``mobius(½(v + q) + γ) = I_and`` off ∅.
:func:`and_or_shared` applies (1) and (3) only: there, moving a singleton between AND and OR
changes ``γ^(i)``, which the [C24] γ set constrains; its canonical optimum is the least
``‖γ̄‖₂² + Σ_i ‖γ̂^(i)‖₂² + ‖q^(i)‖₂²`` one (``γ̄(∅) = 0``, see :func:`and_or_shared`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import math
import os
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from jinter._budget import check_budget
from jinter._budget import memory_budget as _memory_budget
from jinter._checks import (
    as_real_float,
    check_finite,
    check_int,
    check_numbers,
    check_real,
    default_tol,
    is_traced,
    kron_power,
)
from jinter.transforms import kron_apply, mobius, num_players, or_mobius, or_zeta, zeta

__all__ = [
    "STATUS_CANONICAL",
    "STATUS_NOT_CANONICAL",
    "STATUS_UNCERTIFIED",
    "STATUS_ANY_OPTIMUM",
    "STATUS_MESSAGES",
    "AndOrResult",
    "AndOrOptions",
    "SharedAndOrResult",
    "HalpernState",
    "FixedPointState",
    "FixedPointIteration",
    "halpern",
    "halpern_fixed_point",
    "and_or",
    "and_or_shared",
]

# 2×2 factors (bit i of a mask = player i).
_K = np.array([[1.0, 1.0], [0.0, -1.0]])  # I_or = K u + c − L q, K² = I
_KT = _K.T.copy()
_L = np.array([[0.0, 1.0], [1.0, -1.0]])  # Möbius ∘ reversal; symmetric
_MT = np.array([[1.0, -1.0], [0.0, 1.0]])  # Möbius transposed
_ZT = np.array([[1.0, 1.0], [0.0, 1.0]])  # zeta transposed


def _eig_factor(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lam, q = np.linalg.eigh(b)
    return lam, q


_LAM_K, _Q_K = _eig_factor(_KT @ _K)  # KᵀK = ⊗ kᵀk
_M = ((1.0, 0.0), (-1.0, 1.0))  # Möbius factor
_LAM_M, _Q_M = _eig_factor(np.array(_M).T @ np.array(_M))  # MᵀM = ⊗ mᵀm
_LAM_L, _Q_L = _eig_factor(_L.T @ _L)  # LᵀL = ⊗ lᵀl
_H = np.array([[1.0, 1.0], [1.0, -1.0]]) / math.sqrt(2.0)  # Walsh–Hadamard factor (orthogonal, symmetric)
_HK = _H @ _K
_HL = _H @ _L
_GA = _H @ _K @ _KT @ _H  # H KKᵀ H = ⊗[[½, ½], [½, 5/2]]
_GB = _H @ _L @ _L.T @ _H  # H LLᵀ H = ⊗[[½, −½], [−½, 5/2]]
_PCG_ETA = 0.2  # inner CG tolerance relative to the last fixed-point residual
_PCG_MAX = 100  # inner CG iteration cap


def _solve_plus_identity(x: Array, q: np.ndarray, diag: Array) -> Array:
    """(I + ⊗B)⁻¹ x with ⊗B = (⊗Q) diag (⊗Q)ᵀ."""
    return kron_apply(kron_apply(x, q.T) / (1.0 + diag), q)


def _soft(x: Array, k: Array, free: Array) -> Array:
    """Soft threshold; entries where ``free`` carry no cost and pass through."""
    return jnp.where(free, x, jnp.sign(x) * jnp.maximum(jnp.abs(x) - k, 0.0))


# ----------------------------------------------------------------------------------------
# Fixed-point iteration: reflected Halpern iteration of an operator, with restarts
# ----------------------------------------------------------------------------------------


class HalpernState(NamedTuple):
    """State of :func:`halpern`."""

    anchor: Any  # pytree like params: Halpern anchor (last restart point)
    k: Int[Array, ""]  # iterations since the last restart
    res0: Float[Array, ""]  # fixed-point residual at the last restart
    prev: Float[Array, ""]  # fixed-point residual of the last step


class FixedPointState(NamedTuple):
    """State of a :class:`FixedPointIteration`: the optax state and the operator's own state."""

    opt_state: Any  # state of the optax transformation (e.g. a HalpernState)
    aux: Any = None  # operator state (e.g. a warm start for an inner solver), if any


class FixedPointIteration(NamedTuple):
    """A fixed-point iteration ``z ← z + transform(T z − z)`` as a pair of pure functions.

    ``init(z0) -> state``; ``step(z, state) -> (z_next, state)``; jit- and ``lax``-loop friendly.
    """

    init: Callable[[Any], FixedPointState]
    step: Callable[[Any, FixedPointState], tuple[Any, FixedPointState]]


def _tree_norm(t: Any) -> Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree_util.tree_leaves(t)))


def halpern(restart_factor: float = 0.2, necessary_factor: float | None = 0.8) -> optax.GradientTransformation:
    r"""Reflected Halpern anchoring with adaptive restarts, as an optax transformation.

    The incoming ``updates`` are a fixed-point step ``d = T z − z`` of an operator ``T`` at
    ``params = z`` (for a gradient step ``T z = z − η∇f(z)`` this is the usual ``−η∇f``); the
    returned updates move ``z`` to the reflected Halpern point

    .. math::

        z_{k+1} = \frac{k+1}{k+2}\,(2\,T z_k - z_k) + \frac{1}{k+2}\,z_0 ,

    with anchor ``z_0`` the point of the last restart. For a firmly nonexpansive ``T`` (a
    Douglas–Rachford or PDHG step), ``2T − I`` is nonexpansive and the anchored iteration has an
    O(1/k) fixed-point residual; restarting the anchor at ``T z`` gives linear convergence on
    sharp problems such as LPs (restarted PDLP / r2HPDHG [Lu & Yang 2024]; docs/math.md §3.6).
    The anchor restarts at the residual ``r = ‖d‖`` when, with ``r₀`` its value at the last
    restart, ``r ≤ restart_factor·r₀`` (sufficient decay) or ``r ≤ necessary_factor·r₀`` and
    ``r`` grew since the last step (necessary decay and no local progress; r2HPDHG's defaults
    0.2 and 0.8). ``restart_factor = inf`` passes ``d`` through unchanged: the plain iteration
    ``z ← T z``.

    Args:
        restart_factor: restart when the residual is ≤ this fraction of the last restart's.
        necessary_factor: also restart when the residual is ≤ this fraction of the last
            restart's and larger than the last step's; ``None``: sufficient decay only.
            Measured on the AND-OR LP (q_ratio 0.02, tol 1e-5): the 1e6-range planted game at
            n = 12 took 5,300 iterations instead of 71,950; the median iterations of the n = 10
            synthetic classes fell 1.07–4.0× (Gaussian 3,650 → 3,400, range 1e6 7,750 → 1,950),
            while the Gaussian game at n = 12 rose 11,950 → 16,550 (docs/math.md §3.6).

    Returns:
        An ``optax.GradientTransformation``; ``update(d, state, params)`` needs ``params``.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from jinter.decomposition import halpern
        >>> T = lambda z: 0.5 * (z + 3.0)        # averaged map, fixed point 3
        >>> opt = halpern()
        >>> z = jnp.zeros(()); state = opt.init(z)
        >>> for _ in range(60):
        ...     d, state = opt.update(T(z) - z, state, z)
        ...     z = optax.apply_updates(z, d)
        >>> round(float(z), 6)
        3.0
    """
    restart_factor = float(restart_factor)
    if not restart_factor > 0:
        raise ValueError(f"restart_factor must be > 0 (inf: no anchoring), got {restart_factor!r}")
    if necessary_factor is not None:
        necessary_factor = float(necessary_factor)
        if not 0 < necessary_factor <= 1:
            raise ValueError(f"necessary_factor must be in (0, 1] or None, got {necessary_factor!r}")

    def init(params):
        inf = jnp.asarray(jnp.inf, dtype=jax.tree_util.tree_leaves(params)[0].dtype)
        return HalpernState(anchor=params, k=jnp.zeros((), jnp.int32), res0=inf, prev=inf)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("halpern: update(updates, state, params) needs params (the current iterate z)")
        if math.isinf(restart_factor):  # plain fixed-point iteration z ← T z
            return updates, state
        res = _tree_norm(updates)
        restart = res <= restart_factor * state.res0
        if necessary_factor is not None:  # necessary decay, and no progress since the last step
            restart = restart | ((res <= necessary_factor * state.res0) & (res > state.prev))
        w = (state.k + 1).astype(res.dtype) / (state.k + 2).astype(res.dtype)
        # z_new − z = 2w·d + (1 − w)(anchor − z); at a restart z_new = T z = z + d
        out = jax.tree_util.tree_map(
            lambda d, z, a: jnp.where(restart, d, 2 * w * d + (1 - w) * (a - z)), updates, params, state.anchor
        )
        anchor = jax.tree_util.tree_map(lambda d, z, a: jnp.where(restart, z + d, a), updates, params, state.anchor)
        return out, HalpernState(
            anchor=anchor, k=jnp.where(restart, 0, state.k + 1), res0=jnp.where(restart, res, state.res0), prev=res
        )

    return optax.GradientTransformation(init, update)


def halpern_fixed_point(
    operator: Callable[..., Any],
    *,
    restart_factor: float = 0.2,
    necessary_factor: float | None = 0.8,
    aux_init: Callable[[Any], Any] | None = None,
) -> FixedPointIteration:
    r"""The fixed-point iteration of ``operator`` driven by the optax transform :func:`halpern`.

    ``step(z, state)`` evaluates ``d = T z − z``, transforms it with
    ``halpern(restart_factor, necessary_factor)`` and applies it with ``optax.apply_updates``.

    With ``aux_init``, the operator is ``operator(z, aux) -> (T z, aux)`` and ``aux`` (started
    at ``aux_init(z0)``) is carried in the state, e.g. the warm start of an inner solver
    that evaluates ``T`` inexactly. It is neither anchored nor counted in the residual.
    """
    with_aux = aux_init is not None
    transform = halpern(restart_factor, necessary_factor)

    def init(params):
        return FixedPointState(transform.init(_stacked(params)), aux_init(params) if with_aux else None)

    def step(params, state):
        if with_aux:
            tz, aux = operator(params, state.aux)
        else:
            tz, aux = operator(params), None
        z = _stacked(params)
        d = jax.tree_util.tree_map(jnp.subtract, _stacked(tz), z)
        updates, opt_state = transform.update(d, state.opt_state, z)
        return _unstacked(optax.apply_updates(z, updates), params), FixedPointState(opt_state, aux)

    return FixedPointIteration(init, step)


def _stackable(tree: Any) -> bool:
    """A tuple of several arrays of one shape and dtype (the blocks of a splitting)."""
    return (isinstance(tree, tuple) and len(tree) > 1 and all(hasattr(x, "shape") for x in tree)
            and len({(x.shape, x.dtype) for x in tree}) == 1)


def _stacked(tree: Any) -> Any:
    """The blocks as one array (leading axis: block), else the tree itself. The transform's
    elementwise updates and the residual norm then run as a few fused kernels over one array
    instead of one per block: on the CPU at n = 10 the Halpern step over four blocks took 4.6 µs
    stacked against 12.7 µs as a tuple (one measurement on a loaded 2-core machine)."""
    return jnp.stack(tree) if _stackable(tree) else tree


def _unstacked(x: Any, like: Any) -> Any:
    return tuple(x[i] for i in range(len(like))) if _stackable(like) else x


# ----------------------------------------------------------------------------------------
# Single model
# ----------------------------------------------------------------------------------------


STATUS_CANONICAL = 0
STATUS_NOT_CANONICAL = 1
STATUS_UNCERTIFIED = 2
STATUS_ANY_OPTIMUM = 3
STATUS_MESSAGES = {
    STATUS_CANONICAL: "certified optimum (gap ≤ tol), the canonical least-norm one",
    STATUS_NOT_CANONICAL: (
        "certified optimum (gap ≤ tol), but NOT verified canonical: no Tikhonov weight down to "
        f"{0.25 ** 7:.1e} gave a verified optimal minimizer within canonical_max_iter; ties between "
        "optima are broken arbitrarily (raise canonical_max_iter)"
    ),
    STATUS_UNCERTIFIED: "NOT certified: the duality gap is above tol after max_iter iterations (raise max_iter)",
    STATUS_ANY_OPTIMUM: "certified optimum (gap ≤ tol); canonical=False: one optimum of possibly many",
}


_NONFINITE_MESSAGE = ("NOT certified: the gap is NaN, the game holds non-finite values (NaN or inf; and_or checks v "
                      "for them only outside jit, where it is concrete)")


_RANGE_MESSAGE = ("NOT certified: the gap is inf, max|v| is outside the magnitudes and_or solves in this dtype "
                  "(subnormal or overflowing sums; and_or refuses such v outside jit, where it is concrete): "
                  "rescale v, interactions are linear in v")


def _status_messages(status: ArrayLike, gap: ArrayLike | None = None) -> list[str]:
    """The status words per game; a NaN gap (non-finite input under jit) and an infinite one
    (a game outside the solvable magnitudes under jit) are said as such."""
    codes = np.ravel(np.asarray(status))
    g = np.zeros(codes.shape) if gap is None else np.ravel(np.asarray(gap))
    return [_NONFINITE_MESSAGE if np.isnan(x) else _RANGE_MESSAGE if np.isinf(x) else STATUS_MESSAGES[int(c)]
            for c, x in zip(codes, g)]


class AndOrResult(NamedTuple):
    """Result of :func:`and_or`; every field has the leading batch axes of ``v``.

    Attributes:
        I_and: AND interactions, ``I_and[..., 0] = b = v(∅) + q(∅)`` (the bias).
        I_or: OR interactions, ``I_or[..., 0] = 0``; single players' effects are reported in
            ``I_and`` (``I_or[..., 1 << i] = 0``, see the tie rules in the module docstring).
        gamma: the split ``γ`` (``γ(∅) = 0``) of the reported interactions, i.e. after the
            single players' OR terms are merged into AND (``γ(S) += Σ_{i∈S} I_or({i})``,
            docs/math.md §3.7); ``I_and = mobius(½(v + q) + γ)`` off ∅ (``I_and[..., 0]`` is the bias ``b``).
        q: the noise term, ``|q| ≤ q_ratio·|v(N) − v(∅)|``.
        objective: ``Σ_{T≠∅} |I_and(T)| + |I_or(T)|``.
        lower_bound: certified lower bound on the optimum (dual objective of a feasible dual point).
        gap: relative duality gap ``(objective − lower_bound) / objective`` (0 if objective is 0).
        iterations: Douglas–Rachford iterations used (both phases).
        converged: ``gap ≤ tol``.
        canonical: the point is the canonical optimum (least ``‖γ‖₂² + ‖q‖₂²`` among all
            optima, in the solver's variables, i.e. before the singleton merge; ``q`` and the
            interactions are those of that point), verified as described in :func:`and_or`;
            False with ``canonical=False``.
        canonical_eps: the Tikhonov weight ``ε`` (problem scaled to ``max|c| = 1``) at which the
            regularized minimizer was verified optimal (0 unless ``canonical``; the phase runs only
            from a certified LP optimum).
        canonical_distance: certified bound on ``‖(γ, q) − (γ*, q*)‖₂``, the distance of the
            solver's point (before the singleton merge) to the canonical optimum, in the units of
            ``v``; ``inf`` unless ``canonical`` (status 0).
        status: :data:`STATUS_CANONICAL` (0), :data:`STATUS_NOT_CANONICAL` (1),
            :data:`STATUS_UNCERTIFIED` (2) or :data:`STATUS_ANY_OPTIMUM` (3);
            :meth:`messages` says it in words.
    """

    I_and: Float[Array, "*batch 2**n"]
    I_or: Float[Array, "*batch 2**n"]
    gamma: Float[Array, "*batch 2**n"]
    q: Float[Array, "*batch 2**n"]
    objective: Float[Array, "*batch"]
    lower_bound: Float[Array, "*batch"]
    gap: Float[Array, "*batch"]
    iterations: Int[Array, "*batch"]
    converged: Bool[Array, "*batch"]
    canonical: Bool[Array, "*batch"]
    canonical_eps: Float[Array, "*batch"]
    canonical_distance: Float[Array, "*batch"]
    status: Int[Array, "*batch"]

    def messages(self) -> list[str]:
        """The status of every game in words (flattened over the batch axes)."""
        return _status_messages(self.status, self.gap)


# ----------------------------------------------------------------------------------------
# Typed solver options (one frozen value for and_or's keyword options)
# ----------------------------------------------------------------------------------------


_MAX_COUNT = 2**30  # iteration counts and check intervals (int32 loop counters, with room to add)


def _solver_options(prefix: str = "", **options: Any) -> dict[str, Any]:
    """The solver options of :func:`and_or` / :func:`and_or_shared` / :class:`AndOrOptions`,
    checked and normalized (``prefix`` names them, e.g. ``"AndOrOptions."``): a bad value is a
    ``ValueError`` naming the option, before anything runs. Only the options given are checked."""
    out = dict(options)
    rules = {
        "q_ratio": lambda x: check_real(x, prefix + "q_ratio", least=0.0),
        "alpha": lambda x: check_real(x, prefix + "alpha", least=0.0, most=1.0),
        "tol": lambda x: None if x is None else check_real(x, prefix + "tol", above=0.0, below=1.0),
        "rho": lambda x: None if x is None else check_real(x, prefix + "rho", above=0.0),
        "max_iter": lambda x: check_int(x, prefix + "max_iter", 0, most=_MAX_COUNT),
        "check_every": lambda x: check_int(x, prefix + "check_every", 1, most=_MAX_COUNT),
        "chunk": lambda x: check_int(x, prefix + "chunk", 1),
        "canonical_max_iter": lambda x: check_int(x, prefix + "canonical_max_iter", 0, most=_MAX_COUNT),
    }
    for name, rule in rules.items():
        if name in out:
            out[name] = rule(out[name])
    if "canonical" in out:
        if not isinstance(out["canonical"], (bool, np.bool_)):
            raise ValueError(f"{prefix}canonical must be True or False, got {out['canonical']!r}")
        out["canonical"] = bool(out["canonical"])
        if out["canonical"] and out.get("canonical_max_iter", 1) < 1:
            raise ValueError(f"{prefix}canonical_max_iter must be ≥ 1 with canonical=True (the canonical phase's "
                             f"iterations), got {out['canonical_max_iter']!r}")
    if out.get("memory_budget") is not None:
        budget = out["memory_budget"]
        try:
            _memory_budget(budget)
        except ValueError:
            raise ValueError(f'{prefix}memory_budget must be None, a positive number of bytes or a size such as "2G", '
                             f"got {budget!r}") from None
        out["memory_budget"] = int(_memory_budget(budget))  # bytes: "1M", "1024K" and 2**20 are one setting
    return out


@dataclasses.dataclass(frozen=True)
class AndOrOptions:
    """The keyword options of :func:`and_or` as one frozen, hashable, validated value.

    Fields and defaults are those of :func:`and_or` (a test keeps the two equal) except the
    per-call ``warm_start`` (data, not a setting) and ``devices`` (where to run, not what to
    compute). Every field is checked on construction; a bad value raises a ``ValueError`` that
    names the field. Numbers are normalized (``q_ratio=0`` is stored as ``0.0``, ``max_iter=1e4``
    as ``10000``), so equal settings compare, hash and fingerprint equal.

    :meth:`kwargs` gives the keyword arguments, ``and_or(v, **opts.kwargs())``;
    :func:`jinter.sweep.run_sweep` takes the options as ``solver=`` and fingerprints them (a
    resumed sweep with other options recomputes its units, or refuses).

    >>> opts = AndOrOptions(tol=1e-4, max_iter=2000)
    >>> opts.replace(canonical=True).canonical, opts.kwargs()["max_iter"]
    (True, 2000)
    >>> AndOrOptions(check_every=0)
    Traceback (most recent call last):
    ...
    ValueError: AndOrOptions.check_every must be an integer in [1, 1073741824], got 0
    """

    q_ratio: float = 0.02
    tol: float | None = None
    max_iter: int = 100_000
    check_every: int = 50
    rho: float | None = None
    chunk: int = 1
    memory_budget: int | str | None = None
    canonical: bool = False
    canonical_max_iter: int = 1_000_000

    def __post_init__(self) -> None:
        checked = _solver_options("AndOrOptions.", **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        for name, value in checked.items():
            object.__setattr__(self, name, value)  # frozen: normalized once, here

    def kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments of :func:`and_or`."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> AndOrOptions:
        """A copy with some fields changed (validated again)."""
        return self.from_kwargs({**self.kwargs(), **changes})

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any] | None) -> AndOrOptions:
        """Options from a mapping of :func:`and_or` keyword arguments; an unknown key is a
        ``ValueError`` that lists the known ones."""
        kwargs = dict(kwargs or {})
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(kwargs) - set(names), key=str)
        if unknown:
            per_call = [k for k in unknown if k in ("warm_start", "devices")]
            hint = f" ({', '.join(per_call)}: per call, not a solver setting)" if per_call else ""
            raise ValueError(f"unknown AndOrOptions field(s) {unknown}{hint}; the fields are {names}")
        return cls(**kwargs)


def _check_v(v: ArrayLike, what: str = "v") -> tuple[Array, int]:
    check_numbers(v, what)
    v = as_real_float(v, what)
    if jnp.finfo(v.dtype).bits < 32:
        raise TypeError(f"{what} is {v.dtype}: the AND-OR solver computes in float32 or float64 (its certificate "
                        f"would stall at {v.dtype} rounding); pass v.astype(np.float32)")
    n = num_players(v, what=what)
    if n < 1:
        raise ValueError(f"{what} needs at least one player (last axis ≥ 2), got shape {v.shape}")
    check_finite(v, what)
    _check_scale(v, n, what)
    return v, n


def _scale_range(n: int, dtype: Any) -> tuple[float, float]:
    """The magnitudes ``max|v|`` of a game that the solver handles in ``dtype`` at ``n`` players:
    above ``tiny/√eps`` flushing subnormal results to zero (as XLA does) costs at most ``√eps``
    relative, far below the solver's tolerance (at ``1e-305`` in float64 it broke universal
    matching by 0.4%), and below ``max/(128(n+1)·3^n)``
    none of its sums (``Σ_T |mobius(v)(T)| ≤ 3^n max|v|``, times the rounding floor's
    ``8(n+1)``) overflows."""
    fi = jnp.finfo(dtype)
    return float(fi.tiny) / math.sqrt(float(fi.eps)), float(fi.max) / (128.0 * (n + 1) * 3.0**n)


def _has_subnormal(x: Array) -> Array:
    """Per game (last axis), whether an entry is subnormal, read from its bits: XLA flushes
    subnormals to zero in arithmetic, so ``|x| < tiny`` cannot see them."""
    fi = jnp.finfo(x.dtype)
    uint = {2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint64}[fi.bits // 8]
    bits = jax.lax.bitcast_convert_type(x, uint)
    exp_mask = uint(((1 << fi.nexp) - 1) << fi.nmant)
    mant_mask = uint((1 << fi.nmant) - 1)
    return jnp.any(((bits & exp_mask) == 0) & ((bits & mant_mask) != 0), axis=-1)


def _out_of_range(flat: Array, n: int) -> Array:
    """Per game of ``flat`` (games, 2**n): ``max|v|`` outside :func:`_scale_range`, an all-zero game
    excepted (its optimum is 0); a game of subnormals alone, which XLA's arithmetic reads as 0
    (it flushes them), counts as below the range."""
    lo, hi = _scale_range(n, flat.dtype)
    amax = jnp.max(jnp.abs(flat), axis=-1)
    return ((amax > 0) & ((amax < lo) | (amax > hi))) | ((amax < lo) & _has_subnormal(flat))


def _check_scale(v: Array, n: int, what: str) -> None:
    """Refuse a game whose magnitude is outside :func:`_scale_range` (concrete ``v`` only): its
    result would be certified while universal matching or the gap is lost to underflow or
    overflow. An all-zero game is fine (its optimum is 0)."""
    if is_traced(v) or v.size == 0:
        return
    flat = v.reshape(-1, v.shape[-1])
    bad = np.flatnonzero(np.asarray(_out_of_range(flat, n)))
    if bad.size:
        amax = np.max(np.abs(np.asarray(flat)), axis=-1)  # on the host: a subnormal reads as itself
        lo, hi = _scale_range(n, v.dtype)
        g = int(bad[0])
        where = f" (game {tuple(int(i) for i in np.unravel_index(g, v.shape[:-1]))})" if v.ndim > 1 else ""
        raise ValueError(
            f"{what} has max|v| = {amax[g]:.3g}{where}, outside the range [{lo:.1e}, {hi:.1e}] that and_or "
            f"solves in {v.dtype} at n={n} (below it sums lose digits to subnormal flushing, above it they "
            "overflow): rescale v; interactions are linear in v, so and_or(s·v) is s times and_or(v)"
        )


def _gap(p: Array, lb: Array, floor: Array) -> Array:
    """Relative duality gap; a difference within ``floor`` (the rounding of the objective's
    sums, see :func:`_rounding_floor`) counts as 0, so that a zero optimum is certified. NaN
    stays NaN (never ``≤ tol``)."""
    diff = p - lb
    tiny = jnp.finfo(p.dtype).tiny
    return jnp.where(diff <= floor, 0.0, diff / jnp.maximum(p, jnp.maximum(floor, tiny)))


def _rounding_floor(v: Array) -> Array:
    """Rounding level of an objective over the games ``v`` (..., 2**n): ``8(n+1)·eps`` times
    the objective of the all-AND split, ``Σ_{T≠∅} |mobius(v)(T)|`` (the transforms' error
    bound, summed), per game (leading axes)."""
    n = v.shape[-1].bit_length() - 1
    return 8 * (n + 1) * jnp.finfo(v.dtype).eps * jnp.sum(jnp.abs(mobius(v)[..., 1:]), axis=-1)


class _ScaledGame(NamedTuple):
    """One game's LP data (docs/math.md §3.5), scaled to ``max|c| = 1``."""

    c: Array  # offset of I_or = K u + c − L q, free ∅ entry dropped, / scale
    scale: Array  # max|c| before scaling
    floor: Array  # rounding level of the objective, / scale
    rq: Array  # box radius of q, / scale (0 without the noise term)
    free: Array  # the ∅ entry, which carries no cost
    ca: Array  # offset of I_and = M s + c_a in s = γ + ½q: ½ mobius(v), ∅ dropped, / scale


def _scaled_game(v: Array, q_ratio: float, with_q: bool) -> _ScaledGame:
    dt = v.dtype
    free = jnp.arange(v.shape[-1]) == 0
    # c_∅ only shifts the free, costless ∅ entry of I_or: drop it (a constant game would
    # otherwise put c_∅ / tiny into the iteration)
    c_raw = jnp.where(free, 0.0, -kron_apply(v, _L))
    scale = jnp.maximum(jnp.max(jnp.abs(c_raw)), jnp.finfo(dt).tiny)
    rq = (q_ratio * jnp.abs(v[-1] - v[0]) / scale).astype(dt) if with_q else jnp.zeros((), dt)
    ca = jnp.where(free, 0.0, 0.5 * kron_apply(v, _M)) / scale
    return _ScaledGame(c_raw / scale, scale, _rounding_floor(v) / scale, rq, free, ca)


class _Splitting(NamedTuple):
    """Douglas–Rachford on one scaled game (docs/math.md §3.5). ``z`` is a tuple of blocks; the
    operator state ``aux = (ρ, inner)`` carries the penalty and the inner solver's warm start.

    ``split(z, aux) -> (x, r, p, aux)``: ``x`` the projection of ``z`` on the constraint set
    ``V``, ``r = 2x − z`` its reflection and ``p`` the prox of the cost (threshold ``1/ρ``) at
    ``r``; the step is ``T z = z + p − x`` and ``ρ (r − p)`` estimates the dual.
    """

    split: Callable[[tuple, tuple], tuple]
    after: Callable[[tuple, Array], tuple]  # (aux, fixed-point residual) -> aux
    primal: Callable[[tuple], tuple[Array, Array]]  # x -> (u, q)
    start: Callable[[Array, Array], tuple]  # scaled (u0, q0) -> z0
    inner0: Any  # the inner state at the start
    q_reflection: Callable[[tuple], Array] | None = None  # r -> the q part of r (the polish's guess)


def _splitting_without_q(g: _ScaledGame, n: int) -> _Splitting:
    """``q = 0``: ``z = (z_u, z_t)``, exact projection on ``V = {(u, K u + c)}`` (a Kronecker
    eigenbasis solve of ``I + KᵀK``)."""
    dt = g.c.dtype
    dk = jnp.asarray(kron_power(_LAM_K, n), dt)

    def split(z, aux):
        u = _solve_plus_identity(z[0] + kron_apply(z[1] - g.c, _KT), _Q_K, dk)
        x = (u, kron_apply(u, _K) + g.c)
        r = tuple(2 * a - b for a, b in zip(x, z))
        thr = 1.0 / aux[0]
        return x, r, tuple(_soft(b, thr, g.free) for b in r), aux

    return _Splitting(
        split=split,
        after=lambda aux, res: aux,
        primal=lambda x: (x[0], jnp.zeros_like(x[0])),
        start=lambda u0, q0: (u0, kron_apply(u0, _K) + g.c),
        inner0=(),
    )


def _splitting_with_q(g: _ScaledGame, n: int) -> _Splitting:
    """``q`` in its box: ``z = (z_u, z_w, z_q)``, prox of ``‖u‖₁' + ‖w‖₁' + ι_box(q)`` (separable)
    and projection on ``V = {w = K u − L q + c}``: ``λ = G⁻¹(w − K u + L q − c)`` with
    ``G = I + KKᵀ + LLᵀ``, then ``(u + Kᵀλ, w − λ, q − Lᵀλ)``. In the Walsh–Hadamard basis
    (``H = ⊗h``) ``G_h = I + ⊗(h kkᵀ h) + ⊗(h llᵀ h)`` is solved by conjugate gradients with its
    Kronecker diagonal as preconditioner (condition ≈ 38 at n = 10), warm-started from the
    previous ``λ_h`` and stopped at a residual ≤ ``_PCG_ETA`` × the last fixed-point residual
    (``inner = (λ_h, last residual)``)."""
    dt = g.c.dtype
    ga = jnp.asarray(kron_power(np.diag(_GA), n) + kron_power(np.diag(_GB), n) + 1.0, dt)

    def g_h(x):
        return x + kron_apply(x, _GA) + kron_apply(x, _GB)

    def pcg(rhs, x, tol_abs):
        r = rhs - g_h(x)
        zr = r / ga
        rz = jnp.dot(r, zr)

        def cond(st):
            _, r, _, _, i = st
            return (jnp.sqrt(jnp.dot(r, r)) > tol_abs) & (i < _PCG_MAX)

        def body(st):
            x, r, p, rz, i = st
            ap = g_h(p)
            al = rz / jnp.maximum(jnp.dot(p, ap), jnp.finfo(dt).tiny)
            x, r = x + al * p, r - al * ap
            zr = r / ga
            rzn = jnp.dot(r, zr)
            return x, r, zr + rzn / jnp.maximum(rz, jnp.finfo(dt).tiny) * p, rzn, i + 1

        x, *_ = jax.lax.while_loop(cond, body, (x, r, zr, rz, jnp.zeros((), jnp.int32)))
        return x

    def split(z, aux):
        rho, (lam_h, last) = aux
        zu, zw, zq = z
        rhs = kron_apply(zw - g.c, _H) - kron_apply(zu, _HK) + kron_apply(zq, _HL)
        lam_h = pcg(rhs, lam_h, _PCG_ETA * last)
        x = (zu + kron_apply(lam_h, _HK.T), zw - kron_apply(lam_h, _H), zq - kron_apply(lam_h, _HL.T))
        r = tuple(2 * a - b for a, b in zip(x, z))
        thr = 1.0 / rho
        p = (_soft(r[0], thr, g.free), _soft(r[1], thr, g.free), jnp.clip(r[2], -g.rq, g.rq))
        return x, r, p, (rho, (lam_h, last))

    def after(aux, res):
        rho, (lam_h, _) = aux
        return rho, (lam_h, jnp.clip(res, 10 * jnp.finfo(dt).eps, 1.0))  # floor: no CG below rounding

    def start(u0, q0):
        q0 = jnp.clip(q0, -g.rq, g.rq)
        return u0, kron_apply(u0, _K) + g.c - kron_apply(q0, _L), q0

    return _Splitting(split, after, lambda x: (x[0], x[2]), start, (jnp.zeros_like(g.c), jnp.ones((), dt)),
                      lambda r: r[2])


def _splitting_graph(g: _ScaledGame, n: int) -> _Splitting:
    """``q`` in its box, in the variables of :func:`_solve_shared`: ``z = (z_a, z_o, z_s, z_t)``
    with ``s = γ + ½q``, ``t = γ − ½q``, ``a = M s + c_a = u`` (AND) and ``o = L t + c_o = w``
    (OR, ``c_o = ½c``). The projection on the graph ``{a = M s + c_a, o = L t + c_o}`` is exact
    (two butterfly solves, :func:`_graph_projection`) and the prox stays separable: soft
    thresholds on ``a``, ``o``; on ``(s, t)``, ``γ = ½(s + t)`` passes and ``q = s − t`` is
    clipped to its box (docs/math.md §3.5). No inner solver: cheaper iterations than
    :func:`_splitting_with_q`, but more of them, a number that grows faster with ``n`` (see
    ``_GRAPH_MAX_N``)."""
    proj = _graph_projection(g.ca, 0.5 * g.c)

    def project(z):  # z = (a, o, s, t): the certificate reads the ℓ1 blocks first
        s, t, a, o = proj((z[2], z[3], z[0], z[1]))
        return a, o, s, t

    def prox(r, rho):
        ra, ro, rs, rt = r
        thr = 1.0 / rho
        gm, q = 0.5 * (rs + rt), jnp.clip(rs - rt, -g.rq, g.rq)
        return _soft(ra, thr, g.free), _soft(ro, thr, g.free), gm + 0.5 * q, gm - 0.5 * q

    def start(u0, q0):
        q0 = jnp.clip(q0, -g.rq, g.rq)
        s = zeta(u0 - g.ca)
        t = s - q0
        return u0, kron_apply(t, _L) + 0.5 * g.c, s, t

    return _dr_splitting(project, prox)._replace(
        primal=lambda x: (x[0], x[2] - x[3]), start=start, q_reflection=lambda r: r[2] - r[3])


# The with-q splitting: the exact graph projection (_splitting_graph) up to this n, the CG
# projection (_splitting_with_q) above. Measured (2 cores, float64, q_ratio 0.02, tol 1e-5, games
# of bench_and_or_classes.py seed 0), graph vs CG: n = 10, Gaussian median 0.50 vs 0.66 s
# (12k–17k vs 3k–6k iterations), planted + 2% noise 0.34 vs 0.56 s; n = 12, Gaussian 8.2/6.0 vs
# 8.8/4.5 s, planted 5.0/3.3 vs 3.4/4.9 s (24k–54k vs 7k–17k iterations): no gain from n = 12 on.
# The benchmark run (bench_and_or_classes.py, 3 games per class) has Gaussian at n = 10 slower,
# median 0.58 vs 0.45 s (12,850 vs 3,400 iterations), the other classes faster.
# Float64 only: in float32 the graph form stalls at gaps of 1.6e-3–3.9e-3 (five Gaussian games at
# n = 10, 100k iterations), above the float32 default tol 1e-3 that the CG form reaches.
_GRAPH_MAX_N = 10


def _q_splitting(n: int, dtype: Any) -> Callable[[_ScaledGame, int], _Splitting]:
    """The splitting with the noise term at ``n`` players in ``dtype`` (``_GRAPH_MAX_N``)."""
    return _splitting_graph if n <= _GRAPH_MAX_N and jnp.dtype(dtype) == jnp.float64 else _splitting_with_q


def _dr_iteration(sp: _Splitting, rho0: Array) -> FixedPointIteration:
    """The Douglas–Rachford step ``T z = z + prox(2 P_V z − z) − P_V z`` under :func:`halpern`."""

    def fixed_point(z, aux):
        x, _, p, aux = sp.split(z, aux)
        tz = tuple(a + b - e for a, b, e in zip(z, p, x))
        return tz, sp.after(aux, _tree_norm(jax.tree_util.tree_map(jnp.subtract, tz, z)))

    return halpern_fixed_point(fixed_point, restart_factor=0.2, aux_init=lambda z: (rho0, sp.inner0))


def _game_certificate(g: _ScaledGame, sp: _Splitting) -> tuple[Callable, Callable, Callable]:
    """``(certificate, objective, bound)`` of the scaled game: ``certificate(z, state) ->
    (objective, lower bound, u, q)`` at the iterate's primal point and three dual candidates."""
    K = lambda x: kron_apply(x, _K)  # noqa: E731
    KT = lambda x: kron_apply(x, _KT)  # noqa: E731

    def cost(x):
        return jnp.sum(jnp.where(g.free, 0.0, jnp.abs(x)))

    def objective(u, q):
        q = jnp.clip(q, -g.rq, g.rq)
        return cost(u) + cost(K(u) + g.c - kron_apply(q, _L)), q

    def bound(y):
        """Dual objective of ``y`` (any vector) rescaled to feasibility, either sign: a valid bound."""
        y = jnp.where(g.free, 0.0, y)
        y = y / jnp.maximum(1.0, jnp.maximum(jnp.max(jnp.abs(y)), jnp.max(jnp.abs(KT(y)))))
        return jnp.abs(jnp.dot(y, g.c)) - g.rq * jnp.sum(jnp.abs(kron_apply(y, _L)))

    def certificate(z, st):
        x, r, pr, aux = sp.split(z, st.aux)
        rho = aux[0]
        u, q = sp.primal(x)
        p, q = objective(u, q)
        ys = jnp.where(g.free, 0.0, jnp.clip(rho * (r[0] - pr[0]), -1, 1))
        yt = jnp.where(g.free, 0.0, jnp.clip(rho * (r[1] - pr[1]), -1, 1))
        best = jnp.asarray(-jnp.inf, g.c.dtype)
        for y in (yt, -KT(ys), 0.5 * (yt - KT(ys))):
            best = jnp.maximum(best, bound(y))
        return p, jnp.clip(best, 0.0, p), u, q  # the objective is ≥ 0: 0 is always a bound

    return certificate, objective, bound


_ADAPT_RHO = True  # rho=None adapts the penalty
_RHO_RANGE = (1e-3, 1e6)  # adaptive penalty: bounds on the scaled problem
_RHO_SMOOTH = 1.0  # log ρ ← (1 − θ) log ρ + θ log ω at each restart (θ = 0.3, 0.5, 0.8 measured slower)
_RHO_MIN_CHANGE = 1.5  # a new ρ within this factor of the old keeps the old (no re-anchoring)


def _at_penalty(x: tuple, z: tuple, ratio: Array) -> tuple:
    """``x + ratio·(z − x)``: with ``x = P_V z`` and dual ``y = ρ(z − x)``, the point with the same
    ``x`` and ``y`` under the penalty ``ρ/ratio`` (``P_V`` of it is ``x`` again: ``z − x ⊥ V``)."""
    return tuple(a + ratio * (b - a) for a, b in zip(x, z))


def _penalty_update(sp: _Splitting, opt: FixedPointIteration) -> tuple[Callable, Callable]:
    r"""Adaptive Douglas–Rachford penalty, the primal weight of restarted PDLP.

    ``(ref_init, adapt)``. At each check that follows a restart of the Halpern anchor, the
    primal point ``x = P_V z`` and the dual ``y = ρ (z − x)`` are compared with those of the last
    update: ``ω = ‖Δy‖ / ‖Δx‖`` balances the distances travelled in both, and
    ``log ρ ← (1 − θ) log ρ + θ log ω`` (θ = ``_RHO_SMOOTH``, clipped to ``_RHO_RANGE``). A
    change of more than ``_RHO_MIN_CHANGE`` moves ``z`` to ``x + (ρ/ρ')(z − x)``, the point
    with the same ``x`` and ``y`` under ``ρ'``, and restarts the anchor there.
    """
    def duals(z, x, rho):
        return tuple(rho * (a - b) for a, b in zip(z, x))

    def ref_init(z, st):
        x, *_ = sp.split(z, st.aux)
        return x, duals(z, x, st.aux[0]), jnp.asarray(jnp.inf, z[0].dtype)

    def adapt(z, st, ref):
        rho = st.aux[0]
        x, *_ = sp.split(z, st.aux)
        y = duals(z, x, rho)
        x_ref, y_ref, res0_ref = ref
        tiny = jnp.finfo(z[0].dtype).tiny
        dx = _tree_norm(jax.tree_util.tree_map(jnp.subtract, x, x_ref))
        dy = _tree_norm(jax.tree_util.tree_map(jnp.subtract, y, y_ref))
        res0 = st.opt_state.res0
        ok = (res0 < res0_ref) & jnp.isfinite(res0_ref) & (dx > tiny) & (dy > tiny)
        omega = jnp.where(ok, dy / jnp.where(ok, dx, 1.0), rho)
        new = jnp.exp((1 - _RHO_SMOOTH) * jnp.log(rho) + _RHO_SMOOTH * jnp.log(omega))
        new = jnp.clip(new, *_RHO_RANGE).astype(rho.dtype)
        change = ok & (jnp.abs(jnp.log(new / rho)) > math.log(_RHO_MIN_CHANGE))
        new = jnp.where(change, new, rho)
        z2 = _at_penalty(x, z, rho / new)
        st2 = opt.init(z2)._replace(aux=(new, st.aux[1]))
        z, st = jax.tree_util.tree_map(lambda a, b: jnp.where(change, a, b), (z2, st2), (z, st))
        res0 = jnp.where(change, jnp.inf, res0)  # the re-anchored state has not restarted yet
        ref = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), (x, y, res0), (x_ref, y_ref, res0))
        return z, st, ref

    return ref_init, adapt


def _solve_single(v, q_ratio, tol, max_iter, check_every, rho, with_q, start=None, polish_every=0):
    """One game ``v`` of shape (2**n,): Halpern–Douglas–Rachford with a duality-gap stop.

    ``rho = (ρ₀, adaptive)``; ``start``: ``None`` (start at zero) or a feasible ``(γ, q)`` to
    start the iteration from."""
    rho0, adaptive = rho
    n = v.shape[-1].bit_length() - 1
    g = _scaled_game(v, q_ratio, with_q)
    sp = (_q_splitting(n, v.dtype) if with_q else _splitting_without_q)(g, n)
    z0 = tuple(jnp.zeros_like(b) for b in sp.start(g.c, g.c))
    if start is not None:
        z0 = sp.start(_and_part(v, *start) / g.scale, start[1] / g.scale)
    opt = _dr_iteration(sp, jnp.asarray(rho0, v.dtype))
    certificate, objective, bound = _game_certificate(g, sp)
    polish = None
    if with_q and polish_every > 0:
        polish = _polish_candidate(v / g.scale, g.rq, sp, objective, bound)
    p, lb, (u, q), it, _ = _certified_loop(
        opt, z0, certificate, g.floor, tol, max_iter, check_every,
        polish=polish, polish_every=polish_every, adapt=_penalty_update(sp, opt) if adaptive else None,
    )
    lb = jnp.clip(lb, 0.0, p)
    return u * g.scale, q * g.scale, lb * g.scale, it  # the caller recomputes the objective and gap


def _polish_candidate(vs: Array, rq: Array, sp: _Splitting, objective: Callable, bound: Callable) -> Callable:
    """The active-set polish as a certificate candidate ``(z, state) -> (objective, bound, u, q)``."""

    def polish(z, st):
        _, r, pr, _ = sp.split(z, st.aux)
        a, o, y = _polish_active_set(vs, rq, *_active_set_guess(pr[0], pr[1], sp.q_reflection(r), rq))
        p, q = objective(a, zeta(a) + or_zeta(o) - vs)
        lbp = bound(y)
        ok = jnp.isfinite(p) & jnp.isfinite(lbp)
        p = jnp.where(ok, p, jnp.inf)
        return p, jnp.where(ok, jnp.clip(lbp, 0.0, p), 0.0), jnp.where(ok, a, 0.0), jnp.where(ok, q, 0.0)

    return polish


def _certified_loop(
    opt, z0, certificate, floor, tol, max_iter, check_every, polish=None, polish_every=0, adapt=None, give_up=None,
    with_state=False,
):
    """Run the fixed-point iteration ``opt`` (:class:`FixedPointIteration`) from ``z0`` in a ``lax.while_loop``.

    Every ``check_every`` steps, ``certificate(z, state) -> (objective, bound, *primal)``; the
    loop keeps the best objective's primal and the best bound seen at the checks (so neither
    gets worse, whatever the iteration does between checks) and stops when their relative gap
    is ≤ ``tol`` or at ``max_iter``. ``adapt = (ref_init, adapt)`` (:func:`_penalty_update`):
    after each check, ``adapt(z, state, ref) -> (z, state, ref)`` may change the operator.
    ``give_up(objective, bound, primal) -> bool`` (optional) also stops the loop, e.g. once the
    answer the caller needs is known before the gap is closed.
    Returns ``(objective, bound, primal, iterations, z)`` (and the final state, ``with_state``).
    """

    def body(carry):
        z, st, it, (bp, blb, bx), (wait, every), ref = carry

        def step(_, zs):
            return opt.step(*zs)

        z, st = jax.lax.fori_loop(0, check_every, step, (z, st))
        p, lb, *x = certificate(z, st)
        if polish is not None:
            # an extra candidate every `every` checks once the gap is below _POLISH_GAP; a polish
            # that does not halve the gap doubles the wait before the next (see _polish_active_set)
            g0 = _gap(jnp.minimum(p, bp), jnp.maximum(lb, blb), floor)
            do = (g0 <= _POLISH_GAP) & (wait <= 1)
            p, lb, x = _better_candidate((p, lb, x), lambda: polish(z, st), do)
            helped = _gap(jnp.minimum(p, bp), jnp.maximum(lb, blb), floor) <= 0.5 * g0
            every = jnp.where(do & ~helped, 2 * every, every)
            wait = jnp.where(do, every, wait - 1)
        better = p < bp
        best = (jnp.where(better, p, bp), jnp.maximum(lb, blb), [jnp.where(better, a, b) for a, b in zip(x, bx)])
        if adapt is not None:
            z, st, ref = adapt[1](z, st, ref)
        return z, st, it + check_every, best, (wait, every), ref

    def cond(carry):
        _, _, it, (p, lb, x), _, _ = carry
        go = (it < max_iter) & (_gap(p, lb, floor) > tol)
        return go if give_up is None else go & ~give_up(p, lb, x)

    st0 = opt.init(z0)
    p0, lb0, *x0 = certificate(z0, st0)
    sched = (jnp.asarray(polish_every, jnp.int32),) * 2
    ref0 = adapt[0](z0, st0) if adapt is not None else ()
    z, st, it, (p, lb, x), _, _ = jax.lax.while_loop(
        cond, body, (z0, st0, jnp.zeros((), jnp.int32), (p0, lb0, x0), sched, ref0)
    )
    return (p, lb, tuple(x), it, z, st) if with_state else (p, lb, tuple(x), it, z)


def _better_candidate(cand, other, when):
    """``cand = (objective, bound, primal list)`` combined with ``other()`` (evaluated only when
    ``when``): the lower objective's primal, the higher bound."""
    p, lb, x = cand

    def run():
        p2, lb2, *x2 = other()
        better = p2 < p
        return jnp.where(better, p2, p), jnp.maximum(lb, lb2), [jnp.where(better, a, b) for a, b in zip(x2, x)]

    return jax.lax.cond(when, run, lambda: (p, lb, list(x)))


# Active-set polish (q_ratio > 0): every _POLISH_EVERY checks once the gap is ≤ _POLISH_GAP, with
# backoff. Off by default (0): measured on six hard n = 10 games (planted synthetic, Gaussian,
# untrained MLP; q_ratio 0.02, tol 1e-5) it cut the iterations on three (8500 → 6500,
# 5400 → 3850, 13550 → 7450) and none on the others, for a median of 1.08 s with and without,
# while its dense solves add ≈ 8 s to the compile at n = 10.
_POLISH_EVERY = 0
_POLISH_GAP = 1e-3
_POLISH_MIN = 128  # smallest dense system of the active-set polish (sizes 128·2^i)


def _active_set_guess(ua: Array, wo: Array, rq_ref: Array, rq: Array):
    """Support and tight rows guessed from a Douglas–Rachford iterate (see :func:`_polish_active_set`).

    ``ua``, ``wo``: the soft-thresholded AND and OR parts (exact zeros off the support); ``rq_ref``:
    the reflected ``q`` before its clip (beyond the box where the bound binds). Returns
    ``(columns, values, rows, row_signs, k, m)``: column ids in ``[0, 2N)`` (AND ``T`` is ``T``,
    OR ``T`` is ``N + T``) support first, the iterate's values there, row ids with the box
    binding first, the signs of ``q`` there, the support size ``k`` and the bound rows ``m``.
    """
    size = ua.shape[-1]
    idx = jnp.arange(size)
    single = jnp.asarray(_singletons(size))
    free = idx == 0
    sa = free | (ua != 0) | (single & (wo != 0))  # singletons merged into AND
    so = (wo != 0) & ~single & ~free
    val = jnp.concatenate([jnp.where(single, ua + wo, ua), jnp.where(single, 0.0, wo)])
    mask = jnp.concatenate([sa, so])
    cols = jnp.argsort(~mask, stable=True)
    tight = jnp.abs(rq_ref) > rq
    rows = jnp.argsort(rq - jnp.abs(rq_ref), stable=True)  # tightest first
    return cols, val[cols], rows, jnp.sign(rq_ref[rows]), jnp.sum(mask), jnp.sum(tight)


def _polish_sizes(size: int) -> list[int]:
    sizes = [min(2 * size, _POLISH_MIN)]
    while sizes[-1] < 2 * size:
        sizes.append(min(2 * size, 2 * sizes[-1]))
    return sizes


def _polish_active_set(vs: Array, rq: Array, cols, col_val, rows, row_sign, k, m):
    r"""Primal and dual candidates of the ℓ1 problem on a guessed active set.

    In interactions the problem reads ``min ‖a‖₁' + ‖o‖₁'`` subject to
    ``|ζ(a) + ζ_or(o) − v| ≤ ρ`` (``a_∅`` free, singletons in ``a``): a dictionary
    ``D = [ζ | ζ_or]`` with an ℓ∞ residual box. With the guessed support ``S`` (``cols[:k]``),
    the rows ``R`` where the box binds (``rows[:m]``) and their signs, the optimal face is
    ``D_RS x = v_R + σ_R ρ`` (``A x = b``) with ``sign(x_S)`` fixed, and the dual multipliers
    solve ``A^T λ = sign(x_S)`` (0 on the free ``a_∅``); ``y = L⁻¹ λ`` is the dual of the
    solver's form. The primal candidate is the iterate ``x₀`` projected on ``A x = b``,
    ``x = x₀ + Aᵀ(AAᵀ + δ)⁻¹(b − A x₀)``, the dual the least-squares ``λ = (AAᵀ + δ)⁻¹ A sign``
    (one Cholesky factor). Both are only candidates: the caller evaluates the objective at the
    (box-clipped) primal and the bound at ``y`` rescaled to feasibility, so a wrong guess costs
    nothing but time. Dense ``P_r × P_c`` systems, ``P`` the least of ``128·2^i ≥ max(k, m)``
    (``P_r ≤ 2**n``, ``P_c ≤ 2·2**n``).
    """
    size = vs.shape[-1]
    dt = vs.dtype
    sizes = _polish_sizes(size)
    linv = np.linalg.inv(_L)
    eps = jnp.finfo(dt).eps

    def branch(P):
        pr_, pc_ = min(P, size), P

        def run(_):
            c, x0, r, rs = cols[:pc_], col_val[:pc_], rows[:pr_], row_sign[:pr_]
            vc, vr = jnp.arange(pc_) < k, jnp.arange(pr_) < m
            is_and = c < size
            cid = jnp.where(is_and, c, c - size)
            hit = jnp.where(is_and[None, :], (cid[None, :] & ~r[:, None]) == 0, (cid[None, :] & r[:, None]) != 0)
            a_mat = jnp.where(vr[:, None] & vc[None, :], hit.astype(dt), 0.0)
            g = a_mat @ a_mat.T
            delta = 1e3 * eps * jnp.max(jnp.diagonal(g))
            g = g + jnp.diag(jnp.where(vr, delta, 1.0))
            fac = jax.scipy.linalg.cho_factor(g)
            x0 = jnp.where(vc, x0, 0.0)
            b = jnp.where(vr, vs[r] + rs * rq, 0.0)
            x = x0 + a_mat.T @ jax.scipy.linalg.cho_solve(fac, b - a_mat @ x0)
            sgn = jnp.where(vc & (c != 0), jnp.sign(x0), 0.0)
            lam = jax.scipy.linalg.cho_solve(fac, a_mat @ sgn)
            full = jnp.zeros(2 * size, dt).at[jnp.where(vc, c, 2 * size)].set(x, mode="drop")
            lam_full = jnp.zeros(size, dt).at[jnp.where(vr, r, size)].set(lam, mode="drop")
            ok = (k <= pc_) & (m <= pr_)
            return jnp.where(ok, full[:size], jnp.nan), jnp.where(ok, full[size:], jnp.nan), kron_apply(lam_full, linv)

        return run

    km = jnp.maximum(k, m)
    which = jnp.minimum(jnp.sum(jnp.asarray(sizes[:-1], km.dtype) < km), len(sizes) - 1)
    return jax.lax.switch(which, [branch(P) for P in sizes], None)


# ----------------------------------------------------------------------------------------
# Canonical optimum: the least-norm (γ, q) among all optima (Tikhonov continuation)
# ----------------------------------------------------------------------------------------

_EPS0 = 1.0  # first Tikhonov weight on the problem scaled to max|c| = 1
_EPS_FACTOR = 0.25  # continuation: ε ← ε/4 while the regularized minimizer is not LP-optimal
_EPS_STAGES = 8  # ε from 1 down to 4⁻⁷ ≈ 6e-5
_EPS_RHO = 20.0  # Douglas–Rachford penalty starts at ρ = max(1, 20·√ε), then adapts (see _tikhonov_stage)
_COARSE_DIV = 8  # one coarse stage may use at most canonical_max_iter // 8 iterations
_STAGE_ACC = 1e-5  # stage accuracy: relative gap of G_ε ≤ max(_STAGE_ACC·tol, 10·eps)


def _split_data(v: Array, per_game: bool = True) -> tuple[Array, Array, Array, Array]:
    """``(c_a, c_o, scale, free)``: AND part ``a = M s + c_a`` and OR part ``o = L t + c_o`` of the
    split in ``s = γ + ½q``, ``t = γ − ½q`` (games ``(..., 2**n)``), scaled so ``max|c| = 1``
    per game (``per_game=False``: one scale for all of ``v``, shape ``(1,) * v.ndim``)."""
    size = v.shape[-1]
    free = jnp.arange(size) == 0  # ∅ carries no cost; its entries only shift costless ones
    ca = jnp.where(free, 0.0, 0.5 * kron_apply(v, _M))
    co = jnp.where(free, 0.0, -0.5 * kron_apply(v, _L))
    cmax = jnp.max(jnp.maximum(jnp.abs(ca), jnp.abs(co)), axis=-1 if per_game else None, keepdims=True)
    scale = jnp.where(cmax > 0, cmax, 1.0)  # c ≡ 0: the optimum is 0
    return ca / scale, co / scale, scale, free


def _graph_projection(ca: Array, co: Array) -> Callable[[tuple], tuple]:
    """Exact projection on the graph ``{(s, t, a, o) : a = M s + c_a, o = L t + c_o}`` (two
    butterfly solves ``(I + MᵀM)⁻¹``, ``(I + LᵀL)⁻¹``), for :func:`_solve_shared` and
    :func:`_canonical_phase`."""
    n = ca.shape[-1].bit_length() - 1
    dm = jnp.asarray(kron_power(_LAM_M, n), ca.dtype)
    dl = jnp.asarray(kron_power(_LAM_L, n), ca.dtype)

    def project(z):
        zs, zt, za, zo = z
        s = _solve_plus_identity(zs + kron_apply(za - ca, _MT), _Q_M, dm)
        t = _solve_plus_identity(zt + kron_apply(zo - co, _L), _Q_L, dl)
        return s, t, kron_apply(s, _M) + ca, kron_apply(t, _L) + co

    return project


class _TikhonovGame(NamedTuple):
    """One game's data for :func:`_canonical_phase` (scaled by :func:`_split_data`)."""

    ca: Array  # a = M s + c_a (AND)
    co: Array  # o = L t + c_o (OR)
    free: Array  # the ∅ entry
    rq: Array  # q box radius
    floor: Array  # rounding level of the objective
    project: Callable[[tuple], tuple]  # _graph_projection(ca, co)

    def cost(self, s: Array, t: Array) -> Array:
        """The ℓ1 objective ``F`` at ``(s, t)``."""
        a, o = kron_apply(s, _M) + self.ca, kron_apply(t, _L) + self.co
        return jnp.sum(jnp.where(self.free, 0.0, jnp.abs(a))) + jnp.sum(jnp.where(self.free, 0.0, jnp.abs(o)))


def _dr_splitting(project: Callable, prox: Callable) -> _Splitting:
    """Douglas–Rachford parts at the penalty ``ρ = aux[0]``: ``split(z, aux) = (P z, R z = 2P z − z,
    prox(R z, ρ), aux)``, for an exact projection ``P`` (the Tikhonov stages of one game and of
    the shared problem, the shared LP, and the single game's graph form, :func:`_splitting_graph`)."""

    def split(z, aux):
        x = project(z)
        r = tuple(2 * a - b for a, b in zip(x, z))
        return x, r, prox(r, aux[0]), aux

    return _Splitting(split, after=lambda aux, res: aux, primal=None, start=None, inner0=())


def _proven_above(big: Array, dual: Array, norm: Array, eps: Array, above: Array) -> Array:
    """``F(x_ε) > above`` is proven: ``F(x_ε) ≥ D_ε − ε/2·(√N(x) + δ)²``, ``δ = √(2(G_ε − D_ε)/ε)``
    (``norm = √N(x)``, see :func:`_tikhonov_stage`)."""
    delta = jnp.sqrt(2.0 * jnp.maximum(big - dual, 0.0) / eps)
    return dual - 0.5 * eps * (norm + delta) ** 2 > above


def _run_tikhonov_stage(sp, project, certificate, eps, z, floor, gtol, budget, check_every, rho_factor,
                        adaptive, give_up):
    """Douglas–Rachford from ``z`` (at penalty 1) at the penalty ``max(1, rho_factor·√ε)``
    (``adaptive``: then :func:`_penalty_update`), to :func:`_certified_loop`'s stop; returns
    ``(G_ε, D_ε, x, iterations, z at penalty 1)``, so the dual survives a change of ρ."""
    rho0 = jnp.maximum(1.0, rho_factor * jnp.sqrt(eps)).astype(eps.dtype)
    opt = _dr_iteration(sp, rho0)
    p, lb, x, it, z, st = _certified_loop(
        opt, _at_penalty(project(z), z, 1.0 / rho0), certificate, floor, gtol, budget, check_every,
        adapt=_penalty_update(sp, opt) if adaptive else None, give_up=give_up, with_state=True,
    )
    return p, lb, x, it, _at_penalty(project(z), z, st.aux[0])


def _tikhonov_stage(
    d: _TikhonovGame, z: tuple, eps: Array, budget: Array, gtol: Array, check_every: int, above: Array | None = None
):
    """One stage of the continuation: ``min F + ε/2(‖γ‖² + ‖q‖²)`` by Douglas–Rachford in
    ``(s, t, a, o)`` from ``z``, stopped at the relative gap ``gtol`` of the explicit dual
    ``D_ε`` or after ``budget`` iterations; returns :func:`_certified_loop`'s tuple. The penalty
    starts at ``max(1, _EPS_RHO·√ε)`` and adapts as in the LP solve (:func:`_penalty_update`).

    ``above``: also stop once ``F(x_ε) > above`` is proven. With ``N(x) = ‖γ‖² + ‖q‖²``,
    ``G_ε`` is ε-strongly convex in ``√N``, so ``√N(x − x_ε) ≤ δ = √(2(G_ε(x) − D_ε)/ε)`` and
    ``F(x_ε) = G_ε(x_ε) − ε/2·N(x_ε) ≥ D_ε − ε/2·(√N(x) + δ)²``."""
    free, rq, ca, co = d.free, d.rq, d.ca, d.co

    def prox(r, rho):
        rs, rt, ra, ro = r
        # argmin ε/2(γ² + q²) + ρ/2((s − r_s)² + (t − r_t)²): with γ = (s+t)/2, q = s − t the
        # quadratic is 2(γ − γ_r)² + ½(q − q_r)², separable; γ(∅) = 0, |q| ≤ ρ_q
        g = jnp.where(free, 0.0, 0.5 * (rs + rt) / (1.0 + eps / (2.0 * rho)))
        q = jnp.clip((rs - rt) / (1.0 + 2.0 * eps / rho), -rq, rq)
        thr = 1.0 / rho
        return g + 0.5 * q, g - 0.5 * q, _soft(ra, thr, free), _soft(ro, thr, free)

    sp = _dr_splitting(d.project, prox)

    def certificate(z, st):
        _, r, pr, _ = sp.split(z, st.aux)
        rho = st.aux[0]
        s, t = pr[0], pr[1]  # feasible: γ(∅) = 0, q in its box
        g, q = 0.5 * (s + t), s - t
        big = d.cost(s, t) + 0.5 * eps * (jnp.sum(g * g) + jnp.sum(q * q))
        ya = jnp.where(free, 0.0, rho * (r[2] - pr[2]))  # |y| ≤ 1 by construction
        yo = jnp.where(free, 0.0, rho * (r[3] - pr[3]))
        gg = jnp.where(free, 0.0, kron_apply(ya, _MT) + kron_apply(yo, _L))  # ∂/∂γ of ⟨y, (a, o)⟩ (γ(∅) fixed)
        gq = 0.5 * (kron_apply(ya, _MT) - kron_apply(yo, _L))
        # D_ε(y) = ⟨y, c⟩ + min_γ ⟨γ, g_γ⟩ + ε/2‖γ‖² + min_{|q|≤ρ_q} ⟨q, g_q⟩ + ε/2‖q‖²
        hq = jnp.where(jnp.abs(gq) <= eps * rq, -gq * gq / (2 * eps), -rq * jnp.abs(gq) + 0.5 * eps * rq * rq)
        dual = jnp.sum(ya * ca) + jnp.sum(yo * co) - jnp.sum(gg * gg) / (2 * eps) + jnp.sum(hq)
        return big, jnp.clip(dual, 0.0, big), s, t

    def give_up(big, dual, x):
        s, t = x
        return _proven_above(big, dual, jnp.sqrt(jnp.sum((0.5 * (s + t)) ** 2) + jnp.sum((s - t) ** 2)), eps, above)

    # z comes and goes at penalty 1 (z = x + y with x = P_V z): each stage rescales it to its own
    # penalty, so the dual carried from the last stage survives the change of ρ
    return _run_tikhonov_stage(sp, d.project, certificate, eps, z, d.floor, gtol, budget, check_every, _EPS_RHO,
                               True, None if above is None else give_up)


def _canonical_phase(v, gamma0, q0, lb, q_ratio, tol, max_iter, check_every):
    r"""Least-norm optimum of one game by Tikhonov continuation, warm-started at an optimum.

    For ``ε > 0`` the regularized problem ``min F(γ, q) + ε/2 (‖γ‖² + ‖q‖²)`` (``F`` the ℓ1
    objective, same constraints) has a unique minimizer ``x_ε``; for every ``ε`` below some
    ``ε̄ > 0`` it is exactly the least-norm optimum of ``F`` [Mangasarian & Meyer 1979]. ``ε̄``
    is unknown, so ``ε`` starts at 1 (problem scaled to ``max|c| = 1``) and is divided by 4
    until ``x_ε`` is verified LP-optimal: ``F(x_ε)`` no larger than the objective of ``(γ₀, q₀)``,
    the optimum found before (up to rounding) and within ``tol`` of the certified bound ``lb``.
    Each stage is a Douglas–Rachford solve in ``(s, t, a, o)`` (exact graph projection, as in
    :func:`_solve_shared`; the Tikhonov term and the ``q`` box make a separable prox) with a
    duality-gap stop: the dual function ``D_ε(y)`` of the regularized problem is explicit, and
    ``ε/2‖x − x_ε‖² ≤ G_ε(x) − D_ε(y)`` bounds the distance to ``x_ε``. Since an LP-optimal
    ``x`` is on the optimal set ``X*`` and the least-norm point ``x*`` is the projection of 0
    on ``X*``, ``‖x − x*‖² ≤ ‖x‖² − ‖x*‖² ≤ 2(G_ε(x) − D_ε(y))/ε``: the reported distance.

    Returns ``(gamma, q, accepted, eps, distance, iterations)`` in the units of ``v``.
    """
    dt = v.dtype
    ca, co, scale, free = _split_data(v)
    scale = scale[0]
    rq = (q_ratio * jnp.abs(v[-1] - v[0]) / scale).astype(dt)
    d = _TikhonovGame(ca, co, free, rq, _rounding_floor(v) / scale, _graph_projection(ca, co))
    M = lambda x: kron_apply(x, _M)  # noqa: E731
    L = lambda x: kron_apply(x, _L)  # noqa: E731
    floor = d.floor
    lb_s = lb / scale
    cost = d.cost

    def stage(z, eps, budget, gtol, above=None):
        return _tikhonov_stage(d, z, eps, budget, gtol, check_every, above)

    s0, t0 = (gamma0 + 0.5 * q0) / scale, (gamma0 - 0.5 * q0) / scale
    z0 = (s0, t0, M(s0) + ca, L(t0) + co)
    (s, t), acc, eps, dist, it = _tikhonov_continuation(
        stage, cost, z0, (s0, t0), lb_s, floor, tol, max_iter, check_every)
    return 0.5 * (s + t) * scale, (s - t) * scale, acc, eps, dist * scale, it


def _tikhonov_continuation(stage, cost, z0, x0, lb, floor, tol, max_iter, check_every, accuracy=_STAGE_ACC):
    """The ε loop of :func:`_canonical_phase` and :func:`_shared_canonical_phase` (scaled units).

    ``stage(z, eps, budget, gtol, above=None) -> (G_ε, D_ε, x, iterations, z)`` solves the
    regularized problem from ``z`` to a relative gap ``gtol`` (a :func:`_certified_loop`), and
    may stop early once ``F(x_ε) > above`` is proven (the coarse solve passes the level above
    which ``ε`` is rejected anyway); ``cost(*x)`` is
    the unregularized objective ``F``; ``x0`` the optimum found before (warm start ``z0``) and
    ``lb`` its certified bound. ε = 1, 1/4, … 4⁻⁷: a coarse solve first (an ε too large shows as
    ``F(x_ε)`` clearly above the optimum), then a fine one (relative gap of ``G_ε`` ≤
    ``max(accuracy·tol, 10·eps)``); ``x_ε`` is accepted when the fine stage is solved,
    ``F(x_ε) ≤ F(x0)`` up to rounding and ``F(x_ε) − lb ≤ tol·F(x_ε)``.
    Returns ``(x, accepted, eps, distance, iterations)``, ``distance = √(2(G_ε − D_ε)/ε)``.
    """
    p_s = cost(*x0)  # the optimum found before
    dt = p_s.dtype
    fine = jnp.maximum(tol * accuracy, 10 * jnp.finfo(dt).eps)  # stage accuracy (relative gap of G_ε)
    coarse = jnp.maximum(fine, 1e-7)

    def body(c):
        z, eps, k, it, _acc, _x, _d = c
        # a coarse solve first: an ε too large shows as F(x_ε) clearly above the optimum
        level = p_s + floor + 10 * coarse * p_s  # F(x_ε) above this: ε too large
        # a coarse solve that stalls must not eat the budget of the smaller ε still to come
        cap = jnp.maximum(jnp.minimum(max_iter - it, max_iter // _COARSE_DIV), check_every).astype(it.dtype)
        big, dual, x, used, z = stage(z, eps, cap, coarse, level)
        it = it + used
        promising = cost(*x) <= p_s + floor + 10 * coarse * big
        big, dual, x, used, z = jax.lax.cond(
            promising & (it < max_iter),
            lambda z: stage(z, eps, jnp.maximum(max_iter - it, check_every), fine),
            lambda z: (big, dual, x, jnp.zeros((), jnp.int32), z),
            z,
        )
        it = it + used
        f = cost(*x)
        gtol = fine
        solved = _gap(big, dual, floor) <= gtol
        # LP-optimal up to the stage's own accuracy, and certified within tol
        acc = solved & (f <= p_s + floor + gtol * big) & (f - lb <= jnp.maximum(tol * f, floor))
        dist = jnp.sqrt(2.0 * jnp.maximum(big - dual, 0.0) / eps)
        return z, jnp.where(acc, eps, eps * _EPS_FACTOR), k + 1, it, acc, x, dist

    def cond(c):
        _, _, k, it, acc, _, _ = c
        return (~acc) & (k < _EPS_STAGES) & (it < max_iter)

    init = (z0, jnp.asarray(_EPS0, dt), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32), jnp.zeros((), bool),
            tuple(x0), jnp.asarray(jnp.inf, dt))
    _, eps, _, it, acc, x, dist = jax.lax.while_loop(cond, body, init)
    return x, acc, eps, dist, it


def _split_objective(i_and: Array, i_or: Array) -> Array:
    """``Σ_{T≠∅} |I_and(T)| + |I_or(T)|`` per game (leading axes kept)."""
    return jnp.sum(jnp.abs(i_and[..., 1:]), axis=-1) + jnp.sum(jnp.abs(i_or[..., 1:]), axis=-1)


def _assemble(v, u, q):
    """Interactions and γ from ``u = mobius(o_and)`` (off ∅) and ``q``; γ(∅) = 0.

    Singletons are merged into AND (``I_or({i}) = 0``): the AND and the OR interaction of one
    player are the same function of S, so only their sum is determined; merging never raises
    the objective (``|a + b| ≤ |a| + |b|``, equal at any optimum, where they share a sign).
    """
    w = v + q
    b = w[..., :1]
    u = u.at[..., 0].set(0.5 * b[..., 0])  # o_and(∅) = ½ b  ⇔  γ(∅) = 0
    o_and = zeta(u)
    i_or = or_mobius(w - o_and)
    single = _singletons(v.shape[-1])
    moved = jnp.where(single, i_or, 0.0)  # γ += Σ_{i∈S} I_or({i}) moves them to AND
    o_and = o_and + or_zeta(moved)
    gamma = (o_and - 0.5 * w).at[..., 0].set(0.0)
    i_and = mobius(o_and).at[..., 0].set(b[..., 0])
    i_or = jnp.where(single, 0.0, i_or).at[..., 0].set(0.0)
    return i_and, i_or, gamma


def _and_part(v: Array, gamma: Array, q: Array) -> Array:
    """``u = mobius(o_and)`` with ``o_and = ½(v + q) + γ`` (the LP solver's variable; ``u_∅`` is free)."""
    return mobius(0.5 * (v + q) + gamma)


def _gamma_of(v: Array, u: Array, q: Array) -> Array:
    """Inverse of :func:`_and_part` with ``γ(∅) = 0``: the split of the LP solver's ``(u, q)``."""
    w = v + q
    return (zeta(u.at[..., 0].set(0.5 * w[..., 0])) - 0.5 * w).at[..., 0].set(0.0)


def _singletons(size: int) -> np.ndarray:
    idx = np.arange(size)
    return (idx > 0) & (idx & (idx - 1) == 0)


def _budget_bytes(batch: int, size: int, itemsize: int) -> int:
    # ζ (3), anchor (3), warm start and CG vectors (5), best iterate (2), projection / prox
    # temporaries (~11) per game
    return 24 * batch * size * itemsize


def and_or(
    v: Float[ArrayLike, "*batch 2**n"],
    *,
    q_ratio: float = 0.02,
    tol: float | None = None,
    max_iter: int = 100_000,
    check_every: int = 50,
    rho: float | None = None,
    chunk: int = 1,
    memory_budget: int | str | None = None,
    canonical: bool = False,
    canonical_max_iter: int = 1_000_000,
    warm_start: AndOrResult | tuple[ArrayLike, ArrayLike] | None = None,
    devices: Sequence[jax.Device] | str | None = None,
) -> AndOrResult:
    r"""AND-OR interactions at the certified minimum of ``Σ_{T≠∅}|I_and(T)| + |I_or(T)|``.

    docs/math.md §3, [D24] eq. (11), [C24] §3. ``q_ratio`` defaults to 0.02 as in [D24] and [C24]
    ([R24] uses 0.04); ``q_ratio = 0`` drops the noise term (``q = 0``).

    Args:
        v: model outputs on all masks, shape ``(..., 2**n)``; leading axes are a batch of games
            solved in one compiled call (see ``chunk``); the function also works under ``jax.vmap``.
        q_ratio: noise box ``|q_S| ≤ q_ratio·|v(N) − v(∅)|``.
        tol: stop when the relative duality gap ``(objective − lower_bound)/objective ≤ tol``;
            default 1e-5 in float64 and 1e-3 in float32 (whose rounding stalls the gap near
            1e-4: pass float64 ``v`` with ``jax_enable_x64`` on for tighter certificates).
        max_iter: iteration cap (rounded up to a multiple of ``check_every``); ``converged``
            is False if it is hit first. Cost per iteration with the noise term, measured on
            two CPU cores in float64: 35–45 µs at n = 10 (exact projection, up to n = 10 in
            float64), then with conjugate gradients in the q-projection 13 ms at n = 16 and
            0.9 s at n = 20, where they run into their step cap (docs/math.md §3.5). So a
            planted game at n = 16 took 14,450 iterations (194 s), and at n = 20 it was still
            at gap 8.5e-4 after 2,500 iterations (40 min).
        check_every: iterations between certificate checks.
        rho: Douglas–Rachford penalty on the problem scaled to ``max|c| = 1``. ``None``
            (default): start at 30 without the noise term and 50 with it, then adapt it at
            restarts to the ratio of dual to primal movement (PDLP's primal weight,
            docs/math.md §3.6); a number: that fixed penalty.
        chunk: games solved in lock-step (vmapped) per step of the compiled loop over the
            batch. 1 (default) lets every game stop at its own certificate, which is fastest on
            CPU where iteration counts vary between games; larger chunks suit accelerators.
            With ``chunk = 1`` and a concrete batch on the CPU, contiguous parts of the batch
            are solved in parallel host threads, one per core.
        memory_budget: bytes (or "2G") a call may hold; default :func:`jinter.memory_budget`.
        canonical: ``True`` returns the canonical optimum: among all optimal ``(γ, q)`` with
            ``γ(∅) = 0`` the one with the least ``‖γ‖₂² + ‖q‖₂²`` (unique), so that the
            interactions do not depend on the algorithm or its start. ``False`` (default, for
            now) returns whichever optimum the iteration reaches (deterministic, but not
            characterized). Measured: random games at n = 6, every interaction within
            1.5e-7·max|I| of a least-norm QP (the default optimum: 0.24–0.30), 2k–13k
            iterations; at n = 8, 27k–66k iterations (0.4–0.8 s per game; 8 of 8 Gaussian and
            planted games verified); at n = 10, 84k–168k (3.0–6.7 s; 4 of 4 verified), which is
            why it is not the default yet (docs/math.md §3.7.1).
        canonical_max_iter: iteration budget of the canonical phase (all Tikhonov stages
            together); a game that runs out keeps the LP optimum and says so in ``status``.
        warm_start: an earlier :class:`AndOrResult` for the same ``v`` (or a pair ``(gamma, q)``
            broadcastable to ``v``) to start the iteration from; the canonical optimum does not
            depend on it.
        devices: devices to shard the batch of games over (``jax.shard_map`` on a 1-D mesh; each
            device solves its share with ``chunk`` games in lock-step): a sequence of devices,
            ``"all"`` (this process's devices), or ``None`` (default): the devices a concrete
            ``v`` is already sharded over (e.g. by the sweep), else one device. On GPU/TPU use
            ``chunk`` = 64–1024 so that a device runs many games at once; finished games of a
            chunk are masked (they keep their certified result) until the chunk is done.

    Canonical optimum (docs/math.md §3): the ℓ1 objective has many optima on most games (two
    exact LP solvers agree on the objective while single interactions differ by a third of
    ``max|I|``). After the LP solve, the Tikhonov-regularized problem ``min F + ε/2(‖γ‖² + ‖q‖²)``
    is solved for ε = 1, 1/4, 1/16, … (problem scaled to ``max|c| = 1``) by Douglas–Rachford with
    an explicit dual bound, until its minimizer is verified optimal for ``F`` (objective no larger
    than the optimum found, gap ≤ ``tol``). For every ε below some ε̄ > 0 that minimizer *is* the
    least-norm optimum [Mangasarian & Meyer 1979], and for any optimal ``x`` the distance to it is
    at most ``√(2·(G_ε(x) − D_ε(y))/ε)`` (reported as ``canonical_distance``). A game where no ε
    down to 4⁻⁷ is verified within ``canonical_max_iter`` iterations keeps the LP optimum and says so
    (``status``).

    Returns:
        :class:`AndOrResult`. Universal matching ``v + q = zeta(I_and) + or_zeta(I_or)`` holds
        to rounding for every iterate; ``lower_bound ≤ optimum ≤ objective``; ``status`` (and
        :meth:`AndOrResult.messages`) says whether the optimum is certified and canonical.

    Raises:
        ValueError: last axis not a power of two, non-finite ``v`` (index reported), a game
            whose ``max|v|`` is outside the range its dtype can solve (below ``tiny/√eps``
            subnormal flushing, above ``max/(128(n+1)·3^n)`` overflow: rescale ``v``),
            negative ``q_ratio``, ``tol`` or ``rho`` not a positive number, ``warm_start`` of the
            wrong shape.
        TypeError: complex, non-numeric or half-precision ``v``.
        MemoryBudgetError: the solve would not fit the budget (checked before allocating).
    """
    o = _solver_options(q_ratio=q_ratio, tol=tol, max_iter=max_iter, check_every=check_every, rho=rho, chunk=chunk,
                        memory_budget=memory_budget, canonical=canonical, canonical_max_iter=canonical_max_iter)
    v, n = _check_v(v)
    size = 2**n
    batch = int(np.prod(v.shape[:-1], dtype=np.int64))
    check_budget(
        _budget_bytes(batch, size, v.dtype.itemsize),
        f"and_or on {batch} game(s) of n={n} players in {v.dtype}",
        o["memory_budget"], argument=True,
    )
    # None: start at the tuned value and adapt (_penalty_update); a number: fixed
    penalty = ((30.0 if o["q_ratio"] == 0 else 50.0), _ADAPT_RHO) if o["rho"] is None else (o["rho"], False)
    tol = default_tol(v.dtype) if o["tol"] is None else o["tol"]
    start = _warm_start(warm_start, v)
    budget = o["canonical_max_iter"] if o["canonical"] else 0  # 0: no canonical phase
    args = (o["q_ratio"], tol, o["max_iter"], o["check_every"], penalty, o["chunk"], budget)
    devs = _batch_devices(v, devices)
    if devices is not None and (len(devs) == 1 or batch <= 1) and not is_traced(v):  # devs: not empty then
        v = jax.device_put(v, devs[0])  # one device asked for (or one game): solved there
        start = None if start is None else jax.device_put(start, devs[0])
    if len(devs) > 1 and batch > 1:
        return _promised(_sharded(v, start, args, tuple(devs)), v)
    workers = _host_workers(v, batch, chunk)
    if workers <= 1:
        return _promised(_and_or_jit(v, start, *args), v)
    flat = (v.reshape((batch, size)),) + (() if start is None else tuple(x.reshape((batch, size)) for x in start))
    fn = lambda x, *st: _and_or_jit(x, st if st else None, *args)  # noqa: E731
    res = _in_host_threads(fn, flat, workers)
    return _promised(jax.tree.map(lambda x: x.reshape(v.shape[:-1] + x.shape[1:]), res), v)


def _promised(res: AndOrResult, v: Array) -> AndOrResult:
    """What :func:`and_or` promises, asserted (chex): interaction arrays shaped like ``v`` and,
    for concrete values, finite (a finite game never gives a NaN split: this is a solver bug)."""
    chex.assert_shape([res.I_and, res.I_or, res.gamma, res.q], v.shape)
    chex.assert_shape([res.objective, res.gap, res.iterations, res.status], v.shape[:-1])
    if not is_traced(res.I_and):
        chex.assert_tree_all_finite((res.I_and, res.I_or, res.gamma, res.q, res.objective))
    return res


def _batch_devices(v: Array, devices: Any) -> list:
    """The devices to shard a batch of games over (see ``devices`` in :func:`and_or`)."""
    if devices is None:
        if is_traced(v) or not isinstance(v, jax.Array):
            return []
        return sorted(v.devices(), key=lambda d: d.id)
    if isinstance(devices, str):
        if devices != "all":
            raise ValueError(f"devices must be a sequence of jax devices, 'all' or None, got {devices!r}")
        return list(jax.local_devices())
    devs = list(devices) if hasattr(devices, "__iter__") else None
    if not devs or not all(isinstance(d, jax.Device) for d in devs):
        raise ValueError(f"devices must be a non-empty sequence of jax devices, got {devices!r}")
    return devs


_GAMES = "games"  # mesh axis of the batch of games


@functools.lru_cache(maxsize=32)
def _sharded_fn(args: tuple, devices: tuple, with_start: bool):
    from jax.sharding import Mesh, PartitionSpec

    mesh = Mesh(np.asarray(devices), (_GAMES,))
    spec = PartitionSpec(_GAMES)

    def local(x, *st):  # one device's share of the games
        return _and_or_impl(x, st if with_start else None, *args)

    in_specs = (spec,) * (3 if with_start else 1)
    return mesh, jax.jit(jax.shard_map(local, mesh=mesh, in_specs=in_specs, out_specs=spec, check_vma=False))


def _sharded(v: Array, start, args: tuple, devices: tuple) -> AndOrResult:
    """The batch of games split over ``devices`` (padded to a multiple of their number by
    repeating the last game, which is dropped again); results as one call's."""
    from jax.sharding import NamedSharding, PartitionSpec

    size = v.shape[-1]
    flat = v.reshape((-1, size))
    batch, d = flat.shape[0], len(devices)
    padded = -(-batch // d) * d
    arrays = (flat,) + (() if start is None else tuple(x.reshape((-1, size)) for x in start))
    arrays = tuple(jnp.concatenate([x, jnp.repeat(x[-1:], padded - batch, axis=0)]) for x in arrays)
    mesh, fn = _sharded_fn(args, devices, start is not None)
    sharding = NamedSharding(mesh, PartitionSpec(_GAMES))
    res = fn(*(jax.device_put(x, sharding) for x in arrays))
    return jax.tree.map(lambda x: x[:batch].reshape(v.shape[:-1] + x.shape[1:]), res)


def _warm_start(warm_start: Any, v: Array) -> tuple[Array, Array] | None:
    """``(γ, q)`` broadcast to ``v``'s shape and dtype, from a result or a pair (``None``: none)."""
    if warm_start is None:
        return None
    if isinstance(warm_start, AndOrResult):
        pair = (warm_start.gamma, warm_start.q)
    elif isinstance(warm_start, (tuple, list)) and len(warm_start) == 2:
        pair = tuple(warm_start)
    else:
        raise ValueError("warm_start must be an AndOrResult or a pair (gamma, q)")
    out = []
    for name, x in zip(("gamma", "q"), pair):
        if x is None or isinstance(x, str):
            raise TypeError(f"warm_start {name} must be an array (broadcasting to v's shape), got {x!r}")
        x = as_real_float(x, f"warm_start {name}")
        try:
            x = jnp.broadcast_to(x, v.shape).astype(v.dtype)
        except ValueError:
            raise ValueError(f"warm_start {name} has shape {x.shape}, which does not broadcast to v's {v.shape}") from None
        check_finite(x, f"warm_start {name}")
        out.append(x)
    return out[0] - out[0][..., :1], out[1]  # γ up to a constant (docs/math.md §3.7): γ(∅) = 0


def _host_workers(v: Array, batch: int, chunk: int) -> int:
    """Host threads for a batch of games: the CPU cores, for concrete CPU arrays on one device."""
    if batch < 2 or chunk > 1 or is_traced(v):
        return 1
    devices = v.devices()
    if len(devices) != 1 or next(iter(devices)).platform != "cpu":
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, batch))


def _in_host_threads(fn: Callable[..., Any], arrays: tuple[Array, ...], workers: int) -> Any:
    """``fn`` on contiguous parts of batch-first ``arrays`` in parallel host threads, concatenated.

    On the CPU, XLA runs one small game's solve on one core; every game's computation is the
    same whichever part it is in, so results equal one call's.
    """
    batch = arrays[0].shape[0]
    size = -(-batch // workers)  # equal parts (one compilation): pad by repeating the last game
    pad = lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], size * workers - batch, axis=0)])  # noqa: E731
    arrays = tuple(pad(x) for x in arrays)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(lambda k: fn(*(x[k * size : (k + 1) * size] for x in arrays)), range(workers)))
    return jax.tree.map(lambda *xs: jnp.concatenate(xs)[:batch], *parts)


def _solve_game(x, start, q_ratio, tol, max_iter, check_every, rho, canonical):
    """One game: the LP solve, then (``canonical`` > 0: its iteration budget) the least-norm phase. Returns
    ``(u, q, lower_bound, iterations, canonical_ok, eps, distance)``."""
    with_q = q_ratio > 0
    u, q, lb, it = _solve_single(x, q_ratio, tol, max_iter, check_every, rho, with_q, start, _POLISH_EVERY)
    dt = x.dtype
    if not canonical:
        return u, q, lb, it, jnp.zeros((), bool), jnp.zeros((), dt), jnp.asarray(jnp.inf, dt)
    g0 = _gamma_of(x, u, q)
    p = _split_objective(*_assemble(x, u, q)[:2])
    certified = _gap(p, jnp.clip(lb, 0.0, p), _rounding_floor(x)) <= tol
    # the least-norm phase starts from a certified optimum only (else it has nothing to verify against)
    g, qc, ok, eps, dist, it2 = jax.lax.cond(
        certified,
        lambda: _canonical_phase(x, g0, q, lb, q_ratio, tol, canonical, check_every),
        lambda: (g0, q, jnp.zeros((), bool), jnp.zeros((), dt), jnp.asarray(jnp.inf, dt), jnp.zeros((), it.dtype)),
    )
    u = jnp.where(ok, _and_part(x, g, qc), u)
    q = jnp.where(ok, qc, q)
    return u, q, lb, it + it2, ok, eps, dist


def _and_or_impl(v, start, q_ratio, tol, max_iter, check_every, rho, chunk, canonical):
    lead = v.shape[:-1]
    flat = v.reshape((-1, v.shape[-1]))
    # Solved as v − v(∅): the interactions off ∅, γ and q do not depend on a constant, but the
    # rounding of the transforms grows with it (a game 1e6 + 1e-7·noise had stalled at a gap of
    # 1e-3, "raise max_iter"); the difference is exact where the offset dominates (Sterbenz).
    out_of_range = _out_of_range(flat, v.shape[-1].bit_length() - 1)  # refused by and_or where v is concrete
    base = flat[:, :1]
    flat = flat - base
    if start is not None:
        start = tuple(x.reshape(flat.shape) for x in start)
    solve = lambda a: _solve_game(  # noqa: E731
        a[0], a[1], q_ratio, tol, max_iter, check_every, rho, canonical)
    if chunk <= 1 or flat.shape[0] == 1:
        # each game keeps its own stopping time (no waiting for the slowest game of a batch)
        u, q, lb, it, ok, eps, dist = jax.lax.map(solve, (flat, start))
    else:
        u, q, lb, it, ok, eps, dist = jax.lax.map(solve, (flat, start), batch_size=chunk)
    i_and, i_or, gamma = _assemble(flat, u, q)
    i_and = i_and.at[:, 0].add(base[:, 0])  # the bias v(∅) + q(∅)
    p = _split_objective(i_and, i_or)
    lb = jnp.clip(lb, 0.0, p)
    gap = jnp.where(out_of_range, jnp.inf, _gap(p, lb, _rounding_floor(flat)))  # inf: said in messages()
    converged = gap <= tol
    status = jnp.where(~converged, STATUS_UNCERTIFIED, jnp.where(ok, STATUS_CANONICAL, STATUS_NOT_CANONICAL))
    if not canonical:
        status = jnp.where(converged, STATUS_ANY_OPTIMUM, STATUS_UNCERTIFIED)
    r = lambda x: x.reshape(lead + x.shape[1:])  # noqa: E731
    return AndOrResult(
        I_and=r(i_and),
        I_or=r(i_or),
        gamma=r(gamma),
        q=r(q),
        objective=r(p),
        lower_bound=r(lb),
        gap=r(gap),
        iterations=r(it),
        converged=r(converged),
        canonical=r(ok & converged),
        canonical_eps=r(jnp.where(ok & converged, eps, 0.0)),
        canonical_distance=r(jnp.where(ok & converged, dist, jnp.inf)),  # a bound only where verified
        status=r(status.astype(jnp.int32)),
    )


_and_or_jit = jax.jit(_and_or_impl, static_argnums=(2, 3, 4, 5, 6, 7, 8))


# ----------------------------------------------------------------------------------------
# Several models sharing interactions [C24]
# ----------------------------------------------------------------------------------------


class SharedAndOrResult(NamedTuple):
    """Result of :func:`and_or_shared`; model axis first, then the batch axes of one model.

    Attributes:
        I_and, I_or: per-model interactions ``(m, ..., 2**n)`` (``I_and[..., 0]`` = bias, ``I_or[..., 0] = 0``).
        gamma_shared: ``γ̄`` ``(..., 2**n)``; gamma_model: ``γ̂^(i)`` ``(m, ..., 2**n)``
            (``γ^(i) = γ̄ + γ̂^(i)``; ``γ^(i)(∅) = 0``). The solver keeps ``γ̂^(i)`` in its box
            ``|γ̂^(i)| ≤ gamma_bound_i`` up to a constant; the reported ``γ̂^(i)`` is shifted to
            ``γ̂^(i)(∅) = 0`` (docs/math.md §3.8, Assembly), so it may exceed the bound (its
            half-range does not).
        q: per-model noise ``(m, ..., 2**n)``.
        objective, lower_bound, gap: shared objective, certified dual bound, relative gap ``(...)``.
        iterations, converged: Douglas–Rachford iterations (both phases) and ``gap ≤ tol``.
        canonical: the point is the canonical optimum (least ``‖γ̄‖² + Σ_i ‖γ̂^(i)‖² + ‖q^(i)‖²``
            among all optima, see :func:`and_or_shared`), verified; False with ``canonical=False``.
        canonical_eps: the Tikhonov weight ``ε`` (problem scaled to ``max|c| = 1``) at which the
            regularized minimizer was verified optimal (0 when not verified or not asked for).
        canonical_distance: certified bound on the distance ``‖x − x*‖₂`` of
            ``x = (γ̄, γ̂^(1..m), q^(1..m))`` (before the ∅ shift of ``γ̂``) to the canonical optimum,
            in the units of ``vs`` (``inf`` when not canonical).
        status: :data:`STATUS_CANONICAL` (0), :data:`STATUS_NOT_CANONICAL` (1),
            :data:`STATUS_UNCERTIFIED` (2) or :data:`STATUS_ANY_OPTIMUM` (3) per input, as in
            :class:`AndOrResult`; :meth:`messages` says it in words.

    The shared salient sets ``Ω_shared`` are an analysis of the result, not part of the solve:
    :func:`jinter.statistics.shared_salient`.
    """

    I_and: Float[Array, "m *batch 2**n"]
    I_or: Float[Array, "m *batch 2**n"]
    gamma_shared: Float[Array, "*batch 2**n"]
    gamma_model: Float[Array, "m *batch 2**n"]
    q: Float[Array, "m *batch 2**n"]
    objective: Float[Array, "*batch"]
    lower_bound: Float[Array, "*batch"]
    gap: Float[Array, "*batch"]
    iterations: Int[Array, "*batch"]
    converged: Bool[Array, "*batch"]
    canonical: Bool[Array, "*batch"]
    canonical_eps: Float[Array, "*batch"]
    canonical_distance: Float[Array, "*batch"]
    status: Int[Array, "*batch"]

    def messages(self) -> list[str]:
        """The status of every input in words (flattened over the batch axes)."""
        return _status_messages(self.status, self.gap)




def _phi(z: Array, alpha: float) -> Array:
    """(1−α)·max_i|z_i| + α·Σ_i|z_i| along the model axis 0."""
    a = jnp.abs(z)
    return (1 - alpha) * jnp.max(a, axis=0) + alpha * jnp.sum(a, axis=0)


def _proj_l1_ball(x: Array, radius: Array) -> Array:
    """Euclidean projection of each column (axis 0) on the ℓ1 ball of the given radius."""
    a = jnp.abs(x)
    srt = -jnp.sort(-a, axis=0)
    css = jnp.cumsum(srt, axis=0)
    k = jnp.arange(1, x.shape[0] + 1, dtype=x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
    cond = srt - (css - radius) / k > 0
    rank = jnp.sum(cond, axis=0)  # ≥ 1 when outside the ball
    idx = jnp.maximum(rank - 1, 0)
    theta = (jnp.take_along_axis(css, idx[None], axis=0)[0] - radius) / jnp.maximum(rank, 1).astype(x.dtype)
    theta = jnp.maximum(theta, 0.0)
    inside = jnp.sum(a, axis=0) <= radius
    return jnp.where(inside, x, jnp.sign(x) * jnp.maximum(a - theta, 0.0))


def _prox_phi(x: Array, lam: Array, alpha: float) -> Array:
    """prox of λ·φ: soft threshold by λα, then the ℓ∞ prox (Moreau: x − Π_{ℓ1 ball λ(1−α)})."""
    s = jnp.sign(x) * jnp.maximum(jnp.abs(x) - lam * alpha, 0.0)
    return s - _proj_l1_ball(s, lam * (1 - alpha))


def _dual_norm_phi(y: Array, alpha: float, steps: int = 60) -> Array:
    """Dual norm of φ (unit ball α·B∞ + (1−α)·B1): least t with Σ_i (|y_i| − tα)_+ ≤ t(1−α)."""
    a = jnp.abs(y)
    if alpha >= 1.0:  # φ = ℓ1, dual norm ℓ∞
        return jnp.max(a, axis=0)
    hi = jnp.sum(a, axis=0) / (1 - alpha)  # always feasible
    lo = jnp.zeros_like(hi)

    def body(_, lh):
        lo, hi = lh
        t = 0.5 * (lo + hi)
        ok = jnp.sum(jnp.maximum(a - t * alpha, 0.0), axis=0) <= t * (1 - alpha)
        return jnp.where(ok, lo, t), jnp.where(ok, t, hi)

    _, hi = jax.lax.fori_loop(0, steps, body, (lo, hi))
    return hi


def _cap_bound(p: Array, b: Array) -> Array:
    """Bounds beyond the spread of ``p`` and of the finite bounds never bind: cap them there, so
    that huge or infinite bounds stay finite (an infinite ``b_i`` frees model i alone)."""
    finite = jnp.where(jnp.isfinite(b), b, 0.0)
    return jnp.minimum(b, 4 * (jnp.max(jnp.abs(p), axis=0) + jnp.max(finite, axis=0)) + 1)


def _proj_shared_box(p: Array, b: Array) -> tuple[Array, Array]:
    """Project each column of ``p`` (m, N) on ``{p : ∃g, |p_i − g| ≤ b_i}`` (the [C24] γ set).

    For a fixed ``g`` the projection clips ``p_i`` to ``[g − b_i, g + b_i]``; the best ``g``
    zeroes ``D(g) = Σ_i (g − p_i − b_i)_+ − (p_i − b_i − g)_+``, a nondecreasing piecewise-linear
    function whose root lies between two consecutive of the ``2m`` breakpoints ``p_i ± b_i``:
    evaluate ``D`` there and interpolate (exact, O(m²) per column). Returns the projection and ``g``.
    """
    b = _cap_bound(p, b)
    lo, hi = p - b, p + b
    bp = jnp.concatenate([lo, hi], axis=0)  # (2m, N)
    d = jnp.sum(jnp.maximum(bp[:, None] - hi[None], 0.0) - jnp.maximum(lo[None] - bp[:, None], 0.0), axis=1)
    g = _piecewise_linear_root(bp, d)  # D(min bp) ≤ 0 ≤ D(max bp)
    return jnp.clip(p, g - b, g + b), g


def _piecewise_linear_root(pts: Array, d: Array) -> Array:
    """Root of a nondecreasing function ``D``, linear between consecutive ``pts`` (axis 0), per
    column, from its values ``d`` there (``D(min pts) ≤ 0 ≤ D(max pts)``): interpolate between
    the last point with ``D ≤ 0`` and the first with ``D ≥ 0`` (exact)."""
    left = jnp.max(jnp.where(d <= 0, pts, -jnp.inf), axis=0)
    right = jnp.min(jnp.where(d >= 0, pts, jnp.inf), axis=0)
    d_left = jnp.max(jnp.where(pts == left, d, -jnp.inf), axis=0)
    d_right = jnp.min(jnp.where(pts == right, d, jnp.inf), axis=0)
    slope = d_right - d_left
    return jnp.where(slope > 0, left - d_left * (right - left) / jnp.where(slope > 0, slope, 1.0), left)


def _phi_dual_feasible(ya: Array, yo: Array, alpha: float, free: Array) -> tuple[Array, Array]:
    """Dual points of the AND and OR columns rescaled into the unit ball of φ's dual norm (one factor
    ``max(1, max_S φ°)``, so linear constraints on ``y`` are kept); ``free`` (∅) columns are ignored."""
    nrm = jnp.where(free, 0.0, jnp.maximum(_dual_norm_phi(ya, alpha), _dual_norm_phi(yo, alpha)))
    sc = jnp.maximum(1.0, jnp.max(nrm))
    return ya / sc, yo / sc


def _solve_shared(vs, gb, q_ratio, alpha, tol, max_iter, check_every, rho):
    """One input, ``vs`` (m, 2**n): Halpern–Douglas–Rachford with a certified duality-gap stop.

    Per model, ``s = γ + ½q`` and ``t = γ − ½q`` make the interactions ``a = M s + c_a`` (AND)
    and ``o = L t + c_o`` (OR) two separate Kronecker maps, so the projection on the graph
    ``{(s, t, a, o)}`` is exact with two butterfly solves ``(I + MᵀM)⁻¹``, ``(I + LᵀL)⁻¹``.
    The other prox is separable per subset: the γ set of [C24] and the ``q`` box act on
    ``γ = ½(s + t)``, ``q = s − t`` (an orthogonal change of variables up to scale), ``φ`` on
    the AND and OR columns across models.
    """
    m, size = vs.shape
    dt = vs.dtype
    M = lambda x: kron_apply(x, _M)  # noqa: E731
    MT = lambda x: kron_apply(x, _MT)  # noqa: E731
    L = lambda x: kron_apply(x, _L)  # noqa: E731
    ca, co, scale, free = _split_data(vs, per_game=False)  # one scale: keeps the bounds finite
    scale = scale.reshape(())
    floor = jnp.sum(_rounding_floor(vs)) / scale
    rg = (gb / scale)[:, None].astype(dt)  # may be huge or inf: see _proj_shared_box
    rq = (q_ratio * jnp.abs(vs[:, -1] - vs[:, 0]) / scale)[:, None].astype(dt)
    rho = jnp.asarray(rho, dt)
    thr = 1.0 / rho

    def prox(r, _rho):  # at the fixed penalty rho
        rs, rt, ra, ro = r
        gamma, _ = _proj_shared_box(0.5 * (rs + rt), rg)
        q = jnp.clip(rs - rt, -rq, rq)
        a = jnp.where(free, ra, _prox_phi(ra, thr, alpha))
        o = jnp.where(free, ro, _prox_phi(ro, thr, alpha))
        return gamma + 0.5 * q, gamma - 0.5 * q, a, o

    sp = _dr_splitting(_graph_projection(ca, co), prox)

    def certificate(z):
        _, r, pr, _ = sp.split(z, (rho,))
        s, t = pr[0], pr[1]  # feasible: γ in the [C24] set, q in its box
        p = jnp.sum(jnp.where(free, 0.0, _phi(M(s) + ca, alpha) + _phi(L(t) + co, alpha)))
        # dual point from the φ prox, corrected so that Σ_i Aᵀy vanishes on γ̄ (free), then
        # rescaled into the unit ball of φ's dual norm (in bound()): a valid lower bound for
        # any iterate
        ya = jnp.where(free, 0.0, rho * (r[2] - pr[2]))
        yo = jnp.where(free, 0.0, rho * (r[3] - pr[3]))
        # a model with an infinite bound needs its own term zeroed; the rest of the correction
        # goes to the models whose γ̂ is cheapest to pay for (weights ∝ 1/bound, uniform for
        # equal bounds)
        ya = ya - jnp.where(jnp.isinf(rg), kron_apply(MT(ya) + L(yo), _ZT), 0.0)
        inv = 1.0 / (rg + 1e-12)
        wt = jnp.where(jnp.sum(inv) > 0, inv / jnp.sum(inv), 1.0 / m)
        ya = ya - kron_apply(jnp.sum(MT(ya) + L(yo), axis=0), _ZT)[None] * wt
        # second candidate: zero each model's Σ term (MᵀZᵀ = I), so the γ̂ penalty vanishes —
        # the better bound when gamma_bound is large (even infinite) for the data
        ya2 = ya - kron_apply(MT(ya) + L(yo), _ZT)
        return p, jnp.clip(jnp.maximum(bound(ya, yo, True), bound(ya2, yo, False)), 0.0, p), s, t

    def bound(ya, yo, with_gamma):
        ya = jnp.where(free, 0.0, ya)  # already 0 up to rounding (Σ_T of the corrections is 0)
        ya, yo = _phi_dual_feasible(ya, yo, alpha, free)
        ma, lo = MT(ya), L(yo)
        lin = jnp.sum(ya * ca) + jnp.sum(yo * co)
        pen = jnp.sum(rq * 0.5 * jnp.abs(ma - lo))
        if with_gamma:  # a model with an infinite bound had its term zeroed (up to rounding)
            pen = pen + jnp.sum(jnp.where(jnp.isinf(rg), 0.0, rg * jnp.abs(ma + lo)))
        return jnp.maximum(lin - pen, -lin - pen)

    opt = _dr_iteration(sp, rho)
    z0 = tuple(jnp.zeros((m, size), dt) for _ in range(4))
    p, lb, (s, t), it, _ = _certified_loop(opt, z0, lambda z, st: certificate(z), floor, tol, max_iter, check_every)
    gamma, q = 0.5 * (s + t), s - t
    # γ̄: the middle of the feasible interval (deterministic); γ̂^(i) = γ^(i) − γ̄
    b = _cap_bound(gamma, rg)
    g = 0.5 * (jnp.max(gamma - b, axis=0) + jnp.min(gamma + b, axis=0))
    return g * scale, (gamma - g) * scale, q * scale, lb * scale, it


def _shared_gamma_prox(gr: Array, b: Array, kappa: Array, free: Array) -> tuple[Array, Array]:
    r"""The γ step of the canonical shared prox: per column ``S``, the minimizer ``(ḡ, ĝ)`` of
    ``κ(ḡ² + Σ_i ĝ_i²) + Σ_i (ḡ + ĝ_i − r_i)²`` over ``|ĝ_i| ≤ b_i`` (``ḡ(∅) = 0``), ``r = gr`` (m, N).

    For a fixed ``ḡ`` the best ``ĝ_i = clip((r_i − ḡ)/(1 + κ), ±b_i)``. Half the derivative in
    ``ḡ``, ``D(ḡ) = κḡ − Σ_i (d_i − ĝ_i)`` with ``d_i = r_i − ḡ``, is nondecreasing and piecewise
    linear with kinks at ``r_i ± b_i(1 + κ)``; the minimizer lies between 0 and the ``r_i`` (the
    terms' own minimizers), so ``D`` at the kinks and at 0 brackets the root and the interpolation
    of :func:`_piecewise_linear_root` is exact. A bound above ``2 max_i|r_i|`` cannot bind there
    (``|d_i| ≤ 2 max|r|``) and is capped (an infinite one included).
    """
    b = jnp.minimum(b, 2 * jnp.max(jnp.abs(gr), axis=0))
    k1 = 1.0 + kappa
    ghat = lambda g: jnp.clip((gr - g) / k1, -b, b)  # noqa: E731
    pts = jnp.concatenate([gr - b * k1, gr + b * k1, jnp.zeros_like(gr[:1])], axis=0)  # (2m+1, N)
    d = kappa * pts - jnp.sum((gr - pts[:, None]) - ghat(pts[:, None]), axis=1)
    g = jnp.where(free, 0.0, _piecewise_linear_root(pts, d))
    return g, ghat(g)


def _box_quadratic_min(g: Array, b: Array, eps: Array) -> Array:
    """``min_{|x| ≤ b} g·x + ε/2·x²`` elementwise (``b = inf``: ``−g²/2ε``)."""
    bf = jnp.where(jnp.isinf(b), 0.0, b)
    return jnp.where(jnp.abs(g) <= eps * b, -g * g / (2 * eps), -bf * jnp.abs(g) + 0.5 * eps * bf * bf)


# Stage accuracy of the shared Tikhonov stages, tighter than the single game's _STAGE_ACC: the
# shared optimal sets are flatter (the max in φ leaves entries free), and the distance to x_ε is
# only bounded by √(2·gap/ε). Measured on three hard n = 6 inputs (accepted at ε = 6e-5 and 1e-3):
# 1e-5 left interactions 5e-5 to 3.4e-4·max|I| from the least-norm QP, 1e-6 (with the fixed
# penalty ρ = max(1, 3√ε), which the fine stages still use) 1e-6 to 8e-5, at ≈ 1.3–1.4× the
# iterations. A fixed ρ = 3 took 20% fewer iterations at equal accuracy but ended farther from
# x* (the gap bounds the distance only loosely).
_SHARED_STAGE_ACC = 1e-6
# The shared stages: a coarse stage as the single game's (penalty from max(1, _EPS_RHO·√ε),
# adaptive, stopped once F(x_ε) is proven too high); a fine stage at the fixed penalty
# max(1, 3√ε). Adaptive fine stages stalled near their 1e-11 target (n = 8, 3 models: gap 1.3e-11
# after 870k iterations, where the fixed penalty reached it in 143k). Coarse stages adapting:
# n = 5–8, 2–3 models, 1.3–3.1× fewer iterations in all (n = 8, 3 models: 877k → 286k), the
# same distance to the least-norm QP (≤ 5e-7·max|I|).
_SHARED_EPS_RHO = 3.0


def _shared_canonical_phase(vs, gb, gamma0, q0, lb, q_ratio, alpha, tol, max_iter, check_every):
    r"""Least-norm optimum of the shared problem by Tikhonov continuation (as :func:`_canonical_phase`).

    ``x = (γ̄, γ̂^(1..m), q^(1..m))`` with ``γ̄(∅) = 0`` (no loss: a constant added to ``γ̄``
    changes no interaction), ``|γ̂^(i)| ≤ b_i`` on every subset including ∅, ``|q^(i)| ≤ ρ_i``;
    ``G_ε = F + ε/2‖x‖²``. Douglas–Rachford in ``(s, t, a, o)`` per model with the exact graph
    projection of :func:`_solve_shared`; the prox is separable: ``q`` as in the single game, ``φ``
    across models (:func:`_prox_phi`), and per subset the small problem in ``(γ̄, γ̂)`` of
    :func:`_shared_gamma_prox`. Dual function, for ``y`` in the unit ball of ``φ°`` (zero at ∅),
    ``g^(i) = Mᵀy_a^(i) + L y_o^(i)`` and ``g_q^(i) = ½(Mᵀy_a^(i) − L y_o^(i))``:

        ``D_ε(y) = ⟨y, c⟩ − ‖Σ_i g^(i)‖²_{S≠∅}/2ε + Σ_{i,S} h(g^(i)_S; b_i) + h(g_q^(i)_S; ρ_i)``,

    ``h(g; b) = min_{|x|≤b} g x + ε/2 x²`` (:func:`_box_quadratic_min`): no constraint on ``y``
    beyond ``φ°`` (the free ``γ̄`` is now penalized), so the ``φ`` prox's dual point, rescaled,
    gives it. Returns ``(γ̄, γ̂, q, accepted, eps, distance, iterations)`` in the units of ``vs``.
    """
    dt = vs.dtype
    M = lambda x: kron_apply(x, _M)  # noqa: E731
    MT = lambda x: kron_apply(x, _MT)  # noqa: E731
    L = lambda x: kron_apply(x, _L)  # noqa: E731
    ca, co, scale, free = _split_data(vs, per_game=False)  # the scale of _solve_shared
    scale = scale.reshape(())
    floor = jnp.sum(_rounding_floor(vs)) / scale
    rg = (gb / scale)[:, None].astype(dt)
    rq = (q_ratio * jnp.abs(vs[:, -1] - vs[:, 0]) / scale)[:, None].astype(dt)
    project = _graph_projection(ca, co)

    def cost(gbar, ghat, q):
        g = gbar + ghat
        return jnp.sum(jnp.where(free, 0.0, _phi(M(g + 0.5 * q) + ca, alpha) + _phi(L(g - 0.5 * q) + co, alpha)))

    def stage(z, eps, budget, gtol, above=None):
        # z comes and goes at penalty 1 (as in _tikhonov_stage); a coarse stage (``above`` given)
        # adapts its penalty and stops once F(x_ε) > above is proven, a fine one keeps its penalty
        def split_r(r, rho):  # (γ̄, γ̂, q) of the prox at r: Σ_i ρ/2‖·‖² in (s, t) is ρΣ(γ − γ_r)² + ρ/4 Σ(q − q_r)²
            gbar, ghat = _shared_gamma_prox(0.5 * (r[0] + r[1]), rg, eps / (2 * rho), free)
            return gbar, ghat, jnp.clip((r[0] - r[1]) / (1.0 + 2.0 * eps / rho), -rq, rq)

        def prox(r, rho):
            gbar, ghat, q = split_r(r, rho)
            g = gbar + ghat
            thr = 1.0 / rho
            a = jnp.where(free, r[2], _prox_phi(r[2], thr, alpha))
            o = jnp.where(free, r[3], _prox_phi(r[3], thr, alpha))
            return g + 0.5 * q, g - 0.5 * q, a, o

        sp = _dr_splitting(project, prox)

        def certificate(z, st):
            _, r, pr, _ = sp.split(z, st.aux)
            rho = st.aux[0]
            gbar, ghat, q = split_r(r, rho)  # feasible: γ̄(∅) = 0, γ̂ and q in their boxes
            big = cost(gbar, ghat, q) + 0.5 * eps * (jnp.sum(gbar * gbar) + jnp.sum(ghat * ghat) + jnp.sum(q * q))
            ya = jnp.where(free, 0.0, rho * (r[2] - pr[2]))
            yo = jnp.where(free, 0.0, rho * (r[3] - pr[3]))
            ya, yo = _phi_dual_feasible(ya, yo, alpha, free)
            ma, lo = MT(ya), L(yo)
            gg, gq = ma + lo, 0.5 * (ma - lo)
            gsum = jnp.where(free, 0.0, jnp.sum(gg, axis=0))  # ∂/∂γ̄ (γ̄(∅) is fixed)
            dual = (jnp.sum(ya * ca) + jnp.sum(yo * co) - jnp.sum(gsum * gsum) / (2 * eps)
                    + jnp.sum(_box_quadratic_min(gg, rg, eps)) + jnp.sum(_box_quadratic_min(gq, rq, eps)))
            return big, jnp.clip(dual, 0.0, big), gbar, ghat, q

        def give_up(big, dual, x):
            return _proven_above(big, dual, jnp.sqrt(sum(jnp.sum(a * a) for a in x)), eps, above)

        coarse = above is not None
        return _run_tikhonov_stage(sp, project, certificate, eps, z, floor, gtol, budget, check_every,
                                   _EPS_RHO if coarse else _SHARED_EPS_RHO, coarse, give_up if coarse else None)

    g0, q0 = gamma0 / scale, q0 / scale
    s0, t0 = g0 + 0.5 * q0, g0 - 0.5 * q0
    z0 = (s0, t0, M(s0) + ca, L(t0) + co)
    x0 = (jnp.zeros_like(g0[0]), g0, q0)  # only γ̄ + γ̂ enters F
    lb = lb / scale
    # an LP point that is not certified cannot verify any ε: no canonical iterations then
    budget = jnp.where(_gap(cost(*x0), lb, floor) <= tol, jnp.asarray(max_iter, jnp.int32), 0)
    (gbar, ghat, q), acc, eps, dist, it = _tikhonov_continuation(
        stage, cost, z0, x0, lb, floor, tol, budget, check_every, _SHARED_STAGE_ACC)
    return gbar * scale, ghat * scale, q * scale, acc, eps, dist * scale, it


def _solve_shared_input(x, b, budget, q_ratio, alpha, tol, max_iter, check_every, rho, canonical):
    """One input: the LP solve, then (``canonical``) the least-norm phase within ``budget`` iterations.
    Returns ``(γ̄, γ̂, q, lower_bound, iterations, canonical_ok, eps, distance)``."""
    dt = x.dtype
    # the canonical phase compares F(x_ε) with the LP optimum: solve the LP to the stage accuracy
    # (linear convergence: ≈ 1.5–3× the iterations of tol = 1e-5), not to tol
    lp_tol = tol if not canonical else min(tol, max(tol * _SHARED_STAGE_ACC, 1e4 * float(jnp.finfo(dt).eps)))
    g, gh, q, lb, it = _solve_shared(x, b, q_ratio, alpha, lp_tol, max_iter, check_every, rho)
    if not canonical:
        return g, gh, q, lb, it, jnp.zeros((), bool), jnp.zeros((), dt), jnp.asarray(jnp.inf, dt)
    gc, ghc, qc, ok, eps, dist, it2 = _shared_canonical_phase(
        x, b, g[None] + gh, q, lb, q_ratio, alpha, tol, budget, check_every)
    pick = lambda a, b: jnp.where(ok, a, b)  # noqa: E731
    return pick(gc, g), pick(ghc, gh), pick(qc, q), lb, it + it2, ok, pick(eps, 0.0), pick(dist, jnp.inf)


def _shared_impl(flat, gbf, budget, q_ratio, alpha, tol, max_iter, check_every, rho, canonical):
    """Batch-first: ``flat`` (B, m, N), ``gbf`` (B, m); every result field has the batch axis first.
    ``budget``: the canonical phase's iterations (traced: a new budget does not recompile)."""
    base = flat[..., :1]  # solved as v − v(∅), as in _and_or_impl: rounding that does not grow with an offset
    flat = flat - base
    solve = lambda ab: _solve_shared_input(  # noqa: E731
        *ab, budget, q_ratio, alpha, tol, max_iter, check_every, rho, canonical)
    # each input stops at its own certificate
    g, gh, q, lb, it, ok, eps, dist = jax.lax.map(solve, (flat, gbf))
    gamma = g[:, None] + gh  # (B, m, N)
    # γ(∅) = 0 (a constant shift changes no interaction); set exactly (fused multiply-adds
    # can leave rounding residue in x − x[∅])
    gamma, gh, g = ((x - x[..., :1]).at[..., 0].set(0.0) for x in (gamma, gh, g))
    w = flat + q
    b = w[..., :1]
    o_and = 0.5 * w + gamma
    i_and = mobius(o_and).at[..., 0].set(b[..., 0] + base[..., 0])  # the bias v(∅) + q(∅)
    i_or = or_mobius(w - o_and).at[..., 0].set(0.0)
    p = jnp.sum(_phi(jnp.moveaxis(i_and[..., 1:], 1, 0), alpha) + _phi(jnp.moveaxis(i_or[..., 1:], 1, 0), alpha), -1)
    lb = jnp.clip(lb, 0.0, p)
    gap = _gap(p, lb, jnp.sum(_rounding_floor(flat), axis=-1))
    converged = gap <= tol
    if canonical:
        status = jnp.where(~converged, STATUS_UNCERTIFIED, jnp.where(ok, STATUS_CANONICAL, STATUS_NOT_CANONICAL))
    else:
        status = jnp.where(converged, STATUS_ANY_OPTIMUM, STATUS_UNCERTIFIED)
    return SharedAndOrResult(
        I_and=i_and, I_or=i_or, gamma_shared=g, gamma_model=gh, q=q,
        objective=p, lower_bound=lb, gap=gap, iterations=it, converged=converged,
        canonical=ok & converged, canonical_eps=jnp.where(ok & converged, eps, 0.0),
        canonical_distance=jnp.where(ok & converged, dist, jnp.inf), status=status.astype(jnp.int32),
    )


_shared_jit = jax.jit(_shared_impl, static_argnums=(3, 4, 5, 6, 7, 8, 9))


_SHARED_RHO = 10.0  # Douglas–Rachford penalty of and_or_shared (tuned on random n = 8 games)


def and_or_shared(
    vs: Float[ArrayLike, "m *batch 2**n"],
    *,
    q_ratio: float = 0.02,
    alpha: float = 0.1,
    gamma_bound: Float[ArrayLike, "m *batch"] | None = None,
    tol: float | None = None,
    max_iter: int = 200_000,
    check_every: int = 50,
    rho: float = _SHARED_RHO,
    memory_budget: int | str | None = None,
    canonical: bool = False,
    canonical_max_iter: int = 1_000_000,
) -> SharedAndOrResult:
    r"""AND-OR interactions shared by ``m`` models on the same input(s) [C24] (docs/math.md §3).

    Minimizes ``Σ_{S≠∅} (1−α)·max_i|I^(i)(S)| + α·Σ_i|I^(i)(S)|`` for AND and OR over
    ``γ^(i) = γ̄ + γ̂^(i)`` with ``|γ̂^(i)| ≤ gamma_bound_i`` and ``|q^(i)| ≤ q_ratio·|v^(i)(N) −
    v^(i)(∅)|`` (q_ratio 0.02 and α = 0.1 as in [C24]). [C24] bounds ``γ̂^(i)`` by
    ``0.5·E_x|v^(i)(x) − v^(i)(x_∅)|``; from a single input the default is
    ``0.5·|v^(i)(N) − v^(i)(∅)|`` per input (pass ``gamma_bound`` for the dataset mean).

    Solver: Douglas–Rachford with restarted Halpern steps (:func:`halpern_fixed_point`), as in
    :func:`and_or`. With ``s = γ + ½q`` and ``t = γ − ½q`` per model the AND and OR parts are
    the separate Kronecker maps ``M s`` and ``L t``, so the graph projection is exact (two
    butterfly solves); the other step is the prox of ``φ`` across models per subset, the clip
    of ``q`` and the exact projection on the [C24] γ set. Every check yields a feasible primal
    point and a rescaled feasible dual point, so ``lower_bound ≤ optimum ≤ objective`` holds for
    any iterate; the loop stops when the relative gap is ≤ ``tol``. Random n = 8 games of
    3 models take 6–12k iterations (≈ 1 s on a CPU core) to ``tol = 1e-5``.

    Args:
        vs: outputs of ``m`` models on all masks, ``(m, ..., 2**n)``; the axes between are inputs.
        q_ratio: noise box per model; 0 drops the noise term.
        alpha: weight of the sum in ``φ`` (0: max only, 1: sum only, i.e. separate ℓ1 problems
            coupled only through the γ set).
        gamma_bound: a number, ``(m,)`` or ``(m, ...)``: bound on ``|γ̂^(i)|`` (``inf``: none).
        tol: relative duality gap to stop at; default 1e-5 in float64, 1e-3 in float32 (see
            :func:`and_or`).
        max_iter: iteration cap per input (rounded up to a multiple of ``check_every``);
            ``converged`` is False if it is hit first.
        check_every: iterations between certificate checks.
        rho: Douglas–Rachford penalty on the problem scaled to ``max|c| = 1`` (tuned on
            random n = 8 games; 5–20 are within 1.5× of each other).
        memory_budget: bytes (or "2G") a call may hold; default :func:`jinter.memory_budget`.
        canonical: ``True`` returns the canonical optimum of every input: among all optimal
            ``x = (γ̄, γ̂^(1..m), q^(1..m))`` the one with the least
            ``‖γ̄‖₂² + Σ_i ‖γ̂^(i)‖₂² + ‖q^(i)‖₂²`` (unique), so that the interactions and the shared
            sets do not depend on the algorithm or its penalty. ∅ conventions: ``γ̄(∅) = 0`` (no
            loss: a constant added to ``γ̄`` changes no interaction); ``γ̂^(i)(∅)`` and
            ``q^(i)(∅)`` are variables in their boxes like every other entry (as in the LP). The
            result reports that point's interactions, ``q`` and ``γ̄``, and ``γ̂^(i)`` shifted to
            ``γ̂^(i)(∅) = 0`` as every result does. ``False`` (default): whichever optimum the
            iteration reaches (deterministic, not characterized).
        canonical_max_iter: iteration budget of the canonical phase (all Tikhonov stages
            together); an input that runs out keeps the LP optimum and says so in ``status``.

    Canonical optimum (docs/math.md §3.8), as in :func:`and_or`: the LP is solved to the stage
    accuracy ``max(1e-6·tol, 1e4·eps)`` (at most ``tol``) instead of ``tol``, then
    ``min F + ε/2‖x‖²`` for ε = 1, 1/4, … 4⁻⁷ (problem scaled to ``max|c| = 1``) by
    Douglas–Rachford in the variables of the LP solve (same graph projection; the prox adds the
    Tikhonov term: ``q`` shrunk and clipped, and per subset an exact one-dimensional
    piecewise-linear root for ``(γ̄, γ̂)``), with an explicit dual bound ``D_ε``; ``x_ε`` is
    accepted when it is verified optimal (objective no larger than the LP optimum found, gap to
    the certified bound ≤ ``tol``). ``canonical_distance = √(2(G_ε − D_ε)/ε)`` bounds
    ``‖x − x*‖`` (before the ∅ shift of ``γ̂``). Measured on 24 random inputs of correlated
    models at n = 6 (m = 2 and 3, ``q_ratio`` 0 and 0.02): every input verified, every
    interaction within 8.4e-5·max|I| of a least-norm QP (median 2e-7; the default optimum:
    1e-4 to 7e-2 away), 13k–290k iterations, 2–12 s per input on a CPU core.

    Returns:
        :class:`SharedAndOrResult`; the shared salient sets
        ``Ω_shared = ∩_i {S : |I^(i)(S)| ≥ frac·max_S|I^(i)(S)|}`` follow from it by
        :func:`jinter.statistics.shared_salient`.
        Universal matching ``v^(i) + q^(i) = zeta(I_and^(i)) + or_zeta(I_or^(i))`` holds per model;
        ``status`` (and :meth:`SharedAndOrResult.messages`) says per input whether the optimum is
        certified and canonical.

    Raises:
        ValueError: fewer than two dims, non power-of-two last axis, non-finite values,
            models of different shapes, bad ``q_ratio`` / ``alpha`` / ``gamma_bound`` shape.
        MemoryBudgetError: before allocation, when the solve would not fit.

    Example:
        >>> import numpy as np, jinter
        >>> vs = np.random.default_rng(0).normal(size=(2, 16))   # 2 models, n = 4
        >>> res = jinter.and_or_shared(vs)
        >>> res.I_and.shape, bool(res.converged)
        ((2, 16), True)
    """
    o = _solver_options(q_ratio=q_ratio, alpha=alpha, tol=tol, max_iter=max_iter, check_every=check_every,
                        rho=rho, memory_budget=memory_budget, canonical=canonical,
                        canonical_max_iter=canonical_max_iter)
    if isinstance(vs, (list, tuple)):
        shapes = [np.shape(x) for x in vs]
        if len(set(shapes)) != 1:
            raise ValueError(f"all models must give values of the same shape; got shapes {shapes}")
    vs, n = _check_v(vs, what="vs")
    if vs.ndim < 2 or vs.shape[0] == 0:
        raise ValueError(f"vs must have shape (m models, ..., 2**n) with m ≥ 1; got {vs.shape}")
    m = vs.shape[0]
    if gamma_bound is None:
        gb = 0.5 * jnp.abs(vs[..., -1] - vs[..., 0])
    else:
        if not is_traced(gamma_bound):
            kind = np.asarray(gamma_bound).dtype.kind
            if kind not in "iuf":  # strings, bools, complex, objects: not bounds
                raise TypeError(f"gamma_bound must hold real numbers ≥ 0 (inf: no bound), got {gamma_bound!r}")
        gb = jnp.asarray(gamma_bound, dtype=vs.dtype)
        if gb.ndim == 0:
            gb = jnp.broadcast_to(gb, vs.shape[:-1])
        if gb.ndim == 1 and gb.shape[0] == m:
            gb = jnp.broadcast_to(gb.reshape((m,) + (1,) * (vs.ndim - 2)), vs.shape[:-1])
        if gb.shape != vs.shape[:-1]:
            raise ValueError(
                f"gamma_bound must be a number or have shape (m,) = ({m},) or {vs.shape[:-1]} (one per model and input); "
                f"got {gb.shape}"
            )
        if not is_traced(gb) and not bool(jnp.all(gb >= 0)):
            raise ValueError("gamma_bound must be ≥ 0 (inf: no bound)")
    lead, size = vs.shape[1:-1], 2**n
    inputs = int(np.prod(lead, dtype=np.int64))
    check_budget(
        _budget_bytes(m * inputs, size, vs.dtype.itemsize),
        f"and_or_shared on {m} model(s) × {inputs} input(s) of n={n} players in {vs.dtype}",
        o["memory_budget"], argument=True,
    )
    tol = default_tol(vs.dtype) if o["tol"] is None else o["tol"]
    budget = jnp.asarray(o["canonical_max_iter"] if o["canonical"] else 0, jnp.int32)
    rho = _SHARED_RHO if o["rho"] is None else o["rho"]  # None: the default
    args = (o["q_ratio"], o["alpha"], tol, o["max_iter"], o["check_every"], rho, o["canonical"])
    flat = jnp.moveaxis(vs.reshape((m, inputs, size)), 1, 0)  # (inputs, m, N)
    gbf = jnp.moveaxis(gb.reshape((m, inputs)), 1, 0)
    workers = _host_workers(vs, inputs, 1)
    if workers <= 1:
        res = _shared_jit(flat, gbf, budget, *args)
    else:
        res = _in_host_threads(lambda a, b: _shared_jit(a, b, budget, *args), (flat, gbf), workers)
    per_model = lambda x: jnp.moveaxis(x, 0, 1).reshape((m,) + lead + (size,))  # noqa: E731
    per_input = lambda x: x.reshape(lead + x.shape[1:])  # noqa: E731
    return SharedAndOrResult(
        **{k: (per_model if k in ("I_and", "I_or", "gamma_model", "q") else per_input)(x) for k, x in res._asdict().items()}
    )
