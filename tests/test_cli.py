"""End-to-end tests of `jinter demo` on tiny settings: report content, resume, refusals."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jinter.cli import main

TINY = ["--dataset", "synthetic", "--n", "4", "--epochs", "3", "--checkpoints", "3", "--samples", "3",
        "--noise-levels", "0,0.3", "--noise-epochs", "20", "--quiet"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "report"
    assert main(["demo", *TINY, "--out", str(out)]) == 0
    return out


def test_report_contents(report):
    results = json.loads((report / "results.json").read_text())
    for name in ("index.html", "loss.png", "order_distributions.png", "sigma2.png", "generalization.png",
                 "decay_spindle.png", "sparsity.png", "and_or_orders.png"):
        assert (report / name).stat().st_size > 0, name
        if name.endswith(".png"):
            assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (report / "index.html").read_text()
    assert html.count("<img") == 7 and "results.json" in html
    assert results["settings"]["n_players"] == 4 and results["settings"]["dataset"] == "synthetic"
    n_ckpt = len(results["epochs"])
    assert results["epochs"][0] == 0 and results["epochs"][-1] == 3 and n_ckpt == 3
    dist = np.asarray(results["order_distribution"])
    assert dist.shape == (n_ckpt, 4)
    np.testing.assert_allclose(dist.mean(axis=1)[dist.sum(axis=1) > 0], 1.0, rtol=1e-5)
    assert np.asarray(results["theory"]["curve"]).shape == (n_ckpt, 4)
    assert all(s >= 0 for s in results["theory"]["sigma2"])
    assert len(results["generalization"]["h_bar"]) == n_ckpt
    assert all(0 <= h <= 1 for h in results["generalization"]["h_bar"])
    assert [r["label_noise"] for r in results["noise_levels"]] == [0.0, 0.3]
    assert len(results["history"]["train_loss"]) == 4  # epochs 0..3
    # AND and OR shown apart: their per-order strengths add up to the order distribution's numerator
    by_type = {k: np.asarray(v) for k, v in results["order_strength_by_type"].items()}
    total = by_type["and"] + by_type["or"]
    assert total.shape == (n_ckpt, 4)
    z = total.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(dist[z[:, 0] > 0], (total / np.where(z > 0, z, 1))[z[:, 0] > 0], rtol=1e-9)
    assert all(r["type"] == "and" for r in results["top_and_sample0"])
    assert all(r["type"] == "or" for r in results["top_or_sample0"])
    assert results["and_or"]["all_converged"]
    assert set(results["timings_seconds"]) >= {"training", "masked_evaluation", "and_or", "theory", "total"}
    # the findings table: every tested claim with what was measured and a verdict, on the page too
    findings = results["findings"]
    assert {f["paper"] for f in findings} == {"R24", "D24", "G25", "H25"}
    assert all(f["verdict"] in ("match", "mismatch", "untested") and f["measured"] for f in findings)
    assert "Findings" in html and all(f["verdict"] in html for f in findings)
    # fits say when they fail: flags per checkpoint, shown as such
    th = results["theory"]
    assert len(th["reliable"]) == len(th["flags"]) == n_ckpt
    assert all((why == "") == ok for why, ok in zip(th["flags"], th["reliable"]))
    assert all(lo <= s2 <= hi for lo, s2, hi in zip(th["sigma2_low"], th["sigma2"], th["sigma2_high"]))
    assert all("poor_fit" in d for d in results["decay_spindle"] + results["label_noise_study"])


def test_rerun_resumes_and_reproduces(report):
    before = {p: p.stat().st_mtime_ns for p in report.rglob("*.msgpack")} | {
        p: p.stat().st_mtime_ns for p in report.rglob("unit_*.npz")}
    old = json.loads((report / "results.json").read_text())
    assert main(["demo", *TINY, "--out", str(report)]) == 0
    after = {p: p.stat().st_mtime_ns for p in before}
    assert before == after  # nothing retrained or recomputed
    new = json.loads((report / "results.json").read_text())
    for key in ("order_distribution", "theory", "generalization", "noise_levels", "history"):
        assert new[key] == old[key], key


def test_corrupt_unit_is_recomputed(report):
    unit = sorted((report / "sweep").glob("unit_*.npz"))[0]
    old = json.loads((report / "results.json").read_text())
    unit.write_bytes(b"garbage")
    assert main(["demo", *TINY, "--out", str(report)]) == 0
    assert unit.read_bytes()[:2] == b"PK"  # a valid npz again
    new = json.loads((report / "results.json").read_text())
    assert new["order_distribution"] == old["order_distribution"]


def test_refuses_other_settings(report, capsys):
    assert main(["demo", *TINY, "--seed", "1", "--out", str(report)]) == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "seed=0" in err and "--force" in err


def test_refuses_foreign_folder(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["demo", *TINY, "--out", str(tmp_path)]) == 2
    assert "holds no jinter report" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "mnist"], "unknown dataset 'mnist'"),
        (["--model", "vgg"], "unknown model 'vgg'"),
        (["--n", "40"], "n_players must be in"),
        (["--label-noise", "1.5"], "label_noise must be in"),
        (["--checkpoints", "99"], "checkpoints must be in"),
        (["--seed", "-1"], "seed must be in [0, 2**32), got -1"),
        (["--n", "-3"], "n_players must be in [2, 16], got -3"),
        (["--samples", "-1"], "samples must be >= 1, got -1"),
        (["--seed", "99999999999999999999"], "seed must be in [0, 2**32)"),
        (["--q-ratio", "inf"], "q_ratio must be a finite number"),
        (["--noise-learning-rate", "inf"], "noise_learning_rate must be a finite number"),
        (["--lr", "nan"], "learning_rate must be a finite number"),
        (["--model", "cnn", "--dataset", "wine"], "model cnn takes images"),
    ],
)
def test_bad_options(tmp_path, capsys, args, message):
    assert main(["demo", *TINY, *args, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_empty_out_is_refused(capsys):
    assert main(["demo", *TINY, "--out", ""]) == 2
    assert "--out is empty" in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    (",", "expected comma-separated numbers"), ("0.1,,0.3", "expected comma-separated numbers"),
    ("0.1,0.1", "expected distinct levels"),
])
def test_noise_levels_are_parsed_strictly(tmp_path, capsys, text, message):
    """An empty item or a repeated level is an argparse error (exit 2), not silently dropped."""
    with pytest.raises(SystemExit) as exit_:
        main(["demo", *TINY, "--noise-levels", text, "--out", str(tmp_path / "r")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"jinter demo: error: argument --noise-levels: {message}" in err
    assert not (tmp_path / "r").exists()


def test_console_script_user_error_has_no_traceback(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-m", "jinter.cli", "demo", "--dataset", "nope", "--out",
                           str(tmp_path / "r")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "unknown dataset 'nope'" in proc.stderr and "Traceback" not in proc.stderr
    bad = subprocess.run([sys.executable, "-m", "jinter.cli", "demo", "--epochs", "x"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "invalid int value" in bad.stderr


def test_same_seed_same_numbers_then_force_replaces(report, tmp_path):
    out = tmp_path / "again"
    assert main(["demo", *TINY, "--out", str(out)]) == 0
    a = json.loads((report / "results.json").read_text())
    b = json.loads((out / "results.json").read_text())
    for key in ("order_distribution", "theory", "generalization", "history", "tau"):
        assert a[key] == b[key], key
    assert main(["demo", *TINY, "--samples", "2", "--force", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["samples"] == 2 and len(results["sample_indices"]) == 2
    assert json.loads((out / "settings.json").read_text())["samples"] == 2
    assert Path(out / "index.html").exists()


# ------------------------------------------------------------------ trusted files, refusals, lock, modes


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _tamper_history(path: Path) -> None:
    """Change one number of training.json but keep it valid JSON (and its old checksum)."""
    manifest = json.loads(path.read_text())
    manifest["history"]["train_loss"][0] += 1.0
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "name, damage",
    [("train/epoch_000003.msgpack", _flip_byte), ("baseline/epoch_000003.msgpack", _flip_byte),
     ("noise_0.3/epoch_000020.msgpack", _flip_byte), ("train/training.json", _tamper_history)],
)
def test_corrupt_trusted_file_is_detected_named_and_recomputed(report, capsys, name, damage):
    path = report / name
    clean = path.read_bytes()
    old = json.loads((report / "results.json").read_text())
    damage(path)
    capsys.readouterr()
    assert main(["demo", *TINY, "--out", str(report)]) == 0
    out = capsys.readouterr().out
    assert str(path) in out and ("checksum mismatch" in out), out
    assert path.read_bytes() == clean  # retrained bit for bit
    new = json.loads((report / "results.json").read_text())
    for key in ("order_distribution", "theory", "generalization", "noise_levels", "history", "baseline_history"):
        assert new[key] == old[key], key


def test_refused_run_leaves_the_folder_as_it_was(report, tmp_path, capsys):
    fresh = tmp_path / "a" / "r"
    assert main(["demo", *TINY, "--samples", "100000", "--out", str(fresh)]) == 2
    assert "exceeds the" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()  # nothing created
    settings = (report / "settings.json").read_bytes()
    files = sorted(p.relative_to(report) for p in report.rglob("*"))
    for extra in ([], ["--force"]):
        assert main(["demo", *TINY, "--samples", "100000", *extra, "--out", str(report)]) == 2
        assert (report / "settings.json").read_bytes() == settings
        assert sorted(p.relative_to(report) for p in report.rglob("*")) == files
    assert main(["demo", *TINY, "--out", str(report)]) == 0  # the folder still serves its own settings


def test_refused_after_prepare_leaves_folder(tmp_path, capsys):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "notes.txt").write_text("mine")
    assert main(["demo", *TINY, "--out", str(fresh)]) == 2
    assert sorted(p.name for p in fresh.iterdir()) == ["notes.txt"]  # no lock, no settings left


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "wine", "--n", "14"], "cannot make 14 players from 13 features"),
        (["--dataset", "digits", "--n", "17"], "n_players must be in"),
    ],
)
def test_dataset_n_combinations_are_clean_errors(tmp_path, capsys, args, message):
    out = tmp_path / "r"
    assert main(["demo", *TINY, *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jinter demo: error: ") and message in err and "Traceback" not in err
    assert not out.exists()


def test_out_on_a_file_or_under_a_file(tmp_path, capsys):
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert main(["demo", *TINY, "--out", str(f)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["demo", *TINY, "--out", str(f / "sub")]) == 2
    assert "which is a file" in capsys.readouterr().err
    assert f.read_text() == "x"


def test_os_error_during_a_run_is_a_clean_error(tmp_path, capsys, monkeypatch):
    import jinter.cli

    def fail(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "r" / "results.json"))

    monkeypatch.setattr(jinter.cli, "run_demo", fail)
    assert main(["demo", *TINY, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jinter demo: error: cannot write") and "results.json" in err and "Permission denied" in err


def test_lock_refuses_a_concurrent_run_and_a_stale_lock_is_taken_over(report, capsys):
    from jinter.report import LOCK

    lock = report / LOCK
    results = (report / "results.json").read_bytes()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(f"{holder.pid} {__import__('socket').gethostname()}\n")
        for extra in ([], ["--seed", "1", "--force"]):  # --force must not clear a folder in use
            assert main(["demo", *TINY, *extra, "--out", str(report)]) == 2
            err = capsys.readouterr().err
            assert f"in use by another jinter demo (pid {holder.pid}" in err and str(lock) in err
            assert (report / "results.json").read_bytes() == results and lock.exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder is dead: its lock is stale and must not block
    assert main(["demo", *TINY, "--out", str(report)]) == 0
    assert not lock.exists()


def test_atomic_writes_respect_the_umask(tmp_path):
    import stat

    from jinter.training import atomic_write_bytes

    for mask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        old = os.umask(mask)
        try:
            p = atomic_write_bytes(tmp_path / f"f{mask:o}", b"x")
        finally:
            os.umask(old)
        assert stat.S_IMODE(p.stat().st_mode) == mode


def test_report_files_are_readable_like_the_figures(report):
    import stat

    png = stat.S_IMODE((report / "loss.png").stat().st_mode)
    for name in ("index.html", "results.json", "settings.json", "train/training.json",
                 "train/epoch_000003.msgpack"):
        assert stat.S_IMODE((report / name).stat().st_mode) == png, name
    unit = next((report / "sweep").glob("unit_*.npz"))
    assert stat.S_IMODE(unit.stat().st_mode) == png


def test_digits_report_maps_players_to_patches(tmp_path):
    """On images the report draws the players (numbered patches) on the first probed digit with
    its class and the final model's log-odds, and the top interactions on the same digit."""
    out = tmp_path / "digits"
    args = ["demo", "--dataset", "digits", "--n", "4", "--epochs", "2", "--checkpoints", "2", "--samples", "2",
            "--noise-levels", "0", "--noise-epochs", "2", "--quiet", "--out", str(out)]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    per_type = [kind for kind in ("and", "or") if results[f"top_{kind}_sample0"]]
    assert per_type  # a trained model has salient interactions
    for name in ("players.png", "top_interactions.png", *(f"top_{kind}.png" for kind in per_type)):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "index.html").read_text()
    assert html.count("<img") == 9 + len(per_type)
    assert "4 image patches" in html and "log-odds of class" in html


def test_findings_follow_the_noise_levels_and_need_a_phase_two():
    """User trial (2026-12-08): the [G25] verdict flipped with the order of --noise-levels, and the
    phase-2 claims were decided when no phase 2 was found."""
    from jinter.report import _findings

    def study(levels):
        return [dict(label_noise=lv, fits_its_labels=True, poor_fit=False, spindle=sh, decay=1.0 - sh,
                     residual=0.01, train_accuracy=1.0) for lv, sh in levels]

    base = dict(epochs=[0, 1, 2, 3], generalization=dict(n_bar=[5, 4, 3, 3], h_bar=[0.6, 0.5, 0.4, 0.3]),
                mean_order=[2.0, 1.5, 1.8, 2.2], phase_two_start_epoch=1, gap_widening_epoch=1,
                theory=dict(reliable=[True] * 4, sigma2=[0.1, 0.08, 0.05, 0.02]))
    verdicts = []
    for levels in ([(0.0, 0.03), (0.3, 0.23)], [(0.3, 0.23), (0.0, 0.03)]):
        rows = _findings({**base, "label_noise_study": study(levels)}, 4)
        verdicts.append([r["verdict"] for r in rows if r["paper"] == "G25"])
    assert verdicts == [["match"], ["match"]]
    rows = _findings({**base, "phase_two_start_epoch": None, "label_noise_study": []}, 4)
    by = {(r["paper"], r["claim"].split()[2]): r["verdict"] for r in rows}
    assert by[("H25", "later")] == "untested" and by[("D24", "level")] == "untested"
