"""One BLAS thread pool at a time: keep scipy's own copy of OpenBLAS from competing with numpy's.

The pip wheels of numpy and scipy each vendor their own OpenBLAS (``numpy.libs/...openblas64_``
and ``scipy.libs/...openblas``), each with a pool of worker threads as large as the machine.
A routine that alternates between numpy matmuls and scipy factorizations (the sparse fit:
Gram products in numpy, Cholesky and triangular solves in scipy) keeps both pools spinning,
twice as many threads as cores, and runs slower than with either pool alone (measured on
2 cores: the sparse fit of ``benchmarks/bench_sparse.py`` took 1.5–2.9× as long, with identical results).

:func:`one_pool` runs a block with scipy's separate copy limited to one thread, leaving
numpy's (which does the large products) as it is. Where both packages share one BLAS (conda,
system packages), or threadpoolctl is missing, it does nothing.
"""

from __future__ import annotations

import contextlib
import functools
import os


@functools.lru_cache(maxsize=1)
def _scipy_own_blas() -> tuple[str, ...]:
    """Paths of the BLAS libraries loaded from scipy's own package folders (not numpy's)."""
    try:
        import numpy
        import scipy.linalg  # noqa: F401  (loads scipy's BLAS)
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return ()
    sp = os.path.dirname(os.path.realpath(scipy.linalg.__file__))
    sp = os.path.dirname(sp)  # .../site-packages/scipy
    npy = os.path.dirname(os.path.realpath(numpy.__file__))
    own = (sp + os.sep, sp + ".libs" + os.sep)
    theirs = (npy + os.sep, npy + ".libs" + os.sep)
    paths = []
    for lib in threadpool_info():
        p = os.path.realpath(lib.get("filepath") or "")
        if lib.get("user_api") == "blas" and p.startswith(own) and not p.startswith(theirs):
            paths.append(lib["filepath"])
    return tuple(paths)


def one_pool():
    """Context manager: scipy's separately vendored BLAS limited to 1 thread inside the block.

    A no-op where scipy uses numpy's BLAS or threadpoolctl is not installed. Only the time
    should change: a threaded factorization may round differently in the last bits, and the
    fits measured with and without the limit agreed to 6 digits.
    """
    paths = _scipy_own_blas()
    if not paths:
        return contextlib.nullcontext()
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(filepath=list(paths)).limit(limits=1)
