"""Deterministic splitting noise (DSSN) against uniform noise: forward passes and seconds per
input for the same l1 certification task, measured in one process.

The same inputs (MNIST test images from ``--data-dir``, else random images on the 8-bit grid)
and the same base classifier (``--arch``, random weights from ``--model-seed`` unless a
``--checkpoint`` is given) are certified in l1

- with DSSN at each ``--sigmas`` (q = 255: L = floor(2 sqrt(3) sigma 255) forward passes, exact);
- with uniform noise at ``--uniform-sigma``, fixed-n CERTIFY with n0 = ``--n0`` and n = ``--n``
  (default the papers' 100 and 100,000; a smaller n is printed as such);
- with uniform noise, adaptive CERTIFY up to the same n (``--tolerance``).

Printed: forward passes and seconds per input of each, and the ratios against fixed-n. Every
method runs on every input one input at a time, with the same ``--batch-size``; DSSN first
certifies one untimed input per sigma (its template and table of cell centres are built once
per noise). Run from the
repository root:

    python bench/bench_dssn.py --data-dir /path/to/data --inputs 3
"""

from __future__ import annotations

import argparse
import time

import torch

from smoothcert.certify.classifier import SmoothedClassifier
from smoothcert.certify.dataset import input_generator
from smoothcert.certify.deterministic import certify_deterministic
from smoothcert.models import get_model
from smoothcert.noises import get_noise


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="mlp", help="model architecture for MNIST (default mlp)")
    p.add_argument("--checkpoint", default=None, help="trained weights (default: random)")
    p.add_argument("--model-seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="folder holding mnist/ (default: random "
                   "grid images)")
    p.add_argument("--inputs", type=int, default=3)
    p.add_argument("--sigmas", default="0.25,0.5,1.0,3.5", help="DSSN sigmas")
    p.add_argument("--uniform-sigma", type=float, default=0.5)
    p.add_argument("--n0", type=int, default=100)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--alpha", type=float, default=0.001)
    p.add_argument("--tolerance", default="5%", help="adaptive goal (default 5%%)")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--dssn-repeats", type=int, default=10,
                   help="DSSN's pass over the inputs is timed this many times (it is short)")
    return p.parse_args()


def inputs(args: argparse.Namespace) -> torch.Tensor:
    if args.data_dir:
        from smoothcert.data import get_dataset

        test = get_dataset("mnist", split="test", root=args.data_dir)
        step = len(test) // args.inputs
        return torch.stack([test[i * step][0] for i in range(args.inputs)])
    gen = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (args.inputs, 1, 28, 28), generator=gen).float() / 255


def model(args: argparse.Namespace) -> torch.nn.Module:
    if args.checkpoint:
        from smoothcert.models.checkpoint import load_checkpoint

        return load_checkpoint(args.checkpoint).model.eval()
    torch.manual_seed(args.model_seed)
    return get_model(args.arch, dataset="mnist").eval()


def timed(run, xs: torch.Tensor, repeats: int = 1) -> tuple[float, float, list]:
    """(forward passes per input, seconds per input, certificates), one input at a time, the
    whole pass over the inputs ``repeats`` times (the time is the mean)."""
    began = time.perf_counter()
    for _ in range(repeats):
        certs = [run(xs[i:i + 1], i)[0] for i in range(xs.shape[0])]
    seconds = (time.perf_counter() - began) / (repeats * xs.shape[0])
    return sum(c.samples for c in certs) / len(certs), seconds, certs


def main() -> None:
    args = parse()
    xs, net = inputs(args), model(args)
    dim = xs[0].numel()
    rows = []

    uniform = SmoothedClassifier(net, get_noise("uniform", dim=dim, sigma=args.uniform_sigma),
                                 10, batch_size=args.batch_size)
    label = f"uniform fixed n0={args.n0} n={args.n:,}" + (" (scaled n)" if args.n < 100_000
                                                          else "")
    fixed = timed(lambda x, i: uniform.certify_batch(
        x, args.n0, args.n, args.alpha, ("l1",), generators=[input_generator(0, i)]), xs)
    rows.append((label, args.uniform_sigma, *fixed))
    adaptive = timed(lambda x, i: uniform.certify_batch(
        x, args.n0, args.n, args.alpha, ("l1",), generators=[input_generator(0, i)],
        mode="adaptive", tolerance=args.tolerance), xs)
    rows.append((f"uniform adaptive (tolerance {args.tolerance}, n <= {args.n:,})",
                 args.uniform_sigma, *adaptive))
    for sigma in (float(s) for s in args.sigmas.split(",")):
        noise = get_noise("dssn", dim=dim, sigma=sigma, quantization=255)
        smoothed = SmoothedClassifier(net, noise, 10, batch_size=args.batch_size)
        def run(x, i, s=smoothed):
            return certify_deterministic(s, x, ("l1",))

        run(xs[:1], 0)  # builds the noise's template and table of cell centres, once
        rows.append((f"dssn q=255 (L = {noise.num_transforms})", sigma,
                     *timed(run, xs, args.dssn_repeats)))

    base_passes, base_seconds = fixed[0], fixed[1]
    print(f"{xs.shape[0]} inputs, d = {dim}, {args.arch} "
          f"({'checkpoint' if args.checkpoint else 'random weights'}), batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'method':<48} {'sigma':>5} {'passes/input':>13} {'s/input':>9} "
          f"{'x fewer passes':>14} {'x faster':>9} {'mean l1 radius':>14}")
    for name, sigma, passes, seconds, certs in rows:
        radius = sum(c.radius[next(iter(c.radius))] for c in certs) / len(certs)
        print(f"{name:<48} {sigma:>5g} {passes:>13,.0f} {seconds:>9.3f} "
              f"{base_passes / passes:>14.1f} {base_seconds / seconds:>9.1f} {radius:>14.3f}")


if __name__ == "__main__":
    main()
