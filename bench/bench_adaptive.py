"""Adaptive certification against fixed-n CERTIFY: forward passes and certified accuracy.

For each model (a checkpoint written by ``smoothcert train``), on every ``skip``-th test input:

1. **Pilot** (real forward passes): the class counts of ``--pilot`` noisy samples of the base
   classifier, through ``SmoothedClassifier.class_counts`` with generator ``(seed, idx)``.
2. **Population**: each input's class probabilities pi ~ Dirichlet(pilot counts + 1/2), drawn
   once (the Jeffreys posterior): a base classifier whose behaviour on each input is
   consistent with the pilot, without the artificial ties at p = 0 or 1 of raw frequencies.
3. **Both procedures, exactly in distribution for that classifier** (count-level simulation, in
   ``--replicates`` replicates): selection counts ~ Multinomial(n0, pi); fixed-n: N_A ~
   Binomial(n, pi_top) and p_lower = the Clopper-Pearson bound at alpha; adaptive: the very
   ``AdaptiveRule.run`` that ``certify_adaptive`` runs, with each stage's new successes ~
   Binomial(m, pi_top). Fixed n = 100,000 with real forward passes would take hours of CPU
   here; the simulation draws what those forward passes would count.
4. **Real check** (``--real-inputs``, real forward passes, ``--real-n`` samples at most):
   ``certify_adaptive`` on the first inputs, against the simulated expectation of their samples.

Printed and written to ``--out``: forward passes per input and their ratio, and certified
accuracy (prediction = label and radius >= r) at each radius for both procedures, with the
difference and its standard error over replicates. Run from the repository root:

    python bench/bench_adaptive.py --checkpoint runs/adaptive/mnist_cnn-gaussian0.5.pt \\
        --inputs 200 --pilot 200 --out results/adaptive/mnist_cnn
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from smoothcert.certify.adaptive import AdaptiveRule, certify_adaptive, parse_tolerance, stage_plan
from smoothcert.certify.classifier import SmoothedClassifier
from smoothcert.certify.dataset import input_generator, select_indices
from smoothcert.data import get_dataset
from smoothcert.models.checkpoint import load_checkpoint
from smoothcert.noises import get_noise
from smoothcert.norms import Norm
from smoothcert.stats import clopper_pearson_lower


def pilot_counts(smoothed, dataset, indices, num, extra, confident, seed):
    """Class counts of ``num`` noisy samples per input, plus ``extra`` more from the same
    stream for inputs whose top class has at least the fraction ``confident`` of them: the
    first ``num`` cannot tell p = 0.98 (near the threshold of the largest radii) from 0.999."""
    counts, labels = [], []
    for idx in indices:
        x, label = dataset[idx]
        gen = input_generator(seed, idx)
        row = smoothed.class_counts(x, num, generator=gen)
        if extra and row.max() >= confident * num:
            row = row + smoothed.class_counts(x, extra, generator=gen)
        counts.append(row)
        labels.append(int(label))
    return np.stack(counts), np.array(labels)


def simulate(pi, labels, rule, n0, n, alpha, radii, replicates, rng):
    """Certified accuracy at ``radii`` and estimation samples of fixed-n and adaptive CERTIFY,
    per replicate, for a base classifier with class probabilities ``pi`` (inputs x classes)."""
    count, norm = pi.shape[0], rule.norms[0]
    out = {"fixed_acc": [], "adaptive_acc": [], "adaptive_samples": []}
    for _ in range(replicates):
        selection = np.stack([rng.multinomial(n0, p) for p in pi])
        top = selection.argmax(axis=1)
        p_top = pi[np.arange(count), top]
        correct = top == labels

        fixed_p = np.asarray(clopper_pearson_lower(rng.binomial(n, p_top), n, alpha))
        outcome = rule.run(count, lambda active, m, p=p_top: rng.binomial(m, p[active]))
        for key, p_lower in (("fixed_acc", fixed_p), ("adaptive_acc", outcome.p_lower)):
            radius = rule.radius(p_lower)[norm]
            ok = correct & (p_lower > 0.5)
            out[key].append([float(np.mean(ok & (radius >= r))) for r in radii])
        out["adaptive_samples"].append(outcome.samples)
    return {k: np.array(v) for k, v in out.items()}


def report(name, sims, radii, n0, n):
    fixed, adaptive = sims["fixed_acc"], sims["adaptive_acc"]
    diff = adaptive - fixed
    per_input = sims["adaptive_samples"].mean() + n0
    ratio = (n0 + n) / per_input
    rows = []
    print(f"  {name}: forward passes per input {per_input:,.0f} (fixed: {n0 + n:,}); "
          f"{ratio:.1f}x fewer")
    print("    radius   fixed-n   adaptive   diff (points) +- s.e.")
    for j, r in enumerate(radii):
        se = diff[:, j].std(ddof=1) / math.sqrt(len(diff)) if len(diff) > 1 else float("nan")
        print(f"    {r:6.3f}   {100 * fixed[:, j].mean():6.2f}%   "
              f"{100 * adaptive[:, j].mean():6.2f}%   {100 * diff[:, j].mean():+6.2f} +- "
              f"{100 * se:.2f}")
        rows.append({"radius": r, "fixed": fixed[:, j].mean(), "adaptive": adaptive[:, j].mean(),
                     "diff": diff[:, j].mean(), "diff_se": se})
    return {"goal": name, "samples_per_input": per_input, "fixed_samples_per_input": n0 + n,
            "ratio": ratio, "accuracy": rows,
            "samples_quantiles": np.quantile(sims["adaptive_samples"] + n0,
                                             [0.5, 0.9, 0.99]).tolist()}


def plot(out, summaries, radii, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, summary in enumerate(summaries):
        acc = summary["accuracy"]
        if i == 0:
            ax1.plot(radii, [100 * a["fixed"] for a in acc], "k-o", label="fixed n")
        ax1.plot(radii, [100 * a["adaptive"] for a in acc], "--s",
                 label=f"adaptive, {summary['goal']} ({summary['ratio']:.0f}x fewer)")
        ax2.hist(np.log10(summary["_samples"].ravel()), bins=40, histtype="step",
                 label=summary["goal"])
    ax1.set_xlabel("l2 radius")
    ax1.set_ylabel("certified accuracy (%)")
    ax1.legend(fontsize=7)
    ax2.set_xlabel("log10 forward passes per input (n0 + estimation)")
    ax2.set_ylabel("inputs x replicates")
    ax2.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--sigma", type=float, default=None,
                        help="Gaussian smoothing sigma (default: the training noise's)")
    parser.add_argument("--inputs", type=int, default=200)
    parser.add_argument("--skip", type=int, default=1)
    parser.add_argument("--pilot", type=int, default=200)
    parser.add_argument("--pilot-extra", type=int, default=600,
                        help="more pilot samples for inputs whose top class has at least "
                             "--confident of the first --pilot")
    parser.add_argument("--confident", type=float, default=0.975)
    parser.add_argument("--priors", default="0.5,0.05",
                        help="Dirichlet concentrations a per class of the population "
                             "pi ~ Dirichlet(counts + a); the first is plotted")
    parser.add_argument("--n0", type=int, default=100)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--alpha", type=float, default=0.001)
    parser.add_argument("--radii", default="0.25,0.5,0.75,1.0")
    parser.add_argument("--tolerances", default="1%,10%")
    parser.add_argument("--first", type=int, default=100)
    parser.add_argument("--growth", type=float, default=2.0)
    parser.add_argument("--final-share", type=float, default=0.5)
    parser.add_argument("--futility", type=float, default=0.005)
    parser.add_argument("--replicates", type=int, default=20)
    parser.add_argument("--real-inputs", type=int, default=0)
    parser.add_argument("--real-n", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--pilot-cache", type=Path, default=None,
                        help="an .npz of pilot counts: read if it exists (same inputs and "
                             "pilot size), else written, so that reruns skip the pilot")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    ck = load_checkpoint(args.checkpoint)
    sigma = args.sigma if args.sigma is not None else ck.train_noise["sigma"]
    dataset = get_dataset(ck.dataset, "test", args.data_dir)
    dim = int(np.prod(ck.input_shape))
    noise = get_noise("gaussian", dim=dim, sigma=sigma)
    smoothed = SmoothedClassifier(ck.model, noise, ck.num_classes, batch_size=args.batch_size)
    radii = [float(r) for r in args.radii.split(",")]
    indices = select_indices(len(dataset), args.skip, args.inputs)
    title = (f"{ck.arch} on {ck.dataset} ({len(indices)} test inputs), gaussian sigma={sigma}, "
             f"n0={args.n0}, n={args.n:,}, alpha={args.alpha}")
    print(title)

    began = time.perf_counter()
    key = np.array([args.pilot, args.pilot_extra, args.confident, args.seed, sigma, *indices],
                   dtype=np.float64)
    cache = args.pilot_cache
    if cache is not None and cache.exists() and np.array_equal(np.load(cache)["key"], key):
        with np.load(cache) as stored:
            counts, labels = stored["counts"], stored["labels"]
        print(f"  pilot counts read from {cache}")
    else:
        counts, labels = pilot_counts(smoothed, dataset, indices, args.pilot, args.pilot_extra,
                                      args.confident, args.seed)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, key=key, counts=counts, labels=labels)
    pilot_seconds = time.perf_counter() - began
    print(f"  pilot: {int(counts.sum()):,} forward passes in {pilot_seconds:.0f} s "
          f"({np.mean(counts.sum(1) > args.pilot):.0%} of the inputs had --pilot-extra); top "
          f"class = label for {np.mean(counts.argmax(1) == labels):.1%}")
    plan = stage_plan(args.n, args.alpha, first=args.first, growth=args.growth,
                      final_share=args.final_share, futility=args.futility)
    goals = [("radii " + ",".join(f"{r:g}" for r in radii), {"radii": radii})]
    goals += [(f"tolerance {t}", {"tolerance": parse_tolerance(t)})
              for t in args.tolerances.split(",") if t]
    priors = [float(a) for a in args.priors.split(",")]
    by_prior = {}
    for prior in priors:
        pi = np.stack([np.random.default_rng([args.seed, i]).dirichlet(c + prior)
                       for i, c in enumerate(counts)])
        print(f"  population pi ~ Dirichlet(counts + {prior:g}): p(top class) quantiles "
              f"10/50/90% = {np.round(np.quantile(pi.max(1), [0.1, 0.5, 0.9]), 4).tolist()}")
        summaries = []
        for name, goal in goals:
            rule = AdaptiveRule(noise, [Norm.L2], plan, **goal)
            sims = simulate(pi, labels, rule, args.n0, args.n, args.alpha, radii,
                            args.replicates, np.random.default_rng(args.seed + 1))
            summary = report(name, sims, radii, args.n0, args.n)
            summary["_samples"] = sims["adaptive_samples"] + args.n0
            summaries.append(summary)
        by_prior[prior] = (pi, summaries)
    pi, summaries = by_prior[priors[0]]

    real = None
    if args.real_inputs:
        real_plan = stage_plan(args.real_n, args.alpha, first=args.first, growth=args.growth,
                               final_share=args.final_share, futility=args.futility)
        chosen = indices[:args.real_inputs]
        xs = torch.stack([dataset[i][0] for i in chosen])
        gens = [input_generator(args.seed + 1, i) for i in chosen]
        began = time.perf_counter()
        certs = certify_adaptive(smoothed, xs, args.n0, args.real_n, args.alpha, ["l2"],
                                 radii=radii, generators=gens, plan=real_plan)
        seconds = time.perf_counter() - began
        rule = AdaptiveRule(noise, [Norm.L2], real_plan, radii=radii)
        sims = simulate(pi[:len(chosen)], labels[:len(chosen)], rule, args.n0, args.real_n,
                        args.alpha, radii, 50, np.random.default_rng(args.seed + 2))
        real_samples = [c.samples for c in certs]
        expected = sims["adaptive_samples"].mean() + args.n0
        print(f"  real check, n = {args.real_n:,}, radii goal, {len(chosen)} inputs: "
              f"{np.mean(real_samples):,.0f} forward passes per input (simulated "
              f"expectation {expected:,.0f}) in {seconds:.0f} s")
        real = {"n": args.real_n, "inputs": len(chosen), "samples": real_samples,
                "simulated_mean": expected, "seconds": seconds,
                "certified_accuracy": [float(np.mean([c.prediction == labels[k]
                                                      and c.radius[Norm.L2] >= r
                                                      for k, c in enumerate(certs)]))
                                       for r in radii]}

    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        plot(args.out, summaries, radii, f"{title}\npopulation Dirichlet(counts + {priors[0]:g})")
        record = {"title": title, "checkpoint": str(args.checkpoint), "arch": ck.arch,
                  "dataset": ck.dataset, "sigma": sigma, "indices": len(indices),
                  "pilot": args.pilot, "pilot_seconds": pilot_seconds,
                  "plan": {"sizes": plan.sizes, "alphas": plan.alphas,
                           "futility": plan.futility},
                  # where the data, cache and output lie is no part of the result
                  "args": {k: str(v) for k, v in vars(args).items()
                           if k not in ("data_dir", "pilot_cache", "out")},
                  "pilot_forward_passes": int(counts.sum()),
                  "results": {f"{prior:g}": [{k: v for k, v in s.items() if not k.startswith("_")}
                                             for s in sums]
                              for prior, (_, sums) in by_prior.items()},
                  "real": real}
        args.out.with_suffix(".json").write_text(json.dumps(record, indent=1))
        print(f"  wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
