"""Resumable sharded sweeps: correctness, corruption / mismatch detection, kill-and-resume,
and 4 devices vs 1 (n = 4 players, tiny MLP, a capped AND-OR solve to keep it fast)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jinter import decomposition, masking, sweep
from jinter.data import load_dataset
from jinter.models import make_model
from jinter.sweep import (
    SweepError,
    default_players,
    load_sweep,
    run_sweep,
    select_samples,
    sweep_dataset,
)
from jinter.training import load_params, train

ROOT = Path(__file__).resolve().parents[1]
N = 4
SAMPLES = 5
BLOCK = 3
AND_OR = {"max_iter": 400, "check_every": 50}  # capped: results are deterministic either way
FIELDS = ("v",) + decomposition.AndOrResult._fields  # everything a sweep stores per sample
FORMAT_1 = ROOT / "tests" / "data" / "sweep_format1"  # a folder written by the previous format (see below)

# Rebuilds the same dataset, model and checkpoints in a fresh process (used by subprocess tests).
_SETUP = textwrap.dedent(
    f"""
    import sys, time
    import jax
    jax.config.update("jax_enable_x64", True)
    from jinter.data import load_dataset
    from jinter.models import make_model
    from jinter.sweep import sweep_dataset
    ds = load_dataset("synthetic", seed=0, n_samples=300, n_features={N})
    model = make_model("mlp", n_classes=2, hidden=(8,))
    ckpt, out = sys.argv[1], sys.argv[2]
    kw = dict(n_players={N}, n_samples={SAMPLES}, block_size={BLOCK}, and_or_kwargs={AND_OR!r},
              progress=False)
    """
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    ds = load_dataset("synthetic", seed=0, n_samples=300, n_features=N)
    model = make_model("mlp", n_classes=2, hidden=(8,))
    ckpt = tmp_path_factory.mktemp("ckpt")
    res = train(model, ds, epochs=4, batch_size=32, learning_rate=0.05, checkpoint_epochs=(0, 2, 4),
                checkpoint_dir=ckpt)
    ref = tmp_path_factory.mktemp("ref")
    report = sweep_dataset(model, ds, res.checkpoints, ref, n_players=N, n_samples=SAMPLES,
                           block_size=BLOCK, and_or_kwargs=AND_OR, progress=False)
    return ds, model, res, ckpt, ref, report


def _run(args, env=None, **kw):
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("JAX_PLATFORMS", "cpu")
    return subprocess.Popen([sys.executable, "-c", *args], env=env, **kw)


def _assert_same(a, b, exact=True):
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert x.shape == y.shape, f
        if exact or x.dtype == bool or np.issubdtype(x.dtype, np.integer):
            np.testing.assert_array_equal(x, y, err_msg=f)
        else:
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-9, err_msg=f)
    np.testing.assert_array_equal(a.epochs, b.epochs)
    np.testing.assert_array_equal(a.sample_indices, b.sample_indices)


def test_sweep_matches_direct_computation(setup):
    ds, model, res, _, ref, report = setup
    assert report.units == 3 * 2 and report.computed == 6 and report.reused == 0
    out = load_sweep(ref)
    idx = select_samples(len(ds.y_test), SAMPLES, 0)
    assert out.v.shape == (3, SAMPLES, 2**N) and out.I_and.shape == (3, SAMPLES, 2**N)
    np.testing.assert_array_equal(out.epochs, [0, 2, 4])
    np.testing.assert_array_equal(out.sample_indices, idx)
    np.testing.assert_array_equal(out.labels, ds.y_test[idx])
    assert report.unconverged == int(np.sum(~out.converged))
    assert 0 < report.value_seconds and 0 < report.and_or_seconds < report.seconds
    players = default_players(ds.input_shape, N)
    params = jax.tree.map(lambda a: a.astype(jnp.float64), load_params(res.checkpoints[2]))
    x = jnp.asarray(ds.x_test[idx], jnp.float64)
    v = masking.masked_outputs(model, x, players, reward=masking.log_odds(ds.y_test[idx].astype(np.int64)),
                               params=params)
    np.testing.assert_allclose(out.v[1], v, rtol=1e-12, atol=1e-12)
    direct = decomposition.and_or(v[:BLOCK], q_ratio=0.02, **AND_OR)  # the first unit's block
    for f in ("I_and", "I_or", "q", "objective"):
        np.testing.assert_allclose(getattr(out, f)[1, :BLOCK], getattr(direct, f), rtol=1e-9, atol=1e-9)
    # universal matching of the stored split (docs/math.md §3)
    from jinter.transforms import matching_error

    assert np.max(matching_error(out.v + out.q, out.I_and, out.I_or)) < 1e-8
    again = sweep_dataset(model, ds, res.checkpoints, ref, n_players=N, n_samples=SAMPLES, block_size=BLOCK,
                          and_or_kwargs=AND_OR, progress=False)
    assert (again.reused, again.computed, again.recomputed) == (6, 0, 0)


def test_corrupt_and_stale_units_are_recomputed(setup, tmp_path):
    ds, model, res, _, ref, _ = setup
    work = shutil.copytree(ref, tmp_path / "sweep")
    (work / "unit_c0000_b0000.npz").write_bytes((ref / "unit_c0000_b0000.npz").read_bytes()[:200])  # truncated
    data = bytearray((ref / "unit_c0001_b0001.npz").read_bytes())
    v = np.ascontiguousarray(load_sweep(ref).v[1, BLOCK]).tobytes()  # the block's first v row
    at = bytes(data).find(v)
    assert at > 0
    data[at + 3] ^= 0x10  # one flipped bit inside the stored values
    (work / "unit_c0001_b0001.npz").write_bytes(bytes(data))
    # a valid file of another unit under this name: its hash does not match
    (work / "unit_c0002_b0000.npz").write_bytes((ref / "unit_c0001_b0000.npz").read_bytes())
    with pytest.raises(SweepError, match="3 of 6"):
        load_sweep(work)
    rep = sweep_dataset(model, ds, res.checkpoints, work, n_players=N, n_samples=SAMPLES, block_size=BLOCK,
                        and_or_kwargs=AND_OR, progress=False)
    assert (rep.recomputed, rep.reused, rep.computed) == (3, 3, 0)
    assert rep.recomputed_files == ("unit_c0000_b0000.npz", "unit_c0001_b0001.npz", "unit_c0002_b0000.npz")
    _assert_same(load_sweep(work), load_sweep(ref))


def test_settings_mismatch_detected(setup, tmp_path):
    ds, model, res, _, ref, _ = setup
    work = shutil.copytree(ref, tmp_path / "sweep")
    kw = dict(n_players=N, n_samples=SAMPLES, block_size=BLOCK, and_or_kwargs=AND_OR, progress=False)
    with pytest.raises(SweepError, match="other settings"):
        sweep_dataset(model, ds, res.checkpoints, work, q_ratio=0.0, on_mismatch="error", **kw)
    rep = sweep_dataset(model, ds, res.checkpoints, work, q_ratio=0.0, **kw)
    assert (rep.recomputed, rep.reused) == (6, 0)  # every old file was stale
    assert np.all(load_sweep(work).q == 0)
    # a changed checkpoint invalidates only its own units
    ckpts = dict(res.checkpoints)
    ckpts[4] = jax.tree.map(lambda a: a * 1.01, res.params)
    rep = sweep_dataset(model, ds, ckpts, work, q_ratio=0.0, **kw)
    assert (rep.recomputed, rep.reused) == (2, 4)
    with pytest.raises(ValueError, match="block_size"):
        sweep_dataset(model, ds, res.checkpoints, work, **{**kw, "block_size": 0})


def test_array_baseline(setup, tmp_path):
    """An array baseline passes through sweep_dataset (which once compared it with "mean"
    elementwise); zeros as an array give the values of baseline="zeros"."""
    ds, model, res, _, ref, _ = setup
    out = tmp_path / "sweep"
    sweep_dataset(model, ds, res.checkpoints, out, n_players=N, n_samples=SAMPLES, block_size=BLOCK,
                  and_or_kwargs=AND_OR, progress=False, baseline=np.zeros(ds.input_shape))
    _assert_same(load_sweep(out), load_sweep(ref))


def test_kill_and_resume_equals_uninterrupted(setup, tmp_path):
    ds, model, res, ckpt, ref, _ = setup
    out = tmp_path / "sweep"
    script = _SETUP + textwrap.dedent(
        """
        import jinter.decomposition as dec
        slow = dec.and_or
        def and_or(*a, **k):  # slow the units down so the kill lands mid-sweep
            time.sleep(1.0)
            return slow(*a, **k)
        dec.and_or = and_or
        sweep_dataset(model, ds, ckpt, out, **kw)
        """
    )
    proc = _run([script, str(ckpt), str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None and not list(out.glob("unit_*.npz")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    done = len(list(out.glob("unit_*.npz")))
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert 0 < done < 6
    with pytest.raises(SweepError):
        load_sweep(out)
    (out / ".unit_c0002_b0001.npz.x1y2.tmp").write_bytes(b"half a file")  # a write cut short
    rep = sweep_dataset(model, ds, ckpt, out, n_players=N, n_samples=SAMPLES, block_size=BLOCK,
                        and_or_kwargs=AND_OR, progress=False)
    assert rep.reused == done and rep.computed + rep.recomputed == 6 - done
    _assert_same(load_sweep(out), load_sweep(ref))
    assert not list(out.glob("*.tmp"))


def test_four_devices_match_one(setup, tmp_path):
    _, _, _, ckpt, ref, _ = setup
    out = tmp_path / "sweep4"
    script = _SETUP + textwrap.dedent(
        """
        assert jax.device_count() == 4, jax.devices()
        import jinter.sweep as sw
        mesh = sw.sample_mesh()
        assert mesh.devices.size == 4
        sweep_dataset(model, ds, ckpt, out, **kw)
        """
    )
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    proc = _run([script, str(ckpt), str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-3000:]
    _assert_same(load_sweep(out), load_sweep(ref), exact=False)


def test_two_processes_with_jax_distributed_match_one(setup, tmp_path):
    """Multi-host path for real: two processes joined by jax.distributed (CPU, localhost
    coordinator) split the units between them into one folder; the result equals one process."""
    import socket

    _, _, _, ckpt, ref, _ = setup
    out = tmp_path / "sweep_mp"
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    script = _SETUP.replace(
        "import jax\n",
        "import jax\n"
        f"jax.distributed.initialize(coordinator_address='localhost:{port}', num_processes=2, "
        "process_id=int(sys.argv[3]))\n",
        1,
    ) + textwrap.dedent(
        """
        assert jax.process_count() == 2 and len(jax.devices()) == 2 and len(jax.local_devices()) == 1
        rep = sweep_dataset(model, ds, ckpt, out, **kw)
        print("computed", rep.computed, "reused", rep.reused)
        jax.distributed.shutdown()
        """
    )
    procs = [_run([script, str(ckpt), str(out), str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (_o, e) in zip(procs, outs):
        assert p.returncode == 0, e.decode()[-3000:]
    # 6 units (3 checkpoints × 2 blocks): u % 2 == process_index, 3 each, none twice
    assert [o.decode().split()[-3:] for o, _ in outs] == [["3", "reused", "0"]] * 2
    _assert_same(load_sweep(out), load_sweep(ref), exact=False)


def test_float32_path_matches_float64(setup, tmp_path):
    ds, model, res, _, ref, _ = setup
    rep = sweep_dataset(model, ds, {4: res.checkpoints[4]}, tmp_path, n_players=N, n_samples=SAMPLES,
                        block_size=BLOCK, and_or_kwargs=AND_OR, dtype=jnp.float32, progress=False)
    assert rep.computed == 2
    out32, out64 = load_sweep(tmp_path), load_sweep(ref)
    assert out32.v.dtype == np.float32 and out32.settings["dtype"] == "float32"
    # v: float32 rounding of a small MLP, relative to the value scale
    scale = np.abs(out64.v[2]).max()
    np.testing.assert_allclose(out32.v[0], out64.v[2], atol=1e-5 * scale)
    # the split: the LP optimum is not unique and float32 runs the CG form of the q-projection
    # (float64 the graph form, docs/math.md §3.5), so the interactions may be another optimum's;
    # the objective is the same within the float32 tolerance, and the split matches v + q
    from jinter.transforms import matching_error

    o32, o64 = out32.objective[0].astype(np.float64), out64.objective[2]
    assert np.all(np.abs(o32 - o64) <= 1e-3 * (1 + np.abs(o64))), (o32, o64)
    err = matching_error(out32.v[0] + out32.q[0], out32.I_and[0], out32.I_or[0])
    assert np.max(err) < 1e-4 * (1 + np.abs(out32.v[0]).max())


def test_every_and_or_field_is_stored_and_survives_resume(setup, tmp_path):
    """SweepResult.and_or is the stacked AndOrResult (all of its fields, also the canonical
    phase's); the old attributes read through to it; resume and reload keep every field."""
    ds, model, res, _, ref, _ = setup
    out = load_sweep(ref)
    assert isinstance(out.and_or, decomposition.AndOrResult) and out.settings["format"] == sweep.FORMAT_VERSION
    for f in decomposition.AndOrResult._fields:
        assert getattr(out, f) is getattr(out.and_or, f), f
        assert getattr(out, f).shape[:2] == (3, SAMPLES), f
        with pytest.raises(AttributeError):
            setattr(out, f, None)
    direct = decomposition.and_or(out.v[1, :BLOCK], q_ratio=0.02, **AND_OR)
    for f in decomposition.AndOrResult._fields:
        np.testing.assert_allclose(getattr(out, f)[1, :BLOCK], getattr(direct, f), rtol=1e-9, atol=1e-9, err_msg=f)
    assert set(np.unique(out.status)) <= {decomposition.STATUS_ANY_OPTIMUM, decomposition.STATUS_UNCERTIFIED}
    # the canonical phase's fields, round-tripped through the unit files and a resume
    work = tmp_path / "canonical"
    kw = dict(n_players=N, n_samples=SAMPLES, block_size=BLOCK, progress=False,
              and_or_kwargs={**AND_OR, "canonical": True, "canonical_max_iter": 4000})
    rep = sweep_dataset(model, ds, {4: res.checkpoints[4]}, work, **kw)
    assert rep.computed == 2
    can = load_sweep(work)
    direct = decomposition.and_or(can.v[0], q_ratio=0.02, **kw["and_or_kwargs"])
    for f in decomposition.AndOrResult._fields:
        np.testing.assert_allclose(getattr(can, f)[0], getattr(direct, f), rtol=1e-9, atol=1e-9, err_msg=f)
    assert np.any(can.canonical) and np.all(can.canonical_eps[can.canonical] > 0)
    assert np.all(np.isfinite(can.canonical_distance[can.canonical]))
    assert set(np.unique(can.status)) <= {decomposition.STATUS_CANONICAL, decomposition.STATUS_NOT_CANONICAL,
                                          decomposition.STATUS_UNCERTIFIED}
    again = sweep_dataset(model, ds, {4: res.checkpoints[4]}, work, **kw)
    assert (again.reused, again.computed, again.recomputed) == (2, 0, 0)
    _assert_same(load_sweep(work), can)
    # a unit file of this format that lacks a field is not valid: load refuses, resume recomputes it
    path = work / "unit_c0000_b0001.npz"
    unit_hash = json.loads((work / sweep.MANIFEST).read_text())["units"][1]["hash"]
    unit = sweep._read_unit(path, unit_hash)
    sweep._write_unit(path, {k: a for k, a in unit.items() if k != "status"}, unit_hash)
    with pytest.raises(SweepError, match="1 of 2"):
        load_sweep(work)
    again = sweep_dataset(model, ds, {4: res.checkpoints[4]}, work, **kw)
    assert (again.reused, again.recomputed) == (1, 1)
    _assert_same(load_sweep(work), can)


def _as_format_1(folder: Path, and_or_kwargs=AND_OR) -> None:
    """Rewrite a sweep folder the way format 1 wrote it: units without the canonical phase's
    fields and status, settings with format 1 and the solver options as ``and_or_kwargs``."""
    man = json.loads((folder / sweep.MANIFEST).read_text())
    for u in man["units"]:
        arrays = sweep._read_unit(folder / u["file"], u["hash"])
        old = {k: a for k, a in arrays.items() if k not in ("canonical", "canonical_eps", "canonical_distance", "status")}
        sweep._write_unit(folder / u["file"], old, u["hash"])
    settings = man["settings"]
    settings.pop("solver", None)
    settings.update(format=1, and_or_kwargs=dict(and_or_kwargs))
    (folder / sweep.MANIFEST).write_text(json.dumps(man))


def test_format_1_folder_loads_with_the_documented_fill(setup, tmp_path):
    """A folder of the previous format (no canonical fields, no status) loads: the missing fields
    are what and_or returns without the canonical phase, so they equal a fresh sweep's exactly."""
    ds, model, res, _, ref, _ = setup
    old = shutil.copytree(ref, tmp_path / "old")
    _as_format_1(old)
    with np.load(old / "unit_c0000_b0000.npz") as f:
        assert "status" not in f.files and "canonical" not in f.files and "converged" in f.files
    got = load_sweep(old)
    assert got.settings["format"] == 1
    _assert_same(got, load_sweep(ref))
    assert got.status.dtype == np.int32 and got.canonical.dtype == bool and got.canonical_eps.dtype == got.v.dtype
    # a folder written by the previous code itself (2 checkpoints × 5 samples, n = 4, capped solve)
    real = load_sweep(FORMAT_1)
    assert real.settings["format"] == 1 and real.I_and.shape == (2, 5, 16)
    with np.load(FORMAT_1 / "unit_c0001_b0000.npz") as f:
        np.testing.assert_array_equal(real.I_and[1, :3], f["I_and"])
        np.testing.assert_array_equal(real.converged[1, :3], f["converged"])
    assert not np.any(real.canonical) and np.all(real.canonical_eps == 0) and np.all(np.isinf(real.canonical_distance))
    np.testing.assert_array_equal(real.status, np.where(real.converged, 3, 2))
    assert real.and_or.messages()[0] == decomposition.STATUS_MESSAGES[int(real.status[0, 0])]
    # resume on an old folder: every unit is recomputed in the current format (or refused)
    kw = dict(n_players=N, n_samples=SAMPLES, block_size=BLOCK, and_or_kwargs=AND_OR, progress=False)
    with pytest.raises(SweepError, match=r"other settings.*sweep format 1, this one writes 2"):
        sweep_dataset(model, ds, res.checkpoints, old, on_mismatch="error", **kw)
    rep = sweep_dataset(model, ds, res.checkpoints, old, **kw)
    assert (rep.recomputed, rep.reused) == (6, 0)
    new = load_sweep(old)
    assert new.settings["format"] == sweep.FORMAT_VERSION
    _assert_same(new, load_sweep(ref))


def test_format_1_folder_refused_when_it_cannot_be_filled(setup, tmp_path):
    _, _, _, _, ref, _ = setup
    old = shutil.copytree(ref, tmp_path / "old_canonical")
    _as_format_1(old, {**AND_OR, "canonical": True})  # its canonical fields were dropped: lost
    with pytest.raises(SweepError, match=rf"{old}.*format 1.*canonical=True.*rerun run_sweep"):
        load_sweep(old)
    newer = shutil.copytree(ref, tmp_path / "newer")
    man = json.loads((newer / sweep.MANIFEST).read_text())
    man["settings"]["format"] = 99
    (newer / sweep.MANIFEST).write_text(json.dumps(man))
    with pytest.raises(SweepError, match=rf"{newer} has sweep format 99"):
        load_sweep(newer)


def test_typed_solver_options_are_fingerprinted(setup, tmp_path):
    """solver=AndOrOptions(...) is the typed form of and_or_kwargs: the same options give the
    same fingerprint (a resume reuses every unit); other options recompute or refuse."""
    ds, model, res, _, ref, _ = setup
    work = shutil.copytree(ref, tmp_path / "sweep")
    kw = dict(n_players=N, n_samples=SAMPLES, block_size=BLOCK, progress=False)
    rep = sweep_dataset(model, ds, res.checkpoints, work, solver=decomposition.AndOrOptions(**AND_OR), **kw)
    assert (rep.reused, rep.computed, rep.recomputed) == (6, 0, 0)
    settings = load_sweep(work).settings
    assert settings["solver"] == {"type": "AndOrOptions", **decomposition.AndOrOptions(**AND_OR).kwargs()}
    assert settings["q_ratio"] == 0.02 and "and_or_kwargs" not in settings
    other = decomposition.AndOrOptions(**AND_OR).replace(max_iter=450)
    with pytest.raises(SweepError, match="other settings"):
        sweep_dataset(model, ds, res.checkpoints, work, solver=other, on_mismatch="error", **kw)
    rep = sweep_dataset(model, ds, res.checkpoints, work, solver=other, **kw)
    assert (rep.recomputed, rep.reused) == (6, 0)
    assert load_sweep(work).settings["solver"]["max_iter"] == 450
    # the defaults are part of the fingerprint: {} and an explicit default are one setting
    fp = lambda *a: sweep._fingerprint(sweep._solver_options(*a))  # noqa: E731
    assert fp(None, None, None) == fp(None, {}, None) == fp(None, {"max_iter": 100_000}, 0.02)
    assert fp(decomposition.AndOrOptions(q_ratio=0), None, None) == fp(None, {"q_ratio": 0.0}, None) == fp(None, {}, 0)
    assert fp(None, {"tol": 1e-5}, None) != fp(None, {"tol": 1e-6}, None)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(solver=decomposition.AndOrOptions(), and_or_kwargs={}), "not both"),
        (dict(solver={"tol": 1e-5}), r"solver must be a jinter.AndOrOptions, got dict"),
        (dict(and_or_kwargs={"max_iters": 10}), r"and_or_kwargs: unknown AndOrOptions field\(s\) \['max_iters'\]"),
        (dict(and_or_kwargs={"tol": -1.0}), r"AndOrOptions.tol must be a finite number in \(0, 1\)"),
        (dict(and_or_kwargs=[("tol", 1e-5)]), "and_or_kwargs must be a mapping"),
        (dict(solver=decomposition.AndOrOptions(q_ratio=0.04), q_ratio=0.02), r"q_ratio=0.02 and solver.q_ratio=0.04 differ"),
        (dict(and_or_kwargs={"q_ratio": 0.0}, q_ratio=0.02), r"and_or_kwargs\['q_ratio'\]=0.0 differ"),
        (dict(q_ratio=-1), r"AndOrOptions.q_ratio must be a finite number ≥ 0"),
    ],
)
def test_bad_solver_options_fail_before_any_work(setup, tmp_path, kwargs, message):
    ds, model, res, _, _, _ = setup
    with pytest.raises(ValueError, match=message):
        sweep_dataset(model, ds, res.checkpoints, tmp_path / "never", n_players=N, n_samples=SAMPLES, progress=False,
                      **kwargs)
    assert not (tmp_path / "never").exists()


def test_planning_stage_writes_nothing_and_gives_the_manifest(setup, tmp_path):
    """run_sweep's stages on their own: _plan decides the units and hashes (the manifest a run
    writes) without touching out_dir; _assigned splits them between processes; _unit_state says
    which files a resume reuses."""
    ds, model, res, _, ref, _ = setup
    idx = select_samples(len(ds.y_test), SAMPLES, 0)
    players = default_players(ds.input_shape, N)
    plan = sweep._plan(
        model, res.checkpoints, ds.x_test[idx], ds.y_test[idx], players, sample_indices=idx, block_size=BLOCK,
        baseline="zeros", data=None, reward="log_odds", q_ratio=None, solver=None, and_or_kwargs=AND_OR, dtype=None,
    )
    assert plan.manifest == json.loads((ref / sweep.MANIFEST).read_text())
    assert [u["file"] for u in plan.units] == [f"unit_c{c:04d}_b{b:04d}.npz" for c in range(3) for b in range(2)]
    assert plan.options == decomposition.AndOrOptions(**AND_OR)
    assert sorted(u["file"] for p in range(4) for u in sweep._assigned(plan.units, p, 4)) == sorted(
        u["file"] for u in plan.units)
    assert [u["block"] for u in sweep._assigned(plan.units, 1, 2)] == [1, 1, 1]
    assert {sweep._unit_state(ref / u["file"], u["hash"]) for u in plan.units} == {"valid"}
    u = plan.units[0]
    assert sweep._unit_state(tmp_path / u["file"], u["hash"]) == "missing"
    (tmp_path / u["file"]).write_bytes((ref / u["file"]).read_bytes()[:100])
    assert sweep._unit_state(tmp_path / u["file"], u["hash"]) == "invalid"
    assert sweep._unit_state(ref / plan.units[1]["file"], u["hash"]) == "invalid"  # another unit's file
    assert sorted(p.name for p in tmp_path.iterdir()) == [u["file"]]  # planning wrote nothing


def test_manifest_that_lost_or_doubled_a_unit_is_refused(setup, tmp_path):
    """A unit dropped from (or listed twice in) sweep.json, a unit file of another epoch under the
    manifest's epochs, or a malformed manifest: load_sweep refuses instead of filling zeros."""
    ref = setup[4]
    for name, edit in [
        ("dropped", lambda m: m["units"].pop()),
        ("doubled", lambda m: m["units"].append(dict(m["units"][0]))),
        ("epochs", lambda m: m.__setitem__("epochs", [e + 1 for e in m["epochs"]])),
        ("no blocks", lambda m: m.pop("blocks")),
        ("settings", lambda m: m.__setitem__("settings", [])),
    ]:
        work = shutil.copytree(ref, tmp_path / name.replace(" ", "_"))
        man = json.loads((work / "sweep.json").read_text())
        edit(man)
        (work / "sweep.json").write_text(json.dumps(man))
        with pytest.raises(SweepError):
            load_sweep(work)
    work = shutil.copytree(ref, tmp_path / "list")
    (work / "sweep.json").write_text("[]")
    with pytest.raises(SweepError, match="not a sweep manifest"):
        load_sweep(work)


def test_out_dir_that_is_a_file_or_an_unreadable_manifest_is_refused(setup, tmp_path):
    ds, model, res, _, ref, _ = setup
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out in (afile, afile / "below"):
        with pytest.raises(SweepError, match="is a file"):
            sweep_dataset(model, ds, res.checkpoints, out, n_players=N, n_samples=SAMPLES, block_size=BLOCK,
                          and_or_kwargs=AND_OR, progress=False)
    work = shutil.copytree(ref, tmp_path / "truncated")
    (work / "sweep.json").write_text((ref / "sweep.json").read_text()[:50])
    with pytest.raises(SweepError, match="cannot be read as a sweep manifest"):
        sweep_dataset(model, ds, res.checkpoints, work, n_players=N, n_samples=SAMPLES, block_size=BLOCK,
                      and_or_kwargs=AND_OR, progress=False, on_mismatch="error")


@pytest.mark.parametrize("kwargs, message", [
    (dict(block_size=1.5), "block_size must be an integer"), (dict(block_size=True), "block_size must be an integer"),
    (dict(block_size="2"), "block_size must be an integer"), (dict(process_index=0.5), "process_index must be an integer"),
    (dict(dtype="int8"), "dtype must be a float dtype"), (dict(y=[0.5, 1.7]), "y must hold class labels"),
    (dict(checkpoints={1.5: None}), "checkpoint epochs"),
])
def test_sweep_options_are_not_truncated(setup, tmp_path, kwargs, message):
    ds, model, res, _, _, _ = setup
    x = np.asarray(ds.x_test[:2])
    args = dict(model=model, checkpoints=res.checkpoints, x=x, y=np.asarray(ds.y_test[:2]),
                players=masking.TabularPlayers(N), out_dir=tmp_path / "s", progress=False)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        sweep.run_sweep(**args)
    assert not (tmp_path / "s").exists()


def test_label_beyond_the_model_outputs_names_y(setup, tmp_path):
    """A label the model has no output for is named as ``y``, not reported as a non-finite mask."""
    ds, model, res, _, _, _ = setup
    x = np.asarray(ds.x_test[:2])
    with pytest.raises(ValueError, match=r"y must be class indices in \[0, 2\) for a model with 2 output\(s\), got 5"):
        sweep.run_sweep(model, res.checkpoints, x, np.array([0, 5]), masking.TabularPlayers(N), tmp_path / "s",
                        progress=False)


def test_refused_run_leaves_a_finished_sweep_as_it_was(tmp_path):
    """Labels out of range, players that do not fit x, or NaN in x are refused before sweep.json
    is written: a finished sweep in that folder still loads (it had stopped loading)."""
    import flax.linen as nn

    import jinter

    class M(nn.Module):
        @nn.compact
        def __call__(self, b):
            return nn.Dense(3)(jnp.tanh(nn.Dense(8)(b)))

    m = M()
    ck = {e: m.init(jax.random.PRNGKey(e), jnp.ones((1, 6), jnp.float32)) for e in (0, 3)}
    x, y, players = np.random.RandomState(0).randn(4, 6).astype(np.float32), np.array([0, 1, 2, 1]), jinter.TabularPlayers(6)
    out = tmp_path / "s"
    run_sweep(m, ck, x, y, players, out, progress=False)
    before = (out / sweep.MANIFEST).read_bytes()
    bad_x = x.copy()
    bad_x[1, 2] = np.nan
    for xs, ys, ps, message in ((x, np.array([0, 1, 5, 1]), players, r"y must be class indices in \[0, 3\)"),
                                (x, y, jinter.TabularPlayers(5), "does not end with the player input shape"),
                                (bad_x, y, players, "x: 1 non-finite")):
        with pytest.raises(ValueError, match=message):
            run_sweep(m, ck, xs, ys, ps, out, progress=False)
        assert (out / sweep.MANIFEST).read_bytes() == before and load_sweep(out).v.shape == (2, 4, 64)
    with pytest.raises(ValueError, match=r"y must be class indices"):
        run_sweep(m, ck, x, np.array([0, 1, 5, 1]), players, tmp_path / "fresh", progress=False)
    assert not (tmp_path / "fresh").exists()
