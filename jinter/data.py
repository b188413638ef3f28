"""Small datasets shipped with scikit-learn plus a synthetic task with planted interactions.

Nothing here downloads anything. Every loader returns a :class:`Dataset` of numpy arrays
(``float32`` inputs, ``int32`` labels) split into train and test parts with a fixed seed.

- ``"digits"``: 8×8 grey images scaled to [0, 1], shape ``(N, 8, 8, 1)`` (NHWC), 10 classes.
- ``"wine"`` (13 features, 3 classes), ``"breast_cancer"`` (30 features, 2 classes):
  standardized with the mean / std of the TRAIN split only.
- ``"synthetic"``: binary features ``x ∈ {0, 1}^n`` (0 = absent, so the zero baseline of
  docs/math.md §1 removes a feature) and a binary label ``1[s(x) > median]`` where
  ``s(x) = Σ_T w_T·AND_T(x) + Σ_T w_T·OR_T(x)`` is a sum of planted AND / OR terms, returned
  as :attr:`Dataset.planted` so that recovered interactions can be checked against them.

Label noise ([D24] uses 1%): ``round(label_noise · n_train)`` TRAIN labels are changed to a
different class chosen uniformly; their indices are in :attr:`Dataset.noisy_indices` and the
original labels in :attr:`Dataset.clean_y_train`. Test labels are never changed.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Literal, NamedTuple, get_args

import numpy as np

from jinter._checks import check_int

__all__ = [
    "DATASETS",
    "Dataset",
    "PlantedTerm",
    "load_dataset",
    "planted_score",
    "make_synthetic",
]


class PlantedTerm(NamedTuple):
    """One ground-truth term of the synthetic task: ``weight · AND/OR of players``."""

    kind: str  # "and" or "or"
    players: tuple[int, ...]
    weight: float

    @property
    def mask(self) -> int:
        """Mask encoding of :attr:`players` (bit i set iff player i is in the term)."""
        return sum(1 << int(p) for p in self.players)


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split. Arrays are numpy; ``x`` is float32, ``y`` int32 class indices."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    noisy_indices: np.ndarray  # indices into the train split whose label was flipped
    clean_y_train: np.ndarray  # train labels before label noise
    planted: tuple[PlantedTerm, ...] = ()  # synthetic task only
    feature_names: tuple[str, ...] = ()

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input (without the sample axis)."""
        return tuple(self.x_train.shape[1:])

    @property
    def n_features(self) -> int:
        """Number of input elements of one sample."""
        return int(np.prod(self.input_shape))

    def swap(self) -> "Dataset":
        """The same data with train and test exchanged (for the baseline model of [H25]).

        The returned train split (the old test split) carries no label noise.
        """
        return dataclasses.replace(
            self,
            x_train=self.x_test,
            y_train=self.y_test,
            x_test=self.x_train,
            y_test=self.y_train,
            noisy_indices=np.zeros(0, dtype=np.int64),
            clean_y_train=self.y_test,
        )


def planted_score(planted: tuple[PlantedTerm, ...], x: np.ndarray) -> np.ndarray:
    """``s(x) = Σ w·AND_T(x) + Σ w·OR_T(x)`` for binary features ``x`` of shape ``(..., n)``."""
    x = np.asarray(x) > 0.5
    s = np.zeros(x.shape[:-1])
    for term in planted:
        cols = x[..., list(term.players)]
        hit = np.all(cols, axis=-1) if term.kind == "and" else np.any(cols, axis=-1)
        s = s + term.weight * hit
    return s


def _random_terms(rng: np.random.Generator, n: int, n_and: int, n_or: int, max_order: int):
    from math import comb

    available = sum(comb(n, k) for k in range(2, max_order + 1))
    if n_and < 0 or n_or < 0 or n_and + n_or > available:
        raise ValueError(
            f"cannot plant {n_and} AND + {n_or} OR distinct terms of order 2..{max_order} "
            f"among {n} features ({available} possible)"
        )
    terms, seen = [], set()
    for kind, count in (("and", n_and), ("or", n_or)):
        while sum(t.kind == kind for t in terms) < count:
            order = int(rng.integers(2, max_order + 1))
            players = tuple(sorted(int(p) for p in rng.choice(n, size=order, replace=False)))
            if players in seen:
                continue
            seen.add(players)
            weight = float(rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 2.0))
            terms.append(PlantedTerm(kind, players, round(weight, 3)))
    return tuple(terms)


def make_synthetic(
    n_samples: int = 2000,
    n_features: int = 10,
    *,
    n_and: int = 3,
    n_or: int = 2,
    max_order: int = 3,
    seed: int = 0,
    planted: tuple[PlantedTerm, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple[PlantedTerm, ...]]:
    """Binary features, planted AND/OR terms, label ``1[s(x) > median s]``.

    Returns:
        ``(x, y, planted)`` with ``x`` of shape ``(n_samples, n_features)`` in {0, 1}.
    """
    n_samples = check_int(n_samples, "n_samples", 2)
    n_features = check_int(n_features, "n_features", 2)
    n_and, n_or = check_int(n_and, "n_and", 0), check_int(n_or, "n_or", 0)
    max_order = check_int(max_order, "max_order", 2, most=n_features)
    seed = check_int(seed, "seed", 0)
    rng = np.random.default_rng(seed)
    if planted is None:
        if n_and + n_or == 0:
            raise ValueError("n_and + n_or must be ≥ 1: without a planted term every label is the same")
        planted = _random_terms(rng, n_features, n_and, n_or, max_order)
    for t in planted:
        players = tuple(t.players)
        ok = (t.kind in ("and", "or") and players and len(set(players)) == len(players)
              and all(isinstance(p, (int, np.integer)) and not isinstance(p, (bool, np.bool_)) and 0 <= p < n_features
                      for p in players)
              and isinstance(t.weight, (int, float, np.integer, np.floating)) and np.isfinite(t.weight))
        if not ok:
            raise ValueError(f"bad planted term {t} for n_features={n_features}: kind 'and' or 'or', distinct "
                             f"integer players in [0, {n_features}), a finite weight")
    x = (rng.random((n_samples, n_features)) < 0.5).astype(np.float32)
    s = planted_score(planted, x)
    y = (s > np.median(s)).astype(np.int32)
    if y.min() == y.max():
        raise ValueError("the planted terms give every sample the same label (a one-class task); plant terms "
                         "with non-zero weights")
    return x, y, tuple(planted)


def _sklearn(loader_name: str) -> Callable[[], tuple[np.ndarray, np.ndarray, tuple[str, ...]]]:
    def load():
        from sklearn import datasets

        bunch = getattr(datasets, loader_name)()
        names = tuple(str(f) for f in getattr(bunch, "feature_names", ()))
        return bunch.data, bunch.target, names

    return load


_TABULAR = {"wine": _sklearn("load_wine"), "breast_cancer": _sklearn("load_breast_cancer")}
_DatasetName = Literal["digits", "wine", "breast_cancer", "synthetic"]
DATASETS = get_args(_DatasetName)
"""Names accepted by :func:`load_dataset`."""


def _split(n: int, test_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n_test = int(round(test_fraction * n))
    if not 0 < n_test < n:
        raise ValueError(f"test_fraction={test_fraction} leaves an empty split of {n} samples")
    perm = rng.permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def _flip_labels(y: np.ndarray, fraction: float, n_classes: int, rng: np.random.Generator):
    count = int(round(fraction * len(y)))
    idx = np.sort(rng.choice(len(y), size=count, replace=False)).astype(np.int64)
    shift = rng.integers(1, n_classes, size=count)  # never the same class
    noisy = y.copy()
    noisy[idx] = (y[idx] + shift) % n_classes
    return noisy, idx


def load_dataset(
    name: _DatasetName,
    *,
    seed: int = 0,
    test_fraction: float = 0.2,
    label_noise: float = 0.0,
    **synthetic_kwargs,
) -> Dataset:
    """Load a small dataset, split it, and optionally add label noise to the train split.

    Args:
        name: one of :data:`DATASETS`.
        seed: seeds the split, the label noise and (for ``"synthetic"``) the data itself.
        test_fraction: fraction of samples in the test split, in (0, 1).
        label_noise: fraction of TRAIN labels flipped to another class ([D24]: 0.01).
        **synthetic_kwargs: for ``"synthetic"`` only, forwarded to :func:`make_synthetic`
            (``n_samples``, ``n_features``, ``n_and``, ``n_or``, ``max_order``, ``planted``).

    Raises:
        ValueError: unknown name (the message lists the valid ones) or bad fractions.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    seed = check_int(seed, "seed", 0)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if not 0.0 <= label_noise < 1.0:
        raise ValueError(f"label_noise must be in [0, 1), got {label_noise}")
    if synthetic_kwargs and name != "synthetic":
        raise ValueError(f"extra arguments {sorted(synthetic_kwargs)} are for 'synthetic' only")
    planted: tuple[PlantedTerm, ...] = ()
    names: tuple[str, ...] = ()
    if name == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = (bunch.data / 16.0).reshape(-1, 8, 8, 1)
        y = bunch.target
    elif name == "synthetic":
        x, y, planted = make_synthetic(seed=seed, **synthetic_kwargs)
        names = tuple(f"x{i}" for i in range(x.shape[1]))
    else:
        x, y, names = _TABULAR[name]()
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y).astype(np.int32)
    n_classes = int(y.max()) + 1
    train, test = _split(len(y), test_fraction, np.random.default_rng([seed, 1]))
    x_train, x_test = x[train], x[test]
    if name in _TABULAR:
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    y_train = y[train]
    noisy_y, idx = _flip_labels(y_train, label_noise, n_classes, np.random.default_rng([seed, 2]))
    return Dataset(
        name=name,
        x_train=x_train.astype(np.float32),
        y_train=noisy_y,
        x_test=x_test.astype(np.float32),
        y_test=y[test],
        n_classes=n_classes,
        noisy_indices=idx,
        clean_y_train=y_train,
        planted=planted,
        feature_names=names,
    )
