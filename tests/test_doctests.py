"""Every ``>>>`` example in jinter's docstrings runs and prints what it shows.

The examples are written for a user's default JAX configuration (float32, standard dtype
promotion), so they run in a fresh interpreter rather than under this suite's strict
float64 settings. Modules of optional integrations are skipped when their extra is absent.
"""

import importlib
import os
import pkgutil
import subprocess
import sys

import jinter

_RUNNER = r"""
import doctest, importlib, sys
import jax
attempted = failed = 0
for name in sys.argv[1:]:
    jax.config.update("jax_enable_x64", False)  # each module's examples start at the default
    try:
        module = importlib.import_module(name)
    except ImportError as e:  # an optional extra (torch, transformers) is not installed
        print(f"SKIP {name}: {e}")
        continue
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    attempted, failed = attempted + result.attempted, failed + result.failed
print(f"TOTAL {attempted} {failed}")
sys.exit(1 if failed else 0)
"""


def _modules():
    return sorted(m.name for m in pkgutil.walk_packages(jinter.__path__, "jinter."))


def test_every_docstring_example_runs():
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", _RUNNER, *_modules()], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
    attempted = int(out.stdout.split("TOTAL")[1].split()[0])
    assert attempted >= 10, out.stdout  # the examples exist and ran


def test_modules_import():
    for name in _modules():
        try:
            importlib.import_module(name)
        except ImportError as e:  # only optional extras may be missing
            assert any(extra in str(e) for extra in ("torch", "transformers")), (name, e)
