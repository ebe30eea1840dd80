"""``smoothcert synthetic``: [PS23]'s synthetic experiment (random disks, exact grid smoothing).

Writes to ``--out``: ``synthetic.csv`` (beta,zeta,alpha,delta_minus_delta0: means over the
images), ``synthetic_per_image.csv``, ``run.json`` (settings, library version, disks per image),
``fig4_risk_difference.{png,pdf}`` and ``fig3_disk_examples.{png,pdf}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from smoothcert._values import parse_values
from smoothcert._version import __version__


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synthetic", help="Pal & Sulam's synthetic experiment: risk of noise-trained smoothing "
                          "on random disks (Fig. 3, Fig. 4)",
        description="Delta_{alpha,beta} - Delta_{0,beta} on random disk images, computed "
                    "exactly on the grid (Gaussian filter, zero outside, truncated at 4 sigma).")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--images", type=int, default=10, help="random images per zeta (default 10)")
    p.add_argument("--alphas", default="0:20", help="training noise levels in pixels "
                   "(default 0:20)")
    p.add_argument("--betas", default="8,11,14", help="smoothing noise levels in pixels "
                   "(default 8,11,14)")
    p.add_argument("--zetas", default="0,1,2,3", help="minimal extra gaps between disks in "
                   "pixels (default 0,1,2,3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the disk images (default 0)")
    p.add_argument("--side", type=int, default=100, help="grid side in pixels (default 100)")
    p.add_argument("--radius", type=int, default=10, help="disk radius in pixels (default 10)")
    p.add_argument("--candidates", type=int, default=10_000,
                   help="candidate centres per image (default 10000)")
    p.add_argument("--example-radius", type=int, default=5,
                   help="disk radius of the Fig. 3 examples (default 5)")
    p.add_argument("--example-zetas", default="0,10,20,30",
                   help="zetas of the Fig. 3 examples (default 0,10,20,30)")
    p.add_argument("--formats", default="png,pdf", help="figure formats (default png,pdf)")
    p.set_defaults(func=run)


def _integers(text: str, name: str) -> tuple[int, ...]:
    values = parse_values(text, name)
    if any(v != int(v) for v in values):
        raise ValueError(f"{name} must be integers, got {text!r}")
    return tuple(int(v) for v in values)


def _gap_summary(gaps, betas) -> dict:
    """Quartiles of the finite gaps and the fraction Smooth_beta can fill (None if no gap)."""
    import numpy as np

    finite = gaps.gaps[np.isfinite(gaps.gaps)]
    return {
        "disks": int(gaps.gaps.size),
        "gap_quartiles": (np.percentile(finite, [25, 50, 75]).round(3).tolist()
                          if finite.size else None),
        "fraction_fillable": {f"{b:g}": gaps.fraction_fillable(b) if finite.size else None
                              for b in betas},
    }


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from smoothcert.pal_sulam.population.closed_forms import slab_gap_fill_width
    from smoothcert.pal_sulam.population.synthetic import (
        SyntheticConfig,
        disk_gaps,
        run_synthetic,
        write_synthetic_csv,
    )
    from smoothcert.plots.population import disk_examples_figure, risk_difference_figure

    config = SyntheticConfig(
        alphas=tuple(parse_values(args.alphas, "--alphas")),
        betas=tuple(parse_values(args.betas, "--betas")),
        zetas=_integers(args.zetas, "--zetas"), images=args.images, side=args.side,
        radius=args.radius, candidates=args.candidates, seed=args.seed)
    example_zetas = _integers(args.example_zetas, "--example-zetas")
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    out = Path(args.out)
    start = time.perf_counter()
    result = run_synthetic(config)
    seconds = time.perf_counter() - start
    mean_csv, _ = write_synthetic_csv(result, out)
    gaps = disk_gaps(config)
    interference = {str(zeta): _gap_summary(g, config.betas) for zeta, g in gaps.items()}
    (out / "run.json").write_text(json.dumps({
        "smoothcert": __version__, "command": "synthetic", "config": config.to_dict(),
        "example_radius": args.example_radius, "example_zetas": list(example_zetas),
        "disks_per_image": {str(z): result.disks[k].tolist()
                            for k, z in enumerate(config.zetas)},
        "interference": {
            "definition": "gap of a disk = distance to the nearest other disk minus one pixel; "
                          "fillable = gap <= 2 Phi^-1(3/4) beta",
            **interference},
        "seconds": round(seconds, 3)}, indent=2) + "\n")
    figures = {
        "fig4_risk_difference": risk_difference_figure(result),
        "fig3_disk_examples": disk_examples_figure(
            example_zetas, radius=args.example_radius, side=config.side,
            candidates=config.candidates, seed=config.seed),
    }
    for stem, fig in figures.items():
        for fmt in formats:
            fig.savefig(out / f"{stem}.{fmt}", dpi=150)
    print(f"{mean_csv} ({seconds:.1f} s)")
    print("zeta  disk gap quartiles (pixels)  fraction of gaps <= 2 Phi^-1(3/4) beta")
    for zeta, summary in interference.items():
        fill = ", ".join(f"beta {b}: {'-' if f is None else f'{f:.2f}'}"
                         for b, f in summary["fraction_fillable"].items())
        print(f"{zeta:>4}  {summary['gap_quartiles']}  {fill}  (widest: "
              f"{', '.join(f'{slab_gap_fill_width(b):.2f}' for b in config.betas)})")
    mean = result.mean_differences()
    alphas = np.asarray(config.alphas)
    print("beta  zeta  Delta(0,beta)  min diff (alpha)   diff at last alpha")
    for b, beta in enumerate(config.betas):
        for z, zeta in enumerate(config.zetas):
            curve = mean[b, z]
            k = int(np.argmin(curve))
            print(f"{beta:4g}  {zeta:4d}  {result.delta0[b, z].mean():13.4f}  "
                  f"{curve[k]:+9.4f} ({alphas[k]:g})   {curve[-1]:+.4f}")
    return 0
