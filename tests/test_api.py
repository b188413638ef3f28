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
LAYERS = [  # transforms → masking → decomposition → analysis → theory → training/sweep → report/cli
    {"_version", "_checks", "_files"},
    {"_budget", "_blas", "_host", "_records", "data", "models", "integrations"},
    {"transforms", "integrations.torch"},
    {"masking"},
    {"decomposition", "integrations.hf"},
    {"statistics", "dynamics", "shapiq_io"},
    {"generalization"},
    {"interactions", "sparse"},
    {"analysis", "theory"},
    {"training", "study"},
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


def _option_calls():
    """``(call, message)``: a wrong value of each string option and the error it must give."""
    import numpy as np

    from jinter import data, models, sweep, training
    from jinter.sparse import masked_value_fn

    f = lambda b: b.sum(axis=-1)  # noqa: E731 - a scalar model of three features
    p = jinter.TabularPlayers(3)
    x = jinter.Interactions.from_arrays(np.arange(8.0), tau=1.0)
    ds = data.load_dataset("synthetic", n_samples=20, n_features=4)
    ck = {0: None}
    return [
        (lambda: jinter.Interactions.from_arrays(np.arange(8.0), tau="median"),
         "tau must be 'relative', 'output' or a number/array, got 'median'"),
        (lambda: x.with_tau("max"), "tau must be 'relative', 'output' or a number/array, got 'max'"),
        (lambda: x.to_shapiq_json("xor"), "kind must be 'and' or 'or', got 'xor'"),
        (lambda: jinter.masked_outputs(f, np.ones(3), p, baseline="median"),
         "baseline must be 'zeros', 'mean' or an array, got 'median'"),
        (lambda: jinter.masked_outputs(f, np.ones(3), p, chunk_size="big"),
         "chunk_size must be a positive integer or None, got 'big'"),
        (lambda: jinter.learn_baseline(f, np.ones((2, 3)), p, init="median"),
         "init must be 'mean', 'zeros' or an array, got 'median'"),
        (lambda: masked_value_fn(f, np.ones(3), p, baseline="median"),
         "baseline must be 'zeros', 'mean' or an array, got 'median'"),
        (lambda: masked_value_fn(f, np.ones(3), p, chunk_size="big"),
         "chunk_size must be a positive integer or None, got 'big'"),
        (lambda: masked_value_fn(f, np.ones(3), p, chunk_size=0),
         "chunk_size must be a positive integer or None, got 0"),
        (lambda: sweep.run_sweep(f, ck, np.ones((2, 3)), np.zeros(2, int), p, "unused", reward="probability"),
         "reward must be 'log_odds', 'logit' or None, got 'probability'"),
        (lambda: sweep.run_sweep(f, ck, np.ones((2, 3)), np.zeros(2, int), p, "unused", on_mismatch="skip"),
         "on_mismatch must be 'recompute' or 'error', got 'skip'"),
        (lambda: sweep.run_sweep(f, ck, np.ones((2, 3)), np.zeros(2, int), p, "unused", baseline="median"),
         "baseline must be 'zeros', 'mean' or an array, got 'median'"),
        (lambda: training.train(models.model_for_dataset(ds), ds, epochs=1, optimizer="rmsprop"),
         "optimizer must be 'sgd' or 'adam', got 'rmsprop'"),
        (lambda: data.load_dataset("mnist"), "unknown dataset 'mnist'; valid names: digits, wine, breast_cancer"),
        (lambda: models.make_model("resnet", n_classes=2), "unknown model 'resnet'; valid names: mlp, cnn"),
    ]  # fmt: skip


def test_string_options_name_the_argument_and_the_allowed_values():
    import re

    import pytest

    for call, message in _option_calls():
        with pytest.raises(ValueError, match=re.escape(message)):
            call()


def test_string_option_hints_are_the_checked_literals():
    """Each option's ``Literal`` hint lists exactly the values its check accepts."""
    from typing import get_args

    from jinter import data, interactions, masking, models, sweep, training

    assert get_args(interactions._TauRule) == ("relative", "output")
    assert get_args(interactions._Kind) == ("and", "or")
    assert get_args(masking._BaselineName) == ("zeros", "mean")
    assert get_args(masking._InitName) == ("mean", "zeros")
    assert get_args(sweep._RewardName) == ("log_odds", "logit")
    assert get_args(sweep._OnMismatch) == ("recompute", "error")
    assert get_args(training._Optimizer) == ("sgd", "adam")
    assert get_args(data._DatasetName) == data.DATASETS
    assert get_args(models._ModelName) == models.MODELS
    hints = {
        (masking.masked_outputs, "baseline"): "_BaselineName",
        (masking.learn_baseline, "init"): "_InitName",
        (interactions.Interactions.from_arrays, "tau"): "_TauRule",
        (interactions.Interactions.to_shapiq_json, "kind"): "_Kind",
        (sweep.run_sweep, "reward"): "_RewardName",
        (sweep.run_sweep, "on_mismatch"): "_OnMismatch",
        (training.train, "optimizer"): "_Optimizer",
        (data.load_dataset, "name"): "_DatasetName",
    }
    for (fn, arg), alias in hints.items():
        assert alias in fn.__annotations__[arg], (fn.__qualname__, arg)


def test_shared_checks_is_traced_and_default_tol():
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jinter._checks import default_tol, is_traced

    assert not is_traced(np.zeros(3), None, "mean", 1.0)
    seen = []
    jax.jit(lambda x: seen.append(is_traced(x, 2.0)) or x)(jnp.zeros(2))
    assert seen == [True]
    assert default_tol(np.float64) == 1e-5 and default_tol(np.float32) == 1e-3
