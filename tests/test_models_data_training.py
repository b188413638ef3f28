"""Datasets, models and the training loop (tiny settings)."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jinter import models
from jinter.data import DATASETS, PlantedTerm, load_dataset, make_synthetic, planted_score
from jinter.models import CNN, MLP, init_params, make_model, model_for_dataset
from jinter.training import (
    CorruptFileError,
    evaluate,
    list_checkpoints,
    load_history,
    load_params,
    log_spaced_epochs,
    save_params,
    train,
    train_baseline,
    verify_training_dir,
)


def _tree_equal(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(
        np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(la, lb)
    )


# ------------------------------------------------------------------------------------ data


@pytest.mark.parametrize(
    "name, shape, classes",
    [("digits", (8, 8, 1), 10), ("wine", (13,), 3), ("breast_cancer", (30,), 2), ("synthetic", (10,), 2)],
)
def test_dataset_shapes_and_split(name, shape, classes):
    ds = load_dataset(name, seed=0, test_fraction=0.25)
    n = len(ds.y_train) + len(ds.y_test)
    assert ds.input_shape == shape and ds.n_classes == classes
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert len(ds.y_test) == round(0.25 * n)
    assert set(np.unique(ds.y_train)) <= set(range(classes))
    if name == "digits":
        assert ds.x_train.min() >= 0 and ds.x_train.max() <= 1 and ds.x_train.max() > 0.9
    if name in ("wine", "breast_cancer"):  # standardized with TRAIN statistics only
        np.testing.assert_allclose(ds.x_train.mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(ds.x_train.std(axis=0), 1, atol=1e-4)
        assert np.abs(ds.x_test.mean(axis=0)).max() > 1e-3
    if name == "synthetic":
        assert set(np.unique(ds.x_train)) == {0.0, 1.0} and len(ds.planted) == 5


def test_label_noise_flips_only_recorded_train_labels():
    clean = load_dataset("wine", seed=3)
    noisy = load_dataset("wine", seed=3, label_noise=0.1)
    n_train = len(clean.y_train)
    assert len(noisy.noisy_indices) == round(0.1 * n_train) > 0
    changed = np.flatnonzero(noisy.y_train != clean.y_train)
    np.testing.assert_array_equal(changed, noisy.noisy_indices)
    np.testing.assert_array_equal(noisy.clean_y_train, clean.y_train)
    np.testing.assert_array_equal(noisy.y_test, clean.y_test)  # test labels never change
    np.testing.assert_array_equal(noisy.x_train, clean.x_train)
    assert len(clean.noisy_indices) == 0


def test_dataset_determinism_and_errors():
    a, b = load_dataset("breast_cancer", seed=1), load_dataset("breast_cancer", seed=1)
    c = load_dataset("breast_cancer", seed=2)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.y_test, c.y_test) or not np.array_equal(a.x_test, c.x_test)
    with pytest.raises(ValueError, match="digits, wine, breast_cancer, synthetic"):
        load_dataset("mnist")
    assert DATASETS == ("digits", "wine", "breast_cancer", "synthetic")
    with pytest.raises(ValueError, match="test_fraction"):
        load_dataset("wine", test_fraction=1.0)
    with pytest.raises(ValueError, match="synthetic"):
        load_dataset("wine", n_features=4)
    with pytest.raises(ValueError, match="cannot plant"):
        make_synthetic(n_features=3, n_and=3, n_or=2, max_order=2)


def test_synthetic_labels_follow_planted_terms():
    planted = (PlantedTerm("and", (0, 1), 2.0), PlantedTerm("or", (2, 3), -1.0))
    x, y, terms = make_synthetic(500, 4, planted=planted, seed=0)
    assert terms == planted and PlantedTerm("and", (0, 1), 2.0).mask == 0b11
    s = 2.0 * (x[:, 0] * x[:, 1]) - 1.0 * np.maximum(x[:, 2], x[:, 3])
    np.testing.assert_allclose(planted_score(planted, x), s)
    np.testing.assert_array_equal(y, (s > np.median(s)).astype(np.int32))


# ---------------------------------------------------------------------------------- models


def test_models_shapes_batch_axes_jit_vmap():
    mlp = make_model("mlp", n_classes=3, hidden=[8, 8])
    assert isinstance(mlp, MLP) and mlp.hidden == (8, 8)
    p = init_params(mlp, (5,), seed=0)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 4, 5)), jnp.float32)
    out = mlp.apply(p, x)
    assert out.shape == (2, 4, 3)
    np.testing.assert_allclose(jax.jit(mlp.apply)(p, x), out, rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(mlp.apply, in_axes=(None, 0))(p, x), out, rtol=1e-6)

    cnn = make_model("cnn", n_classes=10, channels=(4, 8), hidden=16)
    assert isinstance(cnn, CNN)
    pc = init_params(cnn, (8, 8, 1), seed=0)
    img = jnp.asarray(np.random.default_rng(1).random((2, 3, 8, 8, 1)), jnp.float32)
    logits = cnn.apply(pc, img)
    assert logits.shape == (2, 3, 10)
    feats = cnn.apply(pc, img, method="features")
    assert feats.shape == (2, 3, 8, 8, 8)
    np.testing.assert_allclose(cnn.apply(pc, feats, method="head"), logits, rtol=1e-5, atol=1e-6)
    # flattened and channel-less inputs give the same logits
    np.testing.assert_allclose(cnn.apply(pc, img.reshape(2, 3, 64)), logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.vmap(cnn.apply, in_axes=(None, 0))(pc, img), logits, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="mlp, cnn"):
        make_model("resnet", n_classes=2)
    ds = load_dataset("wine", seed=0)
    assert isinstance(model_for_dataset(ds), MLP) and model_for_dataset(ds).n_classes == 3
    # one default architecture per dataset, the demo's: an MLP on images too; the CNN by name
    digits = load_dataset("digits", seed=0)
    assert isinstance(model_for_dataset(digits), MLP) and model_for_dataset(digits).input_shape == (8, 8, 1)
    assert isinstance(model_for_dataset(digits, "cnn"), CNN)
    from jinter import report

    assert report.DEFAULT_MODEL == models.DEFAULT_MODEL == "mlp"


# -------------------------------------------------------------------------------- training


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.integers(2, 40))
def test_log_spaced_epochs_properties(n_epochs, k):
    k = min(k, n_epochs + 1)
    e = log_spaced_epochs(n_epochs, k)
    assert len(e) == k and e[0] == 0 and e[-1] == n_epochs
    assert all(a < b for a, b in zip(e, e[1:]))


def test_log_spaced_epochs_example_and_errors():
    assert log_spaced_epochs(100, 6) == (0, 1, 3, 10, 32, 100)
    with pytest.raises(ValueError):
        log_spaced_epochs(3, 5)


@pytest.fixture(scope="module")
def tiny():
    ds = load_dataset("synthetic", seed=0, n_samples=400, n_features=5, label_noise=0.01)
    return ds, make_model("mlp", n_classes=2, hidden=(16, 16))


def test_training_learns_checkpoints_roundtrip(tiny, tmp_path):
    ds, model = tiny
    res = train(model, ds, epochs=8, batch_size=32, learning_rate=0.05, checkpoint_epochs=(0, 3, 8),
                checkpoint_dir=tmp_path)
    h = res.history
    assert len(h["train_loss"]) == 9 and list(h["epoch"]) == list(range(9))
    assert h["train_loss"][-1] < 0.8 * h["train_loss"][0]
    assert h["test_acc"][-1] > h["test_acc"][0]
    assert set(res.checkpoints) == {0, 3, 8} and list_checkpoints(tmp_path) == res.checkpoints
    assert _tree_equal(load_params(res.checkpoints[8]), res.params)
    assert _tree_equal(load_params(res.checkpoints[0]), init_params(model, ds.input_shape, 0))
    template = init_params(model, ds.input_shape, 1)
    assert _tree_equal(load_params(res.checkpoints[8], template), res.params)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # atomic writes
    saved = load_history(tmp_path)
    np.testing.assert_array_equal(saved["test_loss"], h["test_loss"])
    loss, acc = evaluate(model, res.params, ds.x_test, ds.y_test)
    assert loss == pytest.approx(h["test_loss"][-1], rel=1e-5) and acc == pytest.approx(h["test_acc"][-1])
    # every trusted file is checksummed: a flipped byte is detected and the file named
    hist, found, _ = verify_training_dir(tmp_path)
    assert found == res.checkpoints and np.array_equal(hist["train_loss"], h["train_loss"])
    data = bytearray(res.checkpoints[3].read_bytes())
    data[-1] ^= 1
    res.checkpoints[3].write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="epoch_000003.msgpack: checksum mismatch"):
        verify_training_dir(tmp_path)
    res.checkpoints[3].unlink()
    with pytest.raises(CorruptFileError, match="epoch_000003.msgpack: missing"):
        verify_training_dir(tmp_path)
    manifest = tmp_path / "training.json"
    manifest.write_text(manifest.read_text().replace('"train_loss": [', '"train_loss": [1.0, ', 1))
    with pytest.raises(CorruptFileError, match="training.json: checksum mismatch"):
        load_history(tmp_path)


def test_training_is_deterministic(tiny, tmp_path):
    ds, model = tiny
    a = train(model, ds, epochs=3, batch_size=32, seed=5)
    b = train(model, ds, epochs=3, batch_size=32, seed=5)
    c = train(model, ds, epochs=3, batch_size=32, seed=6)
    for k in a.history:
        np.testing.assert_array_equal(a.history[k], b.history[k])
    assert _tree_equal(a.params, b.params) and not _tree_equal(a.params, c.params)
    save_params(tmp_path / "p.msgpack", a.params)
    assert (tmp_path / "p.msgpack").read_bytes() == __import__("flax").serialization.to_bytes(b.params)


def test_adam_baseline_and_errors(tiny):
    ds, model = tiny
    base = train_baseline(model, ds, epochs=2, batch_size=32, optimizer="adam", learning_rate=1e-3)
    init = init_params(model, ds.input_shape, 0)
    # the baseline trains on the TEST split: its "train" curve at epoch 0 is on x_test
    loss, _ = evaluate(model, init, ds.x_test, ds.y_test)
    assert base.history["train_loss"][0] == pytest.approx(loss, rel=1e-5)
    assert base.history["train_loss"][-1] < base.history["train_loss"][0]
    with pytest.raises(ValueError, match="checkpoint_dir"):
        train(model, ds, epochs=2, checkpoint_epochs=(1,))
    with pytest.raises(ValueError, match="optimizer"):
        train(model, ds, epochs=1, optimizer="rmsprop")
    with pytest.raises(ValueError, match="checkpoint epochs"):
        train(model, ds, epochs=2, checkpoint_epochs=(5,), checkpoint_dir="unused")


def test_mlp_flattens_image_inputs():
    ds = load_dataset("digits", seed=0)
    model = model_for_dataset(ds, "mlp")
    params = init_params(model, ds.input_shape)
    x = jnp.asarray(ds.x_test[:5])
    out = model.apply(params, x)
    assert out.shape == (5, 10)
    flat = model.apply(params, x.reshape(5, -1)[:, None].reshape(5, 8, 8, 1))
    np.testing.assert_allclose(out, flat)
    batched = model.apply(params, x.reshape(1, 5, 8, 8, 1))
    assert batched.shape == (1, 5, 10)
    np.testing.assert_allclose(batched[0], out, rtol=1e-6)


def test_a_corrupt_checkpoint_is_named(tmp_path):
    """Bytes that are not a flax msgpack checkpoint are a ValueError naming the file."""
    for name, data in (("garbage.msgpack", b"\x93\x01garbage"), ("empty.msgpack", b"")):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ValueError, match=f"{name}' is not a readable parameter checkpoint"):
            load_params(path)
        with pytest.raises(ValueError, match=f"{name}' is not a readable parameter checkpoint"):
            load_params(path, template={"w": np.zeros(2)})


def test_train_refuses_bad_data_and_options_and_stops_on_divergence(tmp_path):
    import dataclasses

    from jinter.training import DivergedError, checkpoint_path, data_sha256, list_checkpoints, train

    ds = load_dataset("wine")
    m = model_for_dataset(ds)
    x = ds.x_train.copy()
    x[3, 2] = np.nan
    y7 = ds.y_train.copy()
    y7[0] = 7
    for kwargs, message in [
        (dict(dataset=dataclasses.replace(ds, x_train=x)), r"x_train has NaN or infinite values, the first at index \(3, 2\)"),
        (dict(dataset=dataclasses.replace(ds, y_train=y7)), r"y_train must be integer class labels in \[0, 3\)"),
        (dict(model=make_model("mlp", n_classes=2)), r"labels in \[0, 2\) for a model with 2 outputs"),
        (dict(epochs=1.7), "epochs must be an integer"), (dict(seed=2**40), "seed must be an integer in"),
        (dict(learning_rate=float("inf")), "learning_rate must be a finite number"),
        (dict(momentum=1.0), "momentum must be a finite number"), (dict(checkpoint_epochs=[1.5]), "checkpoint_epochs"),
    ]:
        args = dict(model=m, dataset=ds, epochs=1) | kwargs
        with pytest.raises(ValueError, match=message):
            train(args.pop("model"), args.pop("dataset"), **args)
    with pytest.raises(DivergedError, match=r"training diverged: the train loss is nan after epoch 1 \(learning_rate=10000"):
        train(m, ds, epochs=2, learning_rate=1e4)
    # a batch larger than the split is one padded batch: the same step as a batch of the whole split
    big, whole = train(m, ds, epochs=1, batch_size=500), train(m, ds, epochs=1, batch_size=len(ds.y_train))
    np.testing.assert_allclose(big.history["train_loss"], whole.history["train_loss"], rtol=1e-6)
    # retraining into a folder replaces the old run's checkpoints; the manifest records the data
    d = tmp_path / "ck"
    train(m, ds, epochs=2, checkpoint_epochs=[0, 2], checkpoint_dir=d)
    train(m, ds, epochs=1, checkpoint_epochs=[1], checkpoint_dir=d)
    assert list(list_checkpoints(d)) == [1] and not checkpoint_path(d, 2).exists()
    assert json.loads((d / "training.json").read_text())["data_sha256"] == data_sha256(ds)
    with pytest.raises(ValueError, match="epoch must be an integer ≥ 0"):
        checkpoint_path(d, -3)
    with pytest.raises(ValueError, match="another structure or shape than the template"):
        load_params(checkpoint_path(d, 1), init_params(make_model("mlp", n_classes=2, hidden=(7,)), (13,)))


def test_data_and_model_arguments_are_named():


    for call, message in [
        (lambda: make_synthetic(100, 4, planted=(PlantedTerm("and", (0, 0), 1.0),)), "bad planted term"),
        (lambda: make_synthetic(100, 4, planted=(PlantedTerm("and", (0, 1), float("nan")),)), "a finite weight"),
        (lambda: make_synthetic(100, 4, n_and=1.5), "n_and must be an integer"),
        (lambda: make_synthetic(0), "n_samples must be an integer"),
        (lambda: load_dataset("synthetic", n_and=0, n_or=0), "n_and \\+ n_or must be ≥ 1"),
        (lambda: load_dataset("digits", seed=-1), "seed must be an integer ≥ 0"),
        (lambda: make_model("mlp", n_classes=2, hidden=(0,)), "hidden entries must be an integer ≥ 1"),
        (lambda: make_model("mlp", n_classes=2.5), "n_classes must be an integer"),
        (lambda: model_for_dataset(load_dataset("wine"), "cnn"), "the cnn takes images"),
    ]:
        with pytest.raises(ValueError, match=message):
            call()
    x, y, _ = make_synthetic(10, 4.0)
    assert x.shape == (10, 4)
