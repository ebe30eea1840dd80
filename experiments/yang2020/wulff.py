"""The Wulff figure of [YDH+20]: certified radius against p_lower at equal sigma for every noise
family, in l1, l2 and linf, at d = 784 (MNIST) and d = 3072 (CIFAR-10); and the slopes dR/drho
at rho = 1/2 against the spec's closed forms.

    python experiments/yang2020/wulff.py [--out results/yang2020/wulff] [--sigma 1.0]

Writes into --out:
  wulff.png, wulff.pdf  two rows (d = 784, 3072) x three panels (l1, l2, linf); radius against
                        p_lower on a logit axis, log radius axis where a panel spans more than two
                        decades; a norm certified directly is drawn solid, one obtained by the
                        spec's lp conversion (valid, loose) dashed
  radii.csv             every plotted value: d, noise, norm, direct, p_lower, radius
  slopes.csv, slopes.md dR/drho at rho = 1/2 by finite differences of the library's radius,
                        with the spec's value (spec_slopes.py) and the relative difference

Every registered family is drawn except deterministic ones (they have no p_lower curve of this
kind); a family that fails is reported on stderr and left out. Radius tables are cached under
$SMOOTHCERT_CACHE_DIR; from an empty cache the whole script takes well under a minute.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

import smoothcert
from smoothcert.noises.base import noise_class
from smoothcert.plots.certified import noise_label, save_figure

sys.path.insert(0, str(Path(__file__).resolve().parent))
from spec_slopes import SOURCES, spec_slope  # noqa: E402

DIMS = (784, 3072)
NORMS = ("l1", "l2", "linf")
#: shape parameters where a family's default would duplicate another family (exp1 k=1 is
#: Laplace, exp2 k=2 and exp_p p=2 are the Gaussian); exp_p is drawn at two shapes
SHAPES: dict[str, list[dict[str, float]]] = {
    "exp1": [{"k": 2.0}],
    "exp2": [{"k": 1.0}],
    "exp_p": [{"p": 0.5}, {"p": 4.0}],
}
#: finite-difference steps: D(h) = R(1/2 + h) / h (R(1/2) = 0); the reported slope is the
#: Richardson extrapolation 2 D(h/2) - D(h) at h = H_REPORT, checked against h = H_CHECK
H_REPORT = 1e-5
H_CHECK = 1e-4
#: the radius axis is scaled to the values at p_lower >= Y_FROM; below it every radius falls
#: linearly to 0 at 1/2 with the slope of slopes.csv (the curves are drawn there too, clipped)
Y_FROM = 0.51


#: the three families of [YDH+20] Table 1 in fixed colours, the others in the rest of tab10
_FIXED = {"uniform": "black", "laplace": "C3", "gaussian": "C0"}
_COLORS = ["C1", "C2", "C4", "C5", "C6", "C7", "C8", "C9", "navy", "olive", "lime", "gold",
           "teal", "maroon"]


def _label(noise: smoothcert.Noise) -> str:
    """The legend entry, with a = d + 10 (the default of pow2 and pow_inf) written as such."""
    label = noise_label(noise)
    a = noise.shape_params.get("a")
    return label.replace(f"a={a:g}", "a=d+10") if a == noise.dim + 10 else label


def p_grid() -> np.ndarray:
    """p_lower from 1/2 to 1 - 1e-6, log-spaced towards both ends (1/2 itself included)."""
    near_half = 0.5 + np.logspace(-6, math.log10(0.2), 31)
    near_one = 1.0 - np.logspace(math.log10(0.3), -6, 31)
    return np.unique(np.concatenate([[0.5], near_half, near_one]))


def noises(dim: int, sigma: float) -> list[smoothcert.Noise]:
    out = []
    for name in smoothcert.list_noises():
        if getattr(noise_class(name), "deterministic", False):
            continue
        for shape in SHAPES.get(name, [{}]):
            try:
                out.append(smoothcert.get_noise(name, dim=dim, sigma=sigma, **shape))
            except (TypeError, ValueError) as err:
                print(f"skipped {name} {shape}: {err}", file=sys.stderr)
    return out


def radius(noise: smoothcert.Noise, p: np.ndarray, norm: str) -> np.ndarray:
    return noise.certified_radius(p, norm, convert=not noise.certifies(norm))


def slope(noise: smoothcert.Noise, norm: str, h: float) -> float:
    """Richardson-extrapolated forward difference of R at 1/2 with steps h and h/2."""
    r = radius(noise, np.array([0.5 + h, 0.5 + h / 2]), norm)
    return float(2 * r[1] / (h / 2) - r[0] / h)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results/yang2020/wulff")
    parser.add_argument("--sigma", type=float, default=1.0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    p = p_grid()

    figure = Figure(figsize=(17, 9.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(DIMS), len(NORMS))
    colors = {}
    rows, slopes = [], []
    for i, dim in enumerate(DIMS):
        family = noises(dim, args.sigma)
        for j, norm in enumerate(NORMS):
            ax = axes[i][j]
            plotted = []
            for noise in family:
                label = _label(noise)
                try:
                    r = radius(noise, p, norm)
                except (ValueError, NotImplementedError) as err:
                    print(f"skipped {label} {norm} d={dim}: {err}", file=sys.stderr)
                    continue
                direct = noise.certifies(norm)
                rows += [(dim, label, norm, int(direct), f"{q:.10g}", f"{v:.9g}")
                         for q, v in zip(p, r, strict=True)]
                if label not in colors:
                    free = [c for c in _COLORS if c not in colors.values()] or _COLORS
                    colors[label] = _FIXED.get(noise.name, free[0])
                color = colors[label]
                ax.plot(p[1:], r[1:], color=color, linestyle="-" if direct else "--",
                        linewidth=1.6 if direct else 1.0, label=label,
                        zorder=3 if noise.name in _FIXED else 2)
                plotted.append(r[p >= Y_FROM])
                if direct or (noise.name == "gaussian" and norm == "l1"):
                    ours = slope(noise, norm, H_REPORT)
                    check = slope(noise, norm, H_CHECK)
                    spec = spec_slope(noise.name, norm, dim, **noise.shape_params)
                    slopes.append({
                        "noise": label, "norm": norm, "d": dim, "direct": int(direct),
                        "ours": ours, "fd_change": abs(ours - check) / abs(ours),
                        "spec": spec[0] if spec else math.nan,
                        "source": SOURCES[spec[1]] if spec else "",
                        "rel_diff": (ours - spec[0]) / spec[0] if spec else math.nan,
                    })
            values = np.concatenate(plotted)
            values = values[values > 0]
            ax.set_xscale("logit")
            ax.set_xlim(0.5, 1 - 1e-6)
            if values.max() / values.min() > 100:
                ax.set_yscale("log")
                ax.set_ylim(values.min() / 1.5, values.max() * 1.5)
            ax.set_xlabel(r"$p_\mathrm{lower}$ (logit axis)")
            ax.set_ylabel(f"certified {norm} radius")
            ax.set_title(f"{norm}, d = {dim}, σ = {args.sigma:g}")
            ax.grid(True, which="both", alpha=0.25)
    handles = [Line2D([], [], color=c, linewidth=1.6) for c in colors.values()]
    figure.legend(handles, list(colors), loc="outside right center",
                  title="solid: direct norm\ndashed: lp conversion", fontsize="small")
    for suffix in (".png", ".pdf"):
        save_figure(figure, out / f"wulff{suffix}")

    with open(out / "radii.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["d", "noise", "norm", "direct", "p_lower", "radius"])
        writer.writerows(rows)
    keys = ["noise", "norm", "d", "direct", "ours", "fd_change", "spec", "rel_diff", "source"]
    with open(out / "slopes.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for s in slopes:
            writer.writerow({k: (f"{v:.9g}" if isinstance(v, float) else v) for k, v in s.items()})
    lines = ["| noise | norm | d | ours (FD) | SPEC | relative difference | SPEC source |",
             "|---|---|---:|---:|---:|---:|---|"]
    for s in sorted(slopes, key=lambda s: (NORMS.index(s["norm"]), s["noise"], s["d"])):
        spec = "—" if math.isnan(s["spec"]) else f"{s['spec']:.6g}"
        rel = "—" if math.isnan(s["rel_diff"]) else f"{s['rel_diff']:+.1e}"
        norm = s["norm"] + ("" if s["direct"] else " (conv.)")
        lines.append(f"| {s['noise']} | {norm} | {s['d']} | {s['ours']:.6g} | {spec} | {rel} "
                     f"| {s['source']} |")
    (out / "slopes.md").write_text("\n".join(lines) + "\n")
    worst = max(s["fd_change"] for s in slopes)
    print(f"wrote {out}: {len(rows)} radii, {len(slopes)} slopes; largest relative change of "
          f"the slope between h = {H_CHECK:g} and {H_REPORT:g}: {worst:.1e}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
