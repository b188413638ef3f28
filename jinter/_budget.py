"""Memory budget shared by every routine that allocates arrays over all 2**n subsets.

The budget is the number of bytes a single call may hold live at once. It defaults to half
of the machine's physical memory and can be set with the ``JINTER_MEMORY_BUDGET``
environment variable (bytes, or a number with a ``K``/``M``/``G`` suffix) or per call.
"""

from __future__ import annotations

import os

__all__ = ["MemoryBudgetError", "memory_budget", "check_budget", "format_bytes"]


class MemoryBudgetError(ValueError):
    """Raised before any allocation when a computation would not fit the memory budget."""


def _parse_bytes(text: str) -> int:
    """``"2G"`` → 2·2³⁰, ``"512M"``, ``"1.5G"``, ``"1000"``; a fraction of a byte (``"1.7"``) is refused."""
    text = text.strip().upper().removesuffix("B")
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    if text and text[-1] in scale:
        return int(float(text[:-1]) * scale[text[-1]])
    value = float(text)
    if value != int(value):
        raise ValueError(f"{text!r} is not a whole number of bytes")
    return int(value)


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


_BUDGET_RULE = 'None, a positive number of bytes or a size such as "2G"'


def memory_budget(budget: int | str | None = None) -> int:
    """Return the memory budget in bytes (explicit value > env variable > half of RAM).

    A bool, a fraction, a string that is not a size, or a value ≤ 0 is a ``ValueError`` naming
    ``memory_budget`` (or the environment variable it came from)."""
    if budget is not None:
        what, text = "memory_budget", budget
    elif os.environ.get("JINTER_MEMORY_BUDGET"):
        what, text = "JINTER_MEMORY_BUDGET", os.environ["JINTER_MEMORY_BUDGET"]
    else:
        return _physical_memory() // 2
    try:
        if isinstance(text, str):
            value = _parse_bytes(text)
        elif isinstance(text, bool) or not isinstance(text, (int, float)) and not hasattr(text, "__index__"):
            raise TypeError
        elif float(text) != int(text):  # 1e9 is a number of bytes, 1.5 is not
            raise ValueError
        else:
            value = int(text)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{what} must be {_BUDGET_RULE}, got {text!r}") from None
    if value <= 0:
        raise ValueError(f"{what} must be {_BUDGET_RULE}, got {text!r} ({value} bytes)")
    return value


def format_bytes(n: float) -> str:
    """Human-readable byte count (binary units)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError  # pragma: no cover


def check_budget(nbytes: int, what: str, budget: int | str | None = None, *, argument: bool = False) -> None:
    """Raise :class:`MemoryBudgetError` if ``nbytes`` exceeds the budget; ``argument``: the
    caller takes a ``memory_budget=`` argument (the message names it only then)."""
    limit = memory_budget(budget)
    if nbytes > limit:
        how = "argument `memory_budget` or env JINTER_MEMORY_BUDGET" if argument else "env JINTER_MEMORY_BUDGET"
        raise MemoryBudgetError(
            f"{what} would need about {format_bytes(nbytes)}, more than the memory budget of "
            f"{format_bytes(limit)}. Use fewer players, float32, a smaller batch, or raise the "
            f"budget ({how})."
        )
