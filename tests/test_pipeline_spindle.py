"""The spindle template of the pipeline that is used (theory.pipeline_spindle, issue #11 item 2).

The planted full-game test: a low-order truth seen through ``noisy_regression`` plus iid noise
σ_n on every ``v(x_S)``, measured as ``jinter demo`` measures it (``and_or`` with q_ratio 0.02,
τ = 0.03·E|v(N) − v(∅)|, ``A^(k),±`` averaged over the games), then ``disentangle`` with the
template of that pipeline: σ̂/σ_n within 25% over a decade of σ_n. The demo's own label-noise
models fit at σ/Δ̄ ≈ 0.015–0.025 with this template (n = 10), so the decade starts there.
"""

import numpy as np
import pytest

from jinter import statistics as S
from jinter import theory as T
from jinter.decomposition import and_or

N = 8
DEMO = dict(q_ratio=0.02, tau_frac=0.03)  # DemoSettings.q_ratio and the [D24] τ rule of the demo


def _measure(v, q_ratio=0.02, tau_frac=0.03):
    """``A^(k),±`` of ``(levels, games, 2**n)`` games as the demo measures them (τ over the games)."""
    r = and_or(v, q_ratio=q_ratio, tol=1e-4)
    tau = np.asarray(S.tau_output(v, tau_frac, sample_axis=1))[:, None]
    pos, neg = (np.asarray(a).mean(1) for a in S.signed_order_strength(r.I_and, r.I_or, tau))
    return pos, neg, np.asarray(S.tau_output(v, 1.0, sample_axis=1))


@pytest.mark.parametrize("terms, sigma2, rel", [
    (16, 1e-2, (0.015, 0.05, 0.15)),  # the template's family of truths (other draws): a decade from the demo's level
    (32, 1e-1, (0.03, 0.1, 0.2)),  # truths of another make (more terms, more regression noise)
])
def test_planted_full_games_sigma_recovered_over_a_decade(terms, sigma2, rel):
    tpl = T.pipeline_spindle(N, **DEMO)
    rng = np.random.default_rng(123)  # other truths and noise than the template's (seed 0)
    signal = T._low_order_signal(N, 20, rng, terms, 3, sigma2)
    delta = np.abs(signal[:, -1] - signal[:, 0]).mean()
    rel = np.asarray(rel)  # σ_n/Δ̄
    sigma_n = rel * delta
    v = signal[None] + sigma_n[:, None, None] * rng.normal(size=signal.shape)[None]
    pos, neg, dbar = _measure(v)
    for i, sn in enumerate(sigma_n):
        got = T.disentangle(pos[i], neg[i], N, spindle=tpl.scaled(dbar[i]))
        assert abs(got.params["sigma_pos"] / sn - 1) <= 0.25, (rel[i], got.params)
        assert got.params["spindle"] == "pipeline" and not got.params["sigma_at_grid_edge"]
        assert abs(got.params["rel_sigma_pos"] - sn / dbar[i]) <= 0.25 * sn / dbar[i]
        old = T.disentangle(pos[i], neg[i], N)  # the Möbius template of iid noise: far too low
        assert old.params["sigma_pos"] < 0.5 * sn
    np.testing.assert_allclose(got.decay_pos + got.spindle_pos, pos[-1], atol=0.15 * np.abs(pos[-1]).max())


def test_default_disentangle_unchanged():
    """Numbers of disentangle(a_pos, a_neg, n) before the template existed (main at e65b5cc)."""
    n, k = 8, np.arange(8)
    d = np.exp(-0.5 * k - 0.1 * k**2)
    sp = np.asarray(T.spindle_curve(n, 1.0)[0])
    ap = 1.5 * d + 0.02 * sp + 0.01 * np.cos(k)
    an = -(0.9 * d + 0.02 * sp) - 0.01 * np.sin(k)
    want = {
        (): (0.0029402877582840998, 1.510360813973, 0.899665825283, 0.01996587941),
        (("decay_family", "geometric"),): (0.010790496356312781, 1.515153198134, 0.921454265781, 0.019363024218),
    }
    for kw, (res, cp, cn, sig) in want.items():
        got = T.disentangle(ap, an, n, **dict(kw))
        same = T.disentangle(ap, an, n, spindle=None, **dict(kw))
        assert got.residual == same.residual and got.params == same.params
        np.testing.assert_allclose([got.residual, got.params["decay_weight_pos"], got.params["decay_weight_neg"],
                                    got.params["sigma_pos"]], [res, cp, cn, sig], rtol=1e-9)
        assert "spindle" not in got.params
        np.testing.assert_allclose(got.spindle_pos, sig * sp, rtol=1e-9)


def test_template_cache_linearity_and_curve():
    kw = dict(samples=4, rel_sigma=(0.05, 0.2), **DEMO)
    t = T.pipeline_spindle(4, **kw)
    assert T.pipeline_spindle(4, **kw) is t  # cache hit: the identical object
    assert T.pipeline_spindle(4, **{**kw, "rel_sigma": [0.05, 0.2]}) is t  # a list is the same setting
    assert T.pipeline_spindle(4, **{**kw, "seed": 1}) is not t
    assert dict(t.setting)["q_ratio"] == 0.02 and t.pos.shape == (2, 4) and not t.pos.flags.writeable
    s = t.scaled(3.0)
    np.testing.assert_allclose(s.sigma, 3.0 * t.rel_sigma)
    p, m = s.curve([0.0, s.sigma[1]])
    np.testing.assert_allclose(p, [np.zeros(4), 3.0 * t.pos[1]])
    np.testing.assert_allclose(m[1], 3.0 * t.neg[1])
    mid = s.curve(0.5 * s.sigma[0])[0]  # linear from σ = 0
    np.testing.assert_allclose(mid, 1.5 * t.pos[0])
    # pure noise: no scale but the noise, so the template is linear in σ
    pure = T.pipeline_spindle(4, samples=4, rel_sigma=(0.05, 0.2), signal="none")
    np.testing.assert_allclose(pure.pos[1] / 0.2, pure.pos[0] / 0.05)
    assert np.all(pure.pos.sum(-1) > 0) and np.all(pure.neg.sum(-1) < 0)
    # a template fits its own curve back: σ recovered exactly, no decay needed beyond the data's
    ap, an = s.curve(0.7 * s.sigma[1])
    k = np.arange(4)
    dec = np.exp(-0.8 * k)
    got = T.disentangle(ap + 2 * dec, an - dec, 4, spindle=s, decay=dec)
    assert abs(got.params["sigma_pos"] - 0.7 * s.sigma[1]) <= 1e-4 * s.sigma[1]
    assert got.residual < 1e-6
    asym = T.disentangle(ap + 2 * dec, an - dec, 4, spindle=s, decay=dec, symmetric_spindle=False)
    assert abs(asym.params["sigma_neg"] - 0.7 * s.sigma[1]) <= 1e-3 * s.sigma[1]


def test_bad_arguments_name_the_argument():
    ok = dict(samples=4, rel_sigma=(0.05, 0.2))
    for kw, msg in [
        (dict(n=1), "n must be in"),
        (dict(signal="white"), "signal must be 'low-order' or 'none', got 'white'"),
        (dict(q_ratio=-0.1), "q_ratio must be"),
        (dict(tau_frac=float("nan")), "tau_frac must be"),
        (dict(rel_sigma=(0.2, 0.05)), "rel_sigma must be increasing"),
        (dict(rel_sigma=(0.0, 0.1)), "rel_sigma must be"),
        (dict(samples=1), "samples must be an integer >= 2"),
        (dict(terms=0), "terms must be"),
        (dict(tol=0.0), "tol must be"),
        (dict(regression_sigma2=-1.0), "regression_sigma2"),
    ]:
        args = {"n": 4, **ok, **kw}
        with pytest.raises(ValueError, match=msg):
            T.pipeline_spindle(args.pop("n"), **args)
    t = T.pipeline_spindle(4, **ok)
    with pytest.raises(ValueError, match="scale must be"):
        t.scaled(0.0)
    with pytest.raises(ValueError, match="sigma must be in"):
        t.curve(1.0)  # beyond the grid at scale 1 (ρ ≤ 0.2)
    a = np.ones(5)
    with pytest.raises(ValueError, match="spindle is a template for n=4 players, but n=5"):
        T.disentangle(a, -a, 5, spindle=t)
    with pytest.raises(ValueError, match="spindle must be a SpindleTemplate"):
        T.disentangle(a, -a, 5, spindle="pipeline")
