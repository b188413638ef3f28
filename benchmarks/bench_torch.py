"""Host-path overhead for PyTorch models: jinter vs the model called directly.

Each row times, in the same run (alternating repetitions, medians), the network called
directly on all ``2**n`` masked inputs prepared beforehand as one tensor (in the same
forward batches), and ``jinter.masked_outputs`` through :mod:`jinter.integrations`, which
builds the masked inputs itself (in the module's dtype), hands them to torch through
``jax.pure_callback`` and returns float64 values. Both give the same values (checked).
Target: ≤ 5% overhead. The machine is shared and its load is bursty, so besides the ratio of
the medians the median of the per-pair ratios is recorded (each pair runs back to back).

1. ``resnet``: ResNet-18 (torchvision's if it loads here, else the same architecture written
   in ``torch.nn``: basic blocks [2, 2, 2, 2], widths 64-512), random init, float32, on a
   32x32 RGB image with 10 patch players (8x8 patches), reward log-odds of class 3.
2. ``bert``: a BERT sequence classifier from a config (4 layers, hidden 256, 4 heads, random
   init, float32) on 16 tokens with 10 token players masked at the embedding layer by the
   [MASK] embedding (:func:`jinter.integrations.hf.mask_tokens_at_embeddings`).

Usage: ``python benchmarks/bench_torch.py [--quick]`` (``--quick``: n = 6, a smoke run).
Results: ``benchmarks/results/bench_torch.json``.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
from _common import compare_runs, save_results  # noqa: E402

import jinter  # noqa: E402


def resnet18_like(torch, num_classes: int = 10):
    """torchvision's ResNet-18 if it loads, else the same architecture in plain torch.nn."""
    try:
        import torchvision

        return torchvision.models.resnet18(weights=None, num_classes=num_classes), "torchvision resnet18"
    except Exception:  # noqa: BLE001 - e.g. a CUDA torchvision wheel beside a CPU torch
        pass
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
            self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
            self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            return torch.relu(self.b2(self.c2(torch.relu(self.b1(self.c1(x))))) + self.skip(x))

    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [Block(cin, width, stride), Block(width, width, 1)]
        cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)]
    return nn.Sequential(*layers), "ResNet-18 architecture in torch.nn (torchvision does not load here)"


def direct(torch, call, inputs, bs):
    """The model called directly on ready inputs, in forward batches of ``bs``."""
    with torch.inference_mode():
        return torch.cat([call(inputs[i:i + bs]) for i in range(0, len(inputs), bs)]).double().numpy()


def timings(ref, cand, reps: int) -> dict:
    """Medians of alternating runs, and the median of the per-pair ratios: each pair runs
    back to back, so it shares the machine's load of the moment (robust to bursty load)."""
    import statistics

    tr, tc = compare_runs(ref, cand, reps)
    t_ref, t_cand = statistics.median(tr), statistics.median(tc)
    return {"direct_s": t_ref, "jinter_s": t_cand, "overhead_pct": 100 * (t_cand / t_ref - 1),
            "overhead_paired_pct": 100 * (statistics.median(c / r for r, c in zip(tr, tc)) - 1),
            "direct_runs_s": tr, "jinter_runs_s": tc}


def log_odds_np(logits: np.ndarray, y: int) -> np.ndarray:
    others = np.delete(logits, y, axis=-1)
    m = others.max(-1)
    return logits[:, y] - (m + np.log(np.exp(others - m[:, None]).sum(-1)))


def bench_resnet(torch, n: int, bs: int, reps: int) -> dict:
    from jinter.integrations.torch import torch_model

    torch.manual_seed(0)
    net, what = resnet18_like(torch)
    net.eval()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 32, 32))
    cells = [1, 2, 4, 5, 6, 7, 8, 9, 10, 13][:n]
    players = jinter.PatchPlayers((3, 32, 32), (8, 8), cells=cells)
    keep = np.asarray(players.membership)  # (n, 3, 32, 32)
    masks = np.arange(2**n)
    present = ((masks[:, None] >> np.arange(n)) & 1).astype(bool)  # (M, n)
    inside = (present[:, :, None, None, None] & keep[None]).any(1) | players.background[None]
    ready = torch.from_numpy(np.where(inside, x, 0.0).astype(np.float32))
    model = torch_model(net, output_shape=(10,), batch_size=bs)

    ref = lambda: log_odds_np(direct(torch, net, ready, bs), 3)  # noqa: E731
    cand = lambda: jinter.masked_outputs(model, x, players, reward=jinter.log_odds(3))  # noqa: E731
    np.testing.assert_allclose(np.asarray(cand()), ref(), rtol=1e-5, atol=1e-5)
    return {"model": what, "n": n, "masks": 2**n, "batch_size": bs} | timings(ref, cand, reps)


def bench_bert(torch, n: int, bs: int, reps: int) -> dict:
    import transformers

    from jinter.integrations import hf

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(95)]
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=len(words), hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                                  intermediate_size=1024, max_position_embeddings=64, num_labels=2)
    net = transformers.BertForSequenceClassification(cfg).eval()
    ids = [2] + list(range(5, 19)) + [3]  # [CLS] 14 words [SEP]: 16 tokens
    positions = list(range(1, n + 1))
    game = hf.mask_tokens_at_embeddings(net, ids, positions=positions, mask_embedding=4, output_shape=(2,),
                                        batch_size=bs)
    masks = np.arange(2**n)
    present = ((masks[:, None] >> np.arange(n)) & 1).astype(bool)
    embeds = np.broadcast_to(game.x, (2**n,) + game.x.shape).copy()
    for i, p in enumerate(positions):
        embeds[~present[:, i], p] = game.baseline
    ready = torch.from_numpy(embeds.astype(np.float32))
    am = torch.ones((1, len(ids)), dtype=torch.long)
    call = lambda e: net(inputs_embeds=e, attention_mask=am.expand(e.shape[0], -1)).logits  # noqa: E731

    ref = lambda: log_odds_np(direct(torch, call, ready, bs), 1)  # noqa: E731
    cand = lambda: game.masked_outputs(reward=jinter.log_odds(1))  # noqa: E731
    np.testing.assert_allclose(np.asarray(cand()), ref(), rtol=1e-4, atol=1e-5)
    return {"model": "BertForSequenceClassification (4 layers, hidden 256), 16 tokens", "n": n, "masks": 2**n,
            "batch_size": bs} | timings(ref, cand, reps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args()
    import torch

    n = 6 if args.quick else 10
    reps = args.reps or (2 if args.quick else 15)
    load_before = os.getloadavg()
    rows = {"resnet": bench_resnet(torch, n, 128, reps)}
    try:
        import transformers  # noqa: F401

        import jinter.integrations.hf  # noqa: F401  (hides a torchvision that cannot load)

        rows["bert"] = bench_bert(torch, n, 128, reps)
    except ImportError as e:
        print(f"bert: skipped ({e})")
    print(f"{'row':8} {'masks':>6} {'direct s':>9} {'jinter s':>9} {'overhead':>9} {'paired':>8}")
    for k, r in rows.items():
        print(f"{k:8} {r['masks']:6d} {r['direct_s']:9.3f} {r['jinter_s']:9.3f} {r['overhead_pct']:8.1f}% "
              f"{r['overhead_paired_pct']:7.1f}%")
    save_results("bench_torch", {"rows": rows, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                                 "note": "medians of alternating runs (overhead_pct: ratio of the medians; overhead_paired_pct: "
                                         "median of the per-pair ratios); machine shared by 5 engineers on 2 cores "
                                         "(loaded)",
                                 "loadavg_1_5_15": {"before": load_before, "after": os.getloadavg()}},
                 quick=args.quick)


if __name__ == "__main__":
    main()
