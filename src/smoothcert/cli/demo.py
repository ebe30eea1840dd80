"""``smoothcert demo``: the whole pipeline in a few minutes on a laptop, with no download.

On scikit-learn's 8x8 digits (d = 64), for each noise family (uniform, Laplace, Gaussian, and
deterministic splitting noise, DSSN) and each sigma of a small grid: train a small MLP with noise
augmentation, certify every ``skip``-th test image in l1 and l2 (directly where the family has a
theorem for the norm, by the explicit lp conversion otherwise: recorded in each run record; DSSN
exactly, from its L = floor(2 sqrt(3) sigma 16) votes on the digits' grid of sixteenths, with no
n0, n or alpha), and summarize: per-family envelopes over sigma as Markdown and CSV tables, and a
figure. Rerunning reuses finished models and results.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from smoothcert.analysis import (
    CertificationResults,
    accuracy_curve,
    average_certified_radius,
    envelope,
    format_accuracy_table,
    read_results,
)
from smoothcert.norms import Norm

logger = logging.getLogger(__name__)

FAMILIES = ("uniform", "laplace", "gaussian", "dssn")
#: shape parameters per family: the digits are multiples of 1/16, DSSN's grid
NOISE_PARAMS: dict[str, dict[str, int]] = {"dssn": {"quantization": 16}}
NORMS = (Norm.L1, Norm.L2)
DATASET = "digits"
ARCH = "mlp"


@dataclass(frozen=True)
class DemoSettings:
    """The size of the demo. ``quick`` is a smoke-test setting that runs in seconds."""

    sigmas: tuple[float, ...] = (0.25, 0.5)
    epochs: int = 15
    n0: int = 64
    n: int = 2000
    alpha: float = 0.001
    skip: int = 3
    seed: int = 0
    #: radii of the tables: (start, stop, step) per norm, in pixel units (images in [0, 1])
    l1_radii: tuple[float, float, float] = (0.0, 1.0, 0.125)
    l2_radii: tuple[float, float, float] = (0.0, 0.75, 0.125)


QUICK = DemoSettings(sigmas=(0.5,), epochs=2, n0=16, n=200, skip=25)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="train, certify and summarize on built-in digits data (a few minutes)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default runs/demo, or runs/demo-quick with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny setting (one sigma, 2 epochs, 200 samples) for smoke tests")
    parser.add_argument("--device", default="cpu", help="device, e.g. cpu or cuda (default cpu)")
    parser.set_defaults(func=run)


def _label(noise: str, sigma: float) -> str:
    return f"{noise}-sigma{sigma:g}"


def _family_label(noise: str, norm: Norm) -> str:
    from smoothcert.noises import get_noise

    if get_noise(noise, dim=1, sigma=1.0, **NOISE_PARAMS.get(noise, {})).certifies(norm):
        return noise
    return f"{noise} (converted)"


def _radii(spec: tuple[float, float, float]) -> list[float]:
    start, stop, step = spec
    return [round(start + k * step, 12) for k in range(int(round((stop - start) / step)) + 1)]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_demo(out: Path, settings: DemoSettings, device: str = "cpu") -> dict[str, Path]:
    """Run the demo into ``out``; returns the summary files written (by name)."""
    import torch

    from smoothcert.certify.classifier import SmoothedClassifier
    from smoothcert.certify.dataset import certify_dataset, file_sha256
    from smoothcert.cli._progress import progress_bar
    from smoothcert.data import get_dataset
    from smoothcert.noises import get_noise
    from smoothcert.training import TrainConfig, train

    test_set = get_dataset(DATASET, split="test")
    jobs = [(noise, sigma) for noise in FAMILIES for sigma in settings.sigmas]
    results: dict[str, list[CertificationResults]] = {noise: [] for noise in FAMILIES}
    began = time.perf_counter()
    for number, (noise_name, sigma) in enumerate(jobs, start=1):
        label = _label(noise_name, sigma)
        step = f"[{number}/{len(jobs)}] {label}"
        checkpoint = out / "models" / f"{label}.pt"
        started = time.perf_counter()
        params = NOISE_PARAMS.get(noise_name, {})
        trained = train(TrainConfig(dataset=DATASET, arch=ARCH,
                                    noise={"name": noise_name, "sigma": sigma, **params},
                                    epochs=settings.epochs,
                                    seed=settings.seed, out=str(checkpoint), resume=True,
                                    device=device))
        last = trained.metrics[-1]
        _say(f"{step}: trained {settings.epochs} epochs in {time.perf_counter() - started:.1f} s, "
             f"test accuracy {last['test_accuracy']:.3f} clean, "
             f"{last['test_noisy_accuracy']:.3f} noisy")

        noise = get_noise(noise_name, dim=test_set.info.dim, sigma=sigma, **params)
        converted = [norm.value for norm in NORMS if not noise.certifies(norm)]
        smoothed = SmoothedClassifier(trained.model, noise, test_set.info.num_classes,
                                      batch_size=max(settings.n, 4000))
        tsv = out / "certify" / f"{label}.tsv"
        started = time.perf_counter()
        # a deterministic smoothing is computed exactly: no n0, n or alpha
        sampling = {} if noise.deterministic else {"n0": settings.n0, "n": settings.n,
                                                   "alpha": settings.alpha}
        summary = certify_dataset(
            smoothed, test_set, tsv, **sampling,
            norms=[n.value for n in NORMS], convert=True, skip=settings.skip,
            seed=settings.seed, device=torch.device(device),
            configuration={"checkpoint_sha256": file_sha256(checkpoint), "arch": ARCH,
                           "dataset": DATASET, "split": "test", "classes": None,
                           "converted_norms": converted},
            settings={"checkpoint": str(checkpoint)}, command=["smoothcert", "demo"],
            progress=progress_bar("certify"))
        _say(f"{step}: certified {summary.selected} test images in "
             f"{time.perf_counter() - started:.1f} s ({summary.resumed} reused)"
             + (f"; {', '.join(converted)} by lp conversion" if converted else ""))
        results[noise_name].append(read_results(tsv, label=label))

    written = _summarize(out, results, settings)
    _say(f"done in {time.perf_counter() - began:.0f} s; summary in {out}")
    return written


def _summarize(out: Path, results: dict[str, list[CertificationResults]],
               settings: DemoSettings) -> dict[str, Path]:
    from smoothcert.plots.certified import new_figure_row, plot_envelopes, save_figure

    written: dict[str, Path] = {}
    sections = [
        "# smoothcert demo: certified accuracy on digits (8x8, d = 64)\n",
        f"Each row is a noise family's envelope over training sigma {list(settings.sigmas)} "
        f"(the best run at each radius); `envelope` is the best of all. Certified accuracy in "
        f"%, rounded down; {settings.n} samples per image, alpha = {settings.alpha}, one test "
        f"image in {settings.skip}. Radii in a norm a family does not certify directly come from "
        f"the lp conversion (valid, loose) and are marked *converted*. DSSN's certificates are "
        f"exact (no alpha) for perturbations on the digits' grid of sixteenths, from "
        f"L = floor(2 sqrt(3) sigma 16) forward passes per image.\n",
    ]
    for norm in NORMS:
        radii = _radii(settings.l1_radii if norm is Norm.L1 else settings.l2_radii)
        names = {noise: _family_label(noise, norm) for noise in results}
        families = [envelope([accuracy_curve(r, radii, norm) for r in runs], label=names[noise])
                    for noise, runs in results.items()]
        csv_path = out / f"envelope_{norm.value}.csv"
        csv_path.write_text(format_accuracy_table(families, fmt="csv"), encoding="utf-8")
        written[f"csv_{norm.value}"] = csv_path
        sections.append(f"## {norm.value}\n")
        sections.append(format_accuracy_table(families, fmt="markdown"))
        runs = [r for group in results.values() for r in group]
        curves = [accuracy_curve(r, radii, norm) for r in runs]
        acr = [average_certified_radius(r, norm) for r in runs]
        sections.append(f"\nAll runs ({norm.value}, ACR = average certified radius):\n")
        sections.append(format_accuracy_table(curves, fmt="markdown", acr=acr,
                                              include_envelope=False))
        sections.append("")
    markdown = out / "summary.md"
    markdown.write_text("\n".join(sections), encoding="utf-8")
    written["markdown"] = markdown

    figure, axes = new_figure_row(len(NORMS), width=5.2, height=4.0)
    for ax, norm in zip(axes, NORMS, strict=True):
        groups = {_family_label(noise, norm): runs for noise, runs in results.items()}
        plot_envelopes(ax, groups, norm, title=f"digits, {norm.value} (envelope over sigma)")
    written["figure"] = save_figure(figure, out / "certified.png")
    return written


def run(args: argparse.Namespace) -> int:
    settings = QUICK if args.quick else DemoSettings()
    out = args.out if args.out is not None else Path("runs/demo-quick" if args.quick
                                                     else "runs/demo")
    written = run_demo(out, settings, device=args.device)
    sys.stdout.write(written["markdown"].read_text(encoding="utf-8"))
    print(f"\nfiles: {', '.join(str(p) for p in written.values())}")
    return 0
