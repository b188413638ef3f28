"""Adapters for models from other frameworks (optional dependencies, imported lazily).

* :mod:`jinter.integrations.torch` (extra ``jinter[torch]``): a PyTorch ``nn.Module`` as a
  :func:`jinter.host_model`, e.g. a torchvision ResNet/VGG over :class:`jinter.PatchPlayers`.
* :mod:`jinter.integrations.hf` (extra ``jinter[hf]``): any Hugging Face ``transformers``
  model that accepts ``inputs_embeds``, with token players masked at the embedding layer.

Neither is imported by ``import jinter``: the core never needs torch or transformers.
"""

__all__: list[str] = []  # a namespace: the adapters are the submodules, imported on demand
