"""The public namespace: every exported name exists, and `import jinter` stays light."""

import subprocess
import sys

import jinter


def test_all_names_exist():
    missing = [name for name in jinter.__all__ if not hasattr(jinter, name)]
    assert not missing
    assert len(set(jinter.__all__)) == len(jinter.__all__)


def test_import_does_not_load_matplotlib():
    code = "import sys, jinter; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
