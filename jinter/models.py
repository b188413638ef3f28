"""Small Flax (linen) classifiers used in the experiments: an MLP and a CNN for 8×8 digits.

Both map inputs with any leading batch axes to logits of shape ``(*batch, n_classes)``.
The CNN also exposes ``features`` (the conv feature map, ``(*batch, 8, 8, C)``) and
``head`` (feature map → logits), so players can live on the feature map as in [D24]
(docs/math.md §1): ``model.apply(params, x, method="features")``.
"""

from __future__ import annotations

import math
from typing import Literal, Sequence, get_args

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from jinter._checks import check_int, check_ints

__all__ = ["MLP", "CNN", "MODELS", "DEFAULT_MODEL", "make_model", "model_for_dataset", "init_params"]

DEFAULT_MODEL = "mlp"
"""The architecture of :func:`model_for_dataset` (and of ``jinter demo``) on every dataset unless
one is named: the CNN trains ~70× slower per epoch on CPU (1.4 s against 0.02 s on digits) and would not fit the demo's 10-minute budget."""


class MLP(nn.Module):
    """ReLU multi-layer perceptron. With ``input_shape`` (e.g. ``(8, 8, 1)``) it flattens the
    trailing input axes first; without it, it acts on the last axis."""

    n_classes: int
    hidden: Sequence[int] = (100, 100, 100, 100)
    input_shape: Sequence[int] | None = None

    @nn.compact
    def __call__(self, x: Float[Array, "*batch d"]) -> Float[Array, "*batch c"]:
        if self.input_shape is not None and len(self.input_shape) > 1:
            x = x.reshape(_batch_shape(x.shape, tuple(self.input_shape)) + (-1,))
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.n_classes)(x)


def _batch_shape(shape: tuple[int, ...], item_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Leading axes of ``shape`` whose trailing axes hold exactly one item of ``item_shape``."""
    size = math.prod(item_shape)
    for k in range(len(shape), -1, -1):
        if math.prod(shape[k:]) == size and math.prod(shape[:k]) * size == math.prod(shape):
            return tuple(shape[:k])
    raise ValueError(f"input of shape {shape} does not end in an item of shape {item_shape}")


class CNN(nn.Module):
    """Two 3×3 ReLU convolutions (SAME, so the feature map stays 8×8), 2×2 average pooling,
    one hidden dense layer, logits. Accepts ``(*batch, 8, 8, 1)``, ``(*batch, 8, 8)`` or
    ``(*batch, 64)`` inputs."""

    n_classes: int = 10
    channels: Sequence[int] = (16, 32)
    hidden: int = 64
    image_shape: Sequence[int] = (8, 8, 1)

    def setup(self):
        self.convs = [nn.Conv(c, (3, 3), padding="SAME") for c in self.channels]
        self.dense = nn.Dense(self.hidden)
        self.out = nn.Dense(self.n_classes)

    def features(self, x: Float[Array, "*batch ..."]) -> Float[Array, "*batch h w c"]:
        """Conv feature map after the last ReLU."""
        image = tuple(self.image_shape)
        batch = _batch_shape(x.shape, image)
        h = x.reshape((-1,) + image)
        for conv in self.convs:
            h = nn.relu(conv(h))
        return h.reshape(batch + h.shape[1:])

    def head(self, h: Float[Array, "*batch h w c"]) -> Float[Array, "*batch c"]:
        """Feature map → logits."""
        batch = h.shape[:-3]
        h = h.reshape((-1,) + h.shape[-3:])
        n, hh, ww, c = h.shape  # 2×2 average pooling (flax's avg_pool breaks strict promotion)
        h = h[:, : hh - hh % 2, : ww - ww % 2].reshape(n, hh // 2, 2, ww // 2, 2, c).mean(axis=(2, 4))
        h = nn.relu(self.dense(h.reshape(h.shape[0], -1)))
        return self.out(h).reshape(batch + (self.n_classes,))

    def __call__(self, x: Float[Array, "*batch ..."]) -> Float[Array, "*batch c"]:
        return self.head(self.features(x))


_ModelName = Literal["mlp", "cnn"]
MODELS = get_args(_ModelName)
"""Names accepted by :func:`make_model`."""


def make_model(name: _ModelName, *, n_classes: int, **kwargs) -> nn.Module:
    """Build a model by name.

    Args:
        name: ``"mlp"`` (kwargs: ``hidden``, ``input_shape``) or ``"cnn"`` (kwargs: ``channels``, ``hidden``,
            ``image_shape``).
        n_classes: number of output logits.

    Raises:
        ValueError: unknown name (the message lists the valid ones) or bad sizes.
    """
    n_classes = check_int(n_classes, "n_classes", 1)
    if name == "mlp":
        kwargs["hidden"] = check_ints(kwargs.get("hidden", MLP.hidden), "hidden", 1)
        if kwargs.get("input_shape") is not None:
            kwargs["input_shape"] = check_ints(kwargs["input_shape"], "input_shape", 1)
        return MLP(n_classes=n_classes, **kwargs)
    if name == "cnn":
        for key in ("channels", "image_shape"):
            if key in kwargs:
                kwargs[key] = check_ints(kwargs[key], key, 1)
        if "hidden" in kwargs:
            kwargs["hidden"] = check_int(kwargs["hidden"], "hidden", 1)
        if len(kwargs.get("image_shape", (8, 8))) not in (2, 3):
            raise ValueError(f"the cnn takes images: image_shape must be (H, W) or (H, W, C), got {kwargs['image_shape']}")
        return CNN(n_classes=n_classes, **kwargs)
    raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}")


def model_for_dataset(dataset, name: _ModelName | None = None, **kwargs) -> nn.Module:
    """The architecture ``name`` (default :data:`DEFAULT_MODEL`) sized for a
    :class:`jinter.data.Dataset`: its classes, and its input or image shape."""
    if name is None:
        name = DEFAULT_MODEL
    if name == "cnn" and len(dataset.input_shape) < 2:
        raise ValueError(f"the cnn takes images; {dataset.name} has tabular inputs of shape {dataset.input_shape} "
                         "(use the mlp)")
    if name == "cnn":
        kwargs.setdefault("image_shape", dataset.input_shape)
    elif len(dataset.input_shape) > 1:
        kwargs.setdefault("input_shape", dataset.input_shape)
    return make_model(name, n_classes=dataset.n_classes, **kwargs)


def init_params(model: nn.Module, input_shape: Sequence[int], seed: int = 0, dtype=jnp.float32):
    """Initial parameters for inputs of shape ``input_shape`` (one sample, no batch axis)."""
    x = jnp.zeros((1,) + tuple(input_shape), dtype=dtype)
    return model.init(jax.random.PRNGKey(seed), x)
