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


def test_every_module_all_is_consistent():
    """Each public module's ``__all__`` names exist there; the package re-exports them faithfully."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(jinter.__path__):
        if info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"jinter.{info.name}")
        except ImportError as e:  # optional extras only
            assert any(x in str(e) for x in ("torch", "transformers")), e
            continue
        names = getattr(module, "__all__", None)
        assert names is not None, f"jinter.{info.name} has no __all__"
        assert len(set(names)) == len(names), f"duplicates in jinter.{info.name}.__all__"
        missing = [n for n in names if not hasattr(module, n)]
        assert not missing, f"jinter.{info.name}.__all__ names missing objects: {missing}"
    for name in jinter.__all__:  # a top-level name is the object of its home module, not a copy
        obj = getattr(jinter, name)
        home = getattr(obj, "__module__", None)
        if home and home.startswith("jinter.") and not home.split(".")[1].startswith("_"):
            assert getattr(importlib.import_module(home), name, obj) is obj, name


def test_package_is_typed():
    from pathlib import Path

    assert (Path(jinter.__file__).parent / "py.typed").exists()


def test_analysis_facade_reexports_the_home_objects():
    """``jinter.analysis`` keeps its names; each is the object of the module where it lives."""
    import importlib

    from jinter import analysis

    for name in analysis.__all__:
        obj = getattr(analysis, name)
        assert obj.__module__ != "jinter.analysis", name
        assert getattr(importlib.import_module(obj.__module__), name) is obj, name


# The package's layers, lowest first: a module imports (at its top or inside a function) only
# from modules of lower layers. The facade jinter.analysis is imported by nothing but the root.
LAYERS = [
    {"_version", "_checks", "_budget", "_host", "data", "models", "integrations"},
    {"transforms", "integrations.torch"},
    {"statistics", "dynamics", "masking"},
    {"decomposition", "generalization", "integrations.hf"},
    {"interactions", "theory"},
    {"sparse", "analysis", "training"},
    {"sweep", "plots"},
    {"report"},
    {"cli"},
]


def test_imports_point_down_the_layers():
    import ast
    from pathlib import Path

    root = Path(jinter.__file__).parent
    rank = {m: i for i, layer in enumerate(LAYERS) for m in layer}
    bad = []
    for path in sorted(root.rglob("*.py")):
        name = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        if name == "__init__":
            continue
        assert name in rank, f"jinter.{name} is not in LAYERS"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "jinter":
                deps = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jinter."):
                deps = [node.module.removeprefix("jinter.")]
            elif isinstance(node, ast.Import):
                deps = [a.name.removeprefix("jinter.") for a in node.names if a.name.startswith("jinter.")]
            else:
                continue
            bad += [f"jinter.{name} imports jinter.{d}" for d in deps if rank.get(d, -1) >= rank[name]]
    assert not bad, bad
