"""One BLAS thread pool at a time: keep scipy's own copy of OpenBLAS from competing with numpy's.

The pip wheels of numpy and scipy each vendor their own OpenBLAS (``numpy.libs/...openblas64_``
and ``scipy.libs/...openblas``), each with a pool of worker threads as large as the machine.
A routine that alternates between the two (the sparse fit: Gram products and the lasso in
numpy, Cholesky factorizations, triangular solves and Lanczos in scipy) keeps both pools
spinning, twice as many threads as cores, and runs slower than with either pool alone
(measured on 2 cores: the fits of ``benchmarks/bench_sparse.py`` took 1.2–2.9× as long).

:func:`one_pool` runs a block with scipy's separate copy limited to one thread, leaving
numpy's (which does the large products) as it is. It does nothing where both packages share
one BLAS (conda, system packages), where threadpoolctl does not recognise the libraries
(before 3.5 it does not know the ``libscipy_openblas`` of scipy ≥ 1.13 wheels), or where
threadpoolctl fails: it only ever changes the speed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings


@functools.lru_cache(maxsize=1)
def _scipy_own_blas() -> tuple[str, ...]:
    """Paths of the BLAS libraries loaded from scipy's own package folders (not numpy's, which
    are siblings of them), as threadpoolctl reports them; ``()`` when there are none or they
    cannot be inspected."""
    try:
        import scipy.linalg.blas  # noqa: F401  (loads scipy's BLAS)
        from threadpoolctl import threadpool_info

        with warnings.catch_warnings():  # e.g. threadpoolctl's warning on two OpenMP runtimes
            warnings.simplefilter("ignore")
            info = threadpool_info()
    except Exception:  # an optimisation only: never let it break a fit
        return ()
    sp = os.path.dirname(os.path.dirname(os.path.realpath(scipy.linalg.__file__)))  # .../scipy

    def norm(p):
        return os.path.normcase(os.path.realpath(p))

    own = tuple(norm(d) + os.sep for d in (sp, sp + ".libs"))  # .libs, .dylibs inside; scipy.libs beside
    return tuple(lib["filepath"] for lib in info
                 if lib.get("user_api") == "blas" and lib.get("filepath") and norm(lib["filepath"]).startswith(own))


def one_pool():
    """Context manager: scipy's separately vendored BLAS limited to 1 thread inside
    ``with one_pool():`` (the limit is set when called, restored on exit).

    A no-op where scipy uses numpy's BLAS, or threadpoolctl cannot see or set it. Only the
    time should change: a threaded factorization may round differently in the last bits (the
    benchmark's fits gave the same records and held-out R² to 6 digits with and without it).
    The limit is process-wide, as OpenBLAS's is: scipy calls of other threads run with one
    thread meanwhile.
    """
    paths = _scipy_own_blas()
    if not paths:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import ThreadpoolController

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ThreadpoolController().select(filepath=list(paths)).limit(limits=1)
    except Exception:  # an optimisation only
        return contextlib.nullcontext()
