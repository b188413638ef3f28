r"""Hugging Face ``transformers`` models with token players masked at the embedding layer.

The papers mask a word by giving its position "a specific embedding" ([H25] footnote 3,
[D24], [R24]) rather than by replacing its token id. :func:`mask_tokens_at_embeddings` does
that for any ``transformers`` model whose forward accepts ``inputs_embeds`` (BERT-style
classifiers, GPT-2/OPT/LLaMA-style causal LMs, ...):

* the input ``x`` is the word-embedding matrix ``E[ids]`` of shape ``(L, d)`` (the model adds
  its own position / token-type embeddings after ``inputs_embeds``, as for ``input_ids``);
* the players are token positions (default: every position whose id is not a special token
  of the tokenizer, so [CLS]/[SEP]/padding are non-players);
* in ``x_S`` a player position not in ``S`` gets the mask embedding ``m`` (default: the
  embedding of the tokenizer's mask token, or a vector / token id you give), every other
  position keeps its embedding:
  ``x_S[p] = E[ids_p]`` if ``p`` is a non-player or ``p ∈ S``, else ``m``.

Example (a classifier and the papers' log-odds reward)::

    from jinter.integrations.hf import mask_tokens_at_embeddings
    ids = tokenizer("the movie was not good")["input_ids"]
    game = mask_tokens_at_embeddings(model.eval(), ids, tokenizer=tokenizer)
    v = game.masked_outputs(reward=jinter.log_odds(label))      # (2**n,) float64
    res = jinter.and_or(v)

For a causal LM, :func:`last_token_logprob` gives the reward ``log p(target | x_S)`` at the last
position: ``mask_tokens_at_embeddings(lm, ids, mask_embedding=m, output=last_token_logprob(t))``.
Nothing is downloaded: build the model from a config (or ``from_pretrained`` on a local folder).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from jinter._checks import check_int
from jinter._host import HostModel
from jinter.integrations.torch import _check_module, _placement, _to_numpy, _torch, torch_model
from jinter.masking import TokenPlayers

__all__ = ["mask_tokens_at_embeddings", "TokenEmbeddingGame", "last_token_logprob"]


def _guard_broken_torchvision() -> None:
    """Keep a torchvision that cannot load (e.g. a CUDA wheel beside a CPU torch) from breaking
    every ``transformers`` model import: transformers imports torchvision whenever it is
    installed, so one that fails to load is hidden from it (as if it were not installed)."""
    if "torchvision" in sys.modules or importlib.util.find_spec("torchvision") is None:
        return
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - any failure to load makes it unusable for transformers
        for name in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
            del sys.modules[name]
        sys.modules["torchvision"] = None  # type: ignore[assignment]  # find_spec → None
        utils = sys.modules.get("transformers.utils.import_utils")
        for name in ("is_torchvision_available", "is_torchvision_v2_available"):
            clear = getattr(getattr(utils, name, None), "cache_clear", None)
            if clear is not None:  # transformers was imported first and cached the answer
                clear()


_guard_broken_torchvision()


def last_token_logprob(target_token_id: int, position: int = -1) -> Callable[[Any], Any]:
    r"""Output map for a causal LM: ``log p(target | x_S)`` at ``position`` (default the last).

    ``log_softmax`` of the logits at that position, taken in float64, entry ``target_token_id``;
    pass it as ``output=`` to :func:`mask_tokens_at_embeddings` (the model then returns one value
    per input, so no ``reward`` is needed).
    """
    if isinstance(target_token_id, bool) or not isinstance(target_token_id, (int, np.integer)):
        raise TypeError(f"target_token_id must be an int, got {type(target_token_id).__name__}")
    target, pos = int(target_token_id), check_int(position, "position", -(2**31))

    def pick(out: Any) -> Any:
        logits = getattr(out, "logits", out)
        if logits.ndim != 3:
            raise ValueError(f"expected causal-LM logits of shape (B, L, vocab), got {tuple(logits.shape)}")
        if not 0 <= target < logits.shape[-1]:
            raise ValueError(f"target_token_id {target} is outside the vocabulary of {logits.shape[-1]}")
        if not -logits.shape[1] <= pos < logits.shape[1]:
            raise ValueError(f"position {pos} is outside the sequence of {logits.shape[1]} tokens")
        return logits[:, pos].double().log_softmax(-1)[:, target]

    pick.position = pos  # read by mask_tokens_at_embeddings: a padding position is refused there
    return pick


@dataclasses.dataclass(frozen=True, eq=False)
class TokenEmbeddingGame:
    """A token-masking game: feed ``model``, ``x``, ``players``, ``baseline`` to
    :func:`jinter.masked_outputs` (or call :meth:`masked_outputs`).

    Attributes:
        model: the host model: ``(B, L, d)`` embeddings → model outputs.
        x: the word embeddings ``E[ids]`` of the sentence, ``(L, d)`` float64.
        players: :class:`jinter.TokenPlayers` over the player positions, ``embed_dim = d``.
        baseline: the mask embedding, ``(d,)`` float64.
        positions: the token positions that are players, in player order.
        input_ids: the token ids, ``(L,)``.
    """

    model: HostModel
    x: np.ndarray
    players: TokenPlayers
    baseline: np.ndarray
    positions: tuple[int, ...]
    input_ids: np.ndarray

    def masked_inputs(self, mask: int) -> np.ndarray:
        """The masked embeddings ``x_S`` ``(L, d)`` for one mask ``S`` (bit ``i`` = player ``i``)."""
        mask = check_int(mask, "mask", 0)
        if not 0 <= mask < 2**self.players.n:
            raise ValueError(f"mask {mask} is out of range for n={self.players.n} players")
        out = self.x.copy()
        for i, p in enumerate(self.positions):
            if not (mask >> i) & 1:
                out[p] = self.baseline
        return out

    def masked_outputs(self, reward: Callable | None = None, **kwargs: Any):
        """:func:`jinter.masked_outputs` of this game (``masks``, ``chunk_size`` ... pass through)."""
        from jinter.masking import masked_outputs

        return masked_outputs(self.model, self.x, self.players, baseline=self.baseline, reward=reward, **kwargs)


def _ids(input_ids: Any) -> np.ndarray:
    if isinstance(input_ids, Mapping):  # a tokenizer's BatchEncoding (or a dict): its input_ids
        if "input_ids" not in input_ids:
            raise TypeError(f"input_ids is a mapping without 'input_ids' (keys {sorted(input_ids)})")
        input_ids = input_ids["input_ids"]
    ids = np.asarray(input_ids.detach().cpu() if hasattr(input_ids, "detach") else input_ids)
    if ids.ndim == 2 and ids.shape[0] == 1:
        ids = ids[0]
    if ids.ndim != 1 or ids.size == 0:
        raise ValueError(f"input_ids must be one sequence of token ids, shape (L,) or (1, L), got {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"input_ids must be integers, got dtype {ids.dtype}")
    return ids.astype(np.int64)


def mask_tokens_at_embeddings(
    model: Any,
    input_ids: Any,
    *,
    tokenizer: Any = None,
    positions: Sequence[int] | None = None,
    mask_embedding: Any = None,
    attention_mask: Any = None,
    output: Callable[[Any], Any] | None = None,
    output_shape: Sequence[int] | None = None,
    batch_size: int | None = None,
    dtype: Any = None,
    **model_kwargs: Any,
) -> TokenEmbeddingGame:
    r"""Mask token positions at the embedding layer of a ``transformers`` model.

    Args:
        model: a ``transformers`` model in eval mode with ``get_input_embeddings()`` whose
            forward accepts ``inputs_embeds`` (and ``attention_mask``).
        input_ids: one tokenized sequence, ``(L,)`` or ``(1, L)`` (list, numpy or tensor).
        tokenizer: optional; gives the default players (positions whose id is not in
            ``tokenizer.all_special_ids``) and the default mask embedding (its mask token).
        positions: the player positions, in player order (overrides the tokenizer's choice;
            default without a tokenizer: every position). The other positions keep their
            embedding (e.g. make [CLS] and [SEP] non-players).
        mask_embedding: the embedding given to masked players: a vector ``(d,)``, or a token
            id whose embedding is used (through the embedding layer, like ``x``, so models that
            scale their word embeddings, e.g. Bart or Gemma, give ``v(∅)`` equal to the model
            on the all-masked ids). Default: the embedding of ``tokenizer.mask_token_id``.
        attention_mask: ``(L,)`` or ``(1, L)``, repeated for every masked input (default all ones).
        output: maps the model output to a tensor ``(B,)`` or ``(B, C)``; default ``.logits``
            (a classifier's ``(B, C)``); for a causal LM use :func:`last_token_logprob`.
        output_shape: expected per-input output shape, checked at trace time.
        batch_size: most masked sentences per forward pass (default: jinter's whole chunk).
        dtype: dtype of the values handed to JAX (default float64 with x64 on).
        **model_kwargs: passed to every forward call (e.g. ``token_type_ids`` of shape
            ``(1, L)``, broadcast over the batch by the model).

    Returns:
        :class:`TokenEmbeddingGame`; ``game.masked_outputs(reward=...)`` gives ``v``.
    """
    torch = _torch()
    _check_module(model, "model")
    if not hasattr(model, "get_input_embeddings"):
        raise TypeError(f"model must be a transformers model with get_input_embeddings(), got {type(model).__name__}")
    emb = model.get_input_embeddings()
    weight = getattr(emb, "weight", None)
    if weight is None or weight.ndim != 2:
        raise TypeError("model.get_input_embeddings() must be an embedding layer with a (vocab, d) weight")
    vocab, d = (int(s) for s in weight.shape)
    ids = _ids(input_ids)
    if ids.min() < 0 or ids.max() >= vocab:
        raise ValueError(f"input_ids must lie in [0, {vocab}) (the model's vocabulary), got {ids.min()}..{ids.max()}")
    length = len(ids)

    if positions is None:
        if tokenizer is not None:
            special = set(int(i) for i in getattr(tokenizer, "all_special_ids", []) or [])
            positions = [p for p in range(length) if int(ids[p]) not in special]
        else:
            positions = list(range(length))
        if not positions:
            raise ValueError("every position is a special token: pass positions=... to choose the players")
    players = TokenPlayers(length, positions, embed_dim=d)  # checks range and duplicates
    positions = players.positions

    with torch.inference_mode():
        x = _to_numpy(emb(torch.as_tensor(ids, device=weight.device)[None]))[0].astype(np.float64)
        if mask_embedding is None:
            mid = getattr(tokenizer, "mask_token_id", None) if tokenizer is not None else None
            if mid is None:
                raise ValueError(
                    "no mask embedding: pass mask_embedding= (a (d,) vector or a token id), or a "
                    "tokenizer with a mask token"
                )
            mask_embedding = int(mid)
        if isinstance(mask_embedding, (int, np.integer)) and not isinstance(mask_embedding, bool):
            if not 0 <= int(mask_embedding) < vocab:
                raise ValueError(f"mask_embedding token id {mask_embedding} is outside the vocabulary [0, {vocab})")
            # through the embedding layer, as x is: scaled embeddings (Bart, Gemma, …) scale it too
            base = _to_numpy(emb(torch.as_tensor([[int(mask_embedding)]], device=weight.device)))[0, 0]
            base = base.astype(np.float64)
        else:
            base = np.asarray(_to_numpy(mask_embedding) if hasattr(mask_embedding, "detach") else mask_embedding)
            if base.shape != (d,):
                raise ValueError(f"mask_embedding must be a vector of the embedding size ({d},), got shape {base.shape}")
            if not np.issubdtype(base.dtype, np.floating):
                raise TypeError(f"mask_embedding must be a float vector (or an int token id), got dtype {base.dtype}")
            base = base.astype(np.float64)
            if not np.all(np.isfinite(base)):
                raise ValueError("mask_embedding must be finite, got NaN or inf entries")
    x.setflags(write=False)
    base.setflags(write=False)

    dev, in_dtype = _placement(model, None, None)
    if attention_mask is None:
        am = torch.ones((1, length), dtype=torch.long, device=dev)
    else:
        am = torch.as_tensor(np.asarray(attention_mask.cpu() if hasattr(attention_mask, "cpu") else attention_mask))
        am = am.reshape(1, -1).to(device=dev)
        if am.shape[1] != length:
            raise ValueError(f"attention_mask must have length {length} like input_ids, got shape {tuple(am.shape)}")
        if not bool(((am == 0) | (am == 1)).all()):
            raise ValueError(f"attention_mask must hold 0 and 1 only, got {am.reshape(-1).tolist()}")
    pick = output if output is not None else None
    pos = getattr(output, "position", None)
    if pos is not None and -length <= pos < length and int(am.reshape(-1)[pos]) == 0:
        last = int(torch.nonzero(am.reshape(-1)).max()) if bool(am.any()) else None
        raise ValueError(f"the output reads position {pos} (index {pos % length}), where attention_mask is 0 "
                         "(padding): its logits are not the sentence's"
                         + (f"; pass last_token_logprob(..., position={last}), the last attended token"
                            if last is not None else ""))

    def forward(embeds):  # embeds: (B, L, d) tensor of the model's dtype
        _check_module(model, "model")  # again at every call: a model switched to .train() later is refused
        return model(inputs_embeds=embeds, attention_mask=am.expand(embeds.shape[0], -1), **model_kwargs)

    host = torch_model(forward, output=pick, output_shape=output_shape, dtype=dtype, batch_size=batch_size,
                       device=dev, input_dtype=in_dtype)
    return TokenEmbeddingGame(host, x, players, base, tuple(positions), ids)
