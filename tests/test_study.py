"""jinter.study.analyze: the demo's one analysis, vectorized over checkpoints, equals the
per-checkpoint computation of each statistic it gathers."""

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest

from jinter import dynamics, generalization, statistics, study, theory

N, C, S = 5, 3, 4


def _sweep(seed, checkpoints=C):
    rng = np.random.default_rng(seed)
    shape = (checkpoints, S, 2**N)
    sparse = lambda: rng.normal(size=shape) * (rng.random(shape) < 0.3)  # noqa: E731
    return SimpleNamespace(epochs=np.arange(checkpoints) * 2, v=rng.normal(size=shape), I_and=sparse(), I_or=sparse(),
                           settings={})


def _history(seed):
    rng = np.random.default_rng(seed)
    e = np.arange(7)
    return {"epoch": e, "train_loss": 1 / (1 + e), "test_loss": 1 / (1 + e) + 0.05 * e + 0.01 * rng.random(7),
            "train_acc": np.linspace(0.5, 0.97, 7), "test_acc": np.linspace(0.4, 0.8, 7)}


@pytest.fixture(scope="module")
def runs():
    main, base = _sweep(0), _sweep(1, checkpoints=1)
    noise = {0.0: (_sweep(2, 1), _history(2)), 0.3: (_sweep(3, 1), _history(3))}
    return main, base, noise, study.analyze(main, history=_history(0), baseline=base, noise=noise)


def test_analysis_equals_the_per_checkpoint_statistics(runs):
    main, base, noise, a = runs
    tau = [float(statistics.tau_output(main.v[c], 0.03)) for c in range(C)]
    np.testing.assert_allclose(a.tau, tau, rtol=1e-14)
    dist = np.stack([statistics.order_distribution(main.I_and[c], main.I_or[c], tau[c]) for c in range(C)])
    np.testing.assert_allclose(a.order_distribution, dist, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a.mean_order, dynamics.mean_order(dist), rtol=1e-12)
    for c in range(C):
        pos, neg = (np.asarray(x).mean(0) for x in statistics.signed_order_strength(main.I_and[c], main.I_or[c], tau[c]))
        np.testing.assert_allclose(a.signed_pos[c], pos, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(a.signed_neg[c], neg, rtol=1e-12, atol=1e-14)
        tpl = theory.pipeline_spindle(N, q_ratio=0.02, tau_frac=0.03)  # the sweeps' settings have no q_ratio: 0.02
        d = theory.disentangle(pos, neg, N, spindle=tpl.scaled(tau[c] / 0.03))
        np.testing.assert_allclose(a.parts[c].decay_pos, d.decay_pos, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(a.parts[c].spindle_pos, d.spindle_pos, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(a.sparsity[c], statistics.sparsity_curve(main.I_and[c], main.I_or[c]), rtol=1e-12)
        tau_b = float(statistics.tau_output(base.v[0]))
        g = generalization.generalization_power((main.I_and[c], main.I_or[c]), (base.I_and[0], base.I_or[0]), tau[c], tau_b)
        np.testing.assert_allclose([a.n_bar[c], a.h_bar[c], a.h_bar_weighted[c]],
                                   [g.n_bar, g.h_bar, g.h_bar_weighted], rtol=1e-12)
    assert a.phase_two_start == dynamics.phase_two_start(a.epochs, a.mean_order)
    h = _history(0)
    assert a.gap_widening_epoch == dynamics.gap_widening_epoch(h["epoch"], h["train_loss"], h["test_loss"])
    assert [p.label_noise for p in a.noise] == [0.0, 0.3]
    assert a.noise[1].train_accuracy == pytest.approx(0.97) and a.noise[1].fits_its_labels


def test_ground_truth_keeps_the_bias_and_the_salient_terms():
    i_and = np.array([[2.0, 0.1, -3.0, 0.5]])
    i_or = np.array([[0.0, -0.05, 1.0, 0.0]])
    w_and, w_or = study.ground_truth(i_and, i_or, 0.4)
    np.testing.assert_array_equal(w_and, [[2.0, 0.0, -3.0, 0.5]])
    np.testing.assert_array_equal(w_or, [[0.0, 0.0, 1.0, 0.0]])
    assert study.ground_truth(i_and, None, 0.4)[1] is None


def test_analysis_is_frozen_and_its_json_is_strict(runs):
    a = runs[3]
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.n = 3
    js = a.to_json()
    json.dumps(js, allow_nan=False)
    assert len(js["label_noise_study"]) == 2 and set(js["label_noise_study"][0]) >= {
        "label_noise", "train_accuracy", "test_accuracy", "decay", "spindle", "residual"}
    assert js["epochs"] == [0, 2, 4] and len(js["decay_spindle"]) == C


def test_without_baseline_or_noise_those_parts_are_absent():
    a = study.analyze(_sweep(4))
    assert a.n_bar is None and a.noise == () and a.gap_widening_epoch is None
    assert "generalization" not in a.to_json()


def test_bad_sweeps_are_refused():
    bad = _sweep(5)
    bad.I_or = bad.I_or[..., :16]
    with pytest.raises(ValueError, match="interactions"):
        study.analyze(bad)
    with pytest.raises(ValueError, match="baseline must hold the same samples"):
        study.analyze(_sweep(6), baseline=SimpleNamespace(**{k: v[:, :2] for k, v in vars(_sweep(7, 1)).items()
                                                             if k not in ("epochs", "settings")}))


def test_spindle_template_choice(runs):
    main, _, noise, a = runs
    js = a.to_json()
    assert a.spindle == "pipeline" and js["spindle_template"]["name"] == "pipeline"
    assert "pipeline_spindle" in js["spindle_template"]["definition"]
    assert all(p.fit.params["spindle"] == "pipeline" for p in a.noise)
    assert all(r["rel_sigma"] is not None for r in js["noise_levels"])
    old = study.analyze(main, noise=noise, spindle="mobius")
    assert old.to_json()["spindle_template"]["name"] == "mobius"
    tau = float(statistics.tau_output(main.v[0], 0.03))
    pos, neg = (np.asarray(x).mean(0) for x in statistics.signed_order_strength(main.I_and[0], main.I_or[0], tau))
    assert old.parts[0].params == theory.disentangle(pos, neg, N).params
    with pytest.raises(ValueError, match="spindle must be 'pipeline' or 'mobius', got 'white'"):
        study.analyze(main, spindle="white")


def test_label_noise_and_generalization_studies_are_those_of_analyze(runs):
    main, base, noise, a = runs
    levels = study.label_noise_study(noise)
    assert len(levels) == len(a.noise) == 2
    for got, want in zip(levels, a.noise):
        assert got[:3] == want[:3] and got.fit.params == want.fit.params and got.fit.residual == want.fit.residual
        for x, y in zip((got.a_pos, got.a_neg, *got.fit[:4]), (want.a_pos, want.a_neg, *want.fit[:4])):
            np.testing.assert_array_equal(x, y)
    assert study.label_noise_study({}) == ()
    assert study.label_noise_study(noise, spindle="mobius")[1].fit.params == \
        study.analyze(main, noise=noise, spindle="mobius").noise[1].fit.params
    with pytest.raises(ValueError, match="spindle must be 'pipeline' or 'mobius', got 'white'"):
        study.label_noise_study(noise, spindle="white")
    gp = study.generalization_study(main, base)
    assert set(gp) == {"n_bar", "h_bar", "h_bar_weighted"}
    for k, v in gp.items():
        np.testing.assert_array_equal(v, getattr(a, k))


def test_spindle_option_is_its_literal():
    import typing

    assert tuple(study.SPINDLE_TEMPLATES) == typing.get_args(study._SpindleName)


def test_noise_peak_orders_locate_the_extra_strength_and_the_spindle():
    n = 6
    z = np.zeros(n)

    def level(noise, pos, spindle_at):
        sp = np.zeros(n)
        if spindle_at:
            sp[spindle_at - 1] = 1.0
        fit = theory.DisentangleResult(z, z, sp, -sp, {}, 0.3, True)
        return study.NoiseLevelAnalysis(noise, 1.0, 0.9, np.asarray(pos, float), -0.5 * np.asarray(pos, float), fit)

    clean = level(0.0, [4, 3, 2, 1, 0, 0], None)
    noisy = level(0.3, [4, 3, 2, 5, 2, 0], 6)  # the noise adds most at order 4; the spindle sits at 6
    peaks = study.noise_peak_orders([clean, noisy])
    assert peaks == [{"extra_peak_order": None, "spindle_peak_order": None},
                     {"extra_peak_order": 4, "spindle_peak_order": 6}]
    # without a clean model there is nothing to compare with
    assert study.noise_peak_orders([noisy]) == [{"extra_peak_order": None, "spindle_peak_order": 6}]


def test_uncertified_splits_are_flagged():
    """A sweep whose AND-OR splits are not all certified: analyze says how many per checkpoint (in
    the analysis and its JSON) and warns; a sweep that does not say keeps None, one fully certified 0s."""
    sweep = _sweep(5)
    converged = np.ones((C, S), bool)
    converged[0, 1] = converged[2, :2] = False
    sweep.and_or = SimpleNamespace(converged=converged)
    with pytest.warns(UserWarning, match=r"3 of 12 AND-OR splits of the sweep are NOT certified \(per checkpoint: \[1, 0, 2\]\)"):
        a = study.analyze(sweep, spindle="mobius")
    assert a.uncertified.tolist() == [1, 0, 2] and a.to_json()["and_or_uncertified"] == [1, 0, 2]
    sweep.and_or = SimpleNamespace(converged=np.ones((C, S), bool))
    assert study.analyze(sweep, spindle="mobius").uncertified.tolist() == [0, 0, 0]
    assert study.analyze(_sweep(5), spindle="mobius").to_json()["and_or_uncertified"] is None


def test_analyze_names_bad_arguments():
    for kwargs, error, message in [
        (dict(top_k=-1), ValueError, "top_k"), (dict(top_k=2.5), ValueError, "top_k"),
        (dict(baseline=np.zeros(3)), TypeError, "baseline must be a sweep result"),
        (dict(history={"epoch": [0, 1]}), ValueError, "history needs"),
        (dict(noise=[0.1]), TypeError, "noise must be a mapping"),
        (dict(noise={0.1: _sweep(8)}), TypeError, r"noise\[0.1\] must be a pair"),
        (dict(noise={"a": (_sweep(8), {})}), ValueError, "noise levels must be a finite number"),
        (dict(noise={1.5: (_sweep(8), {})}), ValueError, r"noise levels must be a finite number in \[0, 1\]"),
        (dict(noise={0.1: (np.zeros(3), {})}), TypeError, r"noise\[0.1\]\[0\] must be a sweep result"),
        (dict(noise={0.1: (_sweep(8), {"train_acc": []})}), ValueError, r"noise\[0.1\]\[1\] must be a training history"),
    ]:
        with pytest.raises(error, match=message):
            study.analyze(_sweep(8), spindle="mobius", **kwargs)
    with pytest.raises(TypeError, match="sweep must be a sweep result"):
        study.analyze(np.zeros((3, 4, 32)))


def test_noise_sweeps_over_other_players_are_named():
    from types import SimpleNamespace

    def sweep(size):
        z = np.zeros((1, 2, size))
        return SimpleNamespace(epochs=[0], v=z, I_and=z, I_or=z)

    hist = {"train_acc": [1.0], "test_acc": [1.0]}
    with pytest.raises(ValueError, match=r"noise\[0.1\]\[0\] has interactions over 32 subsets, the sweep over 16"):
        study.analyze(sweep(16), noise={0.1: (sweep(32), hist)})
