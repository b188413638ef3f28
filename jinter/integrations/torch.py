r"""PyTorch models as jinter host models (extra ``jinter[torch]``).

:func:`torch_model` turns an ``nn.Module`` (in eval mode) into a :class:`jinter.HostModel`:
jinter builds each masked input ``x_S`` (players in ``S`` keep the input, the others take
the baseline, background elements always keep the input: [R24] eq. 1, [D24] §3), hands
batches of them to the module as tensors, and gets the outputs back as float64 values ``v``
(with ``jax_enable_x64`` on), ready for :func:`jinter.mobius` and :func:`jinter.and_or`.

Recipe for a torchvision classifier over patch players (random init, or weights from a
local file; nothing is downloaded)::

    import torch, torchvision, jinter
    from jinter.integrations.torch import torch_model, torch_batch_size

    net = torchvision.models.resnet18(weights=None, num_classes=10)   # or vgg11(...)
    # net.load_state_dict(torch.load("my_resnet18.pt", map_location="cpu"))
    net.eval()
    players = jinter.PatchPlayers((3, 32, 32), (8, 8), cells=[1, 2, 4, 5, 6, 7, 8, 9, 10, 13])
    bs = torch_batch_size(net, players.input_shape)       # fits the memory budget
    model = torch_model(net, output_shape=(10,), batch_size=bs)
    v = jinter.masked_outputs(model, image, players, baseline="zeros", reward=jinter.log_odds(label))
    res = jinter.and_or(v)                                   # float64 v: a float64 certificate

The module's parameters may be float32: inputs are cast to the module's dtype on the way in
and outputs to float64 on the way out; for values exact to float64 rounding run the module
in float64 (``net.double()``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from jinter._budget import memory_budget as _memory_budget
from jinter._checks import check_int, check_ints
from jinter._host import HostModel, host_model

__all__ = ["torch_model", "torch_batch_size"]


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - exercised only without torch
        raise ImportError("jinter.integrations.torch needs PyTorch: pip install 'jinter[torch]'") from e
    return torch


def _check_module(module: Any, what: str = "module") -> None:
    torch = _torch()
    if not callable(module):
        raise TypeError(f"{what} must be a torch.nn.Module or a callable of tensors, got {type(module).__name__}")
    if isinstance(module, torch.nn.Module):
        training = [name or "(itself)" for name, m in module.named_modules() if m.training]
        if training:
            more = f" and {len(training) - 3} more" if len(training) > 3 else ""
            raise ValueError(
                f"{what} is in training mode (modules {', '.join(training[:3])}{more}): dropout and batch-norm "
                "batch statistics would make v random or depend on the batch; call .eval() first"
            )


def _placement(module: Any, device: Any, input_dtype: Any) -> tuple[Any, Any]:
    """Device and input dtype: given, else those of the module's first floating tensor."""
    torch = _torch()
    tensors = []
    if isinstance(module, torch.nn.Module):
        tensors = [t for t in list(module.parameters()) + list(module.buffers()) if t.is_floating_point()]
    if device is not None:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda:0', got {device!r}") from e
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: this torch has no CUDA device available")
    else:
        dev = tensors[0].device if tensors else torch.device("cpu")
    if input_dtype is None:
        input_dtype = tensors[0].dtype if tensors else torch.get_default_dtype()
    elif not isinstance(input_dtype, torch.dtype):
        raise TypeError(f"input_dtype must be a torch.dtype, got {input_dtype!r}")
    return dev, input_dtype


def _numpy_dtype(dtype: Any) -> np.dtype | None:
    """The numpy twin of a torch float dtype (None for bfloat16 and non-float dtypes)."""
    torch = _torch()
    return {torch.float16: np.dtype(np.float16), torch.float32: np.dtype(np.float32),
            torch.float64: np.dtype(np.float64)}.get(dtype)


def _default_output(out: Any) -> Any:
    torch = _torch()
    if isinstance(out, torch.Tensor):
        return out
    logits = getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    raise TypeError(
        f"the module returned a {type(out).__name__}, not a tensor: pass output=... mapping it to a "
        "tensor of shape (B,) or (B, C)"
    )


def _to_numpy(t: Any) -> np.ndarray:
    torch = _torch()
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"output must give a torch.Tensor, got {type(t).__name__}")
    t = t.detach()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()
    return t.cpu().numpy()


def torch_model(
    module: Callable[..., Any],
    *,
    output: Callable[[Any], Any] | None = None,
    output_shape: Sequence[int] | None = None,
    dtype: Any = None,
    batch_size: int | None = None,
    device: Any = None,
    input_dtype: Any = None,
) -> HostModel:
    r"""A PyTorch module (or any callable of a tensor batch) as a :class:`jinter.HostModel`.

    Each batch of masked inputs ``(B, *input_shape)`` is built in ``input_dtype`` (inside JAX,
    fused with the masking; bfloat16 is converted by torch), turned into a tensor on ``device``,
    run through ``module`` under ``torch.inference_mode()``, mapped by ``output`` to ``(B,)`` or ``(B, C)``
    and handed back to JAX as ``dtype`` (float64 with x64 on, whatever the module's precision).

    Args:
        module: an ``nn.Module`` in eval mode, or a function of a tensor batch. A module any of
            whose submodules is in training mode is refused, when it is wrapped and again at
            every call.
        output: maps the module's return value to a tensor ``(B,)`` or ``(B, C)``. Default:
            the tensor itself, or its ``.logits`` (Hugging Face model outputs).
        output_shape: the expected per-input output shape (``()`` or ``(C,)``), checked once
            at trace time; a mismatch is a ``ValueError`` naming both shapes.
        dtype: dtype of the values handed to JAX (default: float64 with x64 on).
        batch_size: most inputs per forward pass (default: the whole chunk jinter evaluates,
            at most 4096); :func:`torch_batch_size` picks one for the memory budget.
        device: where to run (default: the device of the module's parameters, else CPU).
        input_dtype: torch dtype of the inputs (default: that of the module's parameters for
            float inputs; ``torch.long`` for integer inputs, i.e. token ids).

    Example:
        >>> import jax, numpy as np, torch, jinter
        >>> jax.config.update("jax_enable_x64", True)  # float64 v from the float32 module
        >>> from jinter.integrations.torch import torch_model
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
        >>> model = torch_model(net, output_shape=(2,))
        >>> v = jinter.masked_outputs(model, np.ones(4), jinter.TabularPlayers(4), reward=jinter.logit(1))
        >>> v.shape, str(v.dtype)
        ((16,), 'float64')
    """
    torch = _torch()
    _check_module(module)
    dev, in_dtype = _placement(module, device, input_dtype)
    if output is not None and not callable(output):
        raise TypeError(f"output must be callable, got {type(output).__name__}")
    pick = _default_output if output is None else output

    ids_dtype = input_dtype if input_dtype is not None else torch.long

    def fn(batch: np.ndarray) -> np.ndarray:
        _check_module(module)  # again at every call: a module switched to .train() later is refused too
        with torch.inference_mode():
            # integer batches are token ids: torch.long (or the input_dtype given), never floats
            t = torch.from_numpy(batch).to(device=dev, dtype=in_dtype if batch.dtype.kind == "f" else ids_dtype)
            return _to_numpy(pick(module(t)))

    # masked inputs are built in the module's dtype inside JAX, so the forward gets its tensor
    # without a conversion (torch's own float64 -> float32 copy runs on its intra-op threads
    # and cost ~10% of a ResNet-18 forward on a loaded 2-core machine)
    return host_model(fn, output_shape=output_shape, dtype=dtype, batch_size=batch_size,
                      input_dtype=_numpy_dtype(in_dtype))


def torch_batch_size(
    module: Callable[..., Any],
    input_shape: Sequence[int],
    *,
    memory_budget: int | str | None = None,
    max_batch: int = 1024,
    device: Any = None,
    input_dtype: Any = None,
) -> int:
    r"""A forward batch size for ``module`` that fits the memory budget.

    Runs one forward pass on a zero input of batch 1 with hooks on every submodule and adds
    up the bytes of all tensors they return (an upper bound on the activations an inference
    pass holds per input, since most are freed as the pass goes on), plus the input. The
    batch is ``budget // (2 · bytes_per_input)``, clipped to ``[1, max_batch]``: the factor 2
    leaves room for jinter's own masked-input chunk.

    Args:
        module: as for :func:`torch_model`.
        input_shape: shape of one input (without the batch axis).
        memory_budget: bytes (or ``"2G"``); default :func:`jinter.memory_budget`.
        max_batch: upper limit (large batches stop paying off on CPU).
        device, input_dtype: as for :func:`torch_model`.
    """
    torch = _torch()
    _check_module(module)
    dev, in_dtype = _placement(module, device, input_dtype)
    shape = check_ints(input_shape, "input_shape", 1)
    max_batch = check_int(max_batch, "max_batch", 1)
    limit = _memory_budget(memory_budget)
    total = [0]

    def count(_mod, _inp, out):
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                total[0] += t.numel() * t.element_size()

    hooks = []
    if isinstance(module, torch.nn.Module):
        hooks = [m.register_forward_hook(count) for m in module.modules()]
    try:
        with torch.inference_mode():
            x = torch.zeros((1,) + shape, device=dev, dtype=in_dtype)
            out = module(x)
            if not hooks:
                count(None, None, out)
    finally:
        for h in hooks:
            h.remove()
    per_input = total[0] + math.prod(shape) * torch.empty((), dtype=in_dtype).element_size()
    return int(max(1, min(int(max_batch), limit // (2 * max(per_input, 1)))))
