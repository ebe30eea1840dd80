"""Throughput of certification: smoothcert's CERTIFY against [CRK19]'s loop and a bare forward
pass, in one process, on the same model, batch size and n.

- ``crk19``: a minimal reimplementation of Cohen et al.'s ``Smooth.certify``: per input and
  batch, ``x.repeat``, ``randn_like * sigma``, forward, ``argmax``, ``.cpu().numpy()``, counted
  with a Python loop; the model in its default (NCHW) memory format.
- ``ours``: ``SmoothedClassifier.certify_batch`` with default numerics.
- ``ours-cl``: the same with ``channels_last=True``, at the same batch size and at a smaller one
  (``--cpu-batch-size``), which is faster on a CPU with glibc's default allocator settings
  (see README.md).
- ``forward``: the model alone (channels-last) on the same number of samples in the same batch
  shapes, on a fixed input: the floor for any certification loop.

``NAME@B`` is method NAME with batch size B.

Every method certifies the same inputs with n0 + n samples each (``ours`` several inputs per
batch when n < batch size, ``crk19`` one at a time); the methods take turns, ``--repeats`` times,
so a change in machine load hits all of them alike. Rates are given by wall time and by the
process's CPU time (steadier on a shared machine, best with ``--threads 1``). For the
certification loops the share of their wall time spent inside the model's forward is printed
too: measured in the same time window as the whole, it shows the loop's own overhead even on a
busy machine. Run from the repository
root:

    python bench/bench_certify.py                      # resnet20 and mnist_cnn, n = 10,000
    python bench/bench_certify.py --models mnist_cnn --n 100 --inputs 50   # small n
    python bench/bench_certify.py --sweep                 # forward by batch size and format
    python bench/bench_certify.py --cli                   # the CLI's defaults vs tuned settings

``--cli`` measures what ``smoothcert certify`` does without tuning flags: ``old@1000`` is the
previous default (batch 1000, glibc's allocator as it starts); then the CLI's startup setting is
applied (``smoothcert.cli._allocator.keep_freed_memory``: glibc keeps freed memory, as the
``MALLOC_*_THRESHOLD_`` variables of README.md do) and ``cli@B`` (B: the CLI's default batch for
the CPU) takes turns with the tuned batches ``tuned@B`` (the same numerics, NCHW).
"""

from __future__ import annotations

import argparse
import copy
import math
import time

import numpy as np
import torch
from scipy.stats import beta

from smoothcert.certify.classifier import SmoothedClassifier
from smoothcert.data import dataset_info
from smoothcert.models import get_model
from smoothcert.noises import get_noise

DATASETS = {"resnet20": "cifar10", "mnist_cnn": "mnist", "lenet": "mnist", "wrn40_2": "cifar10"}


def crk19_certify(model, x, n0, n, alpha, sigma, batch_size, num_classes):
    """Cohen et al.'s certify loop (``core.py`` of their repository), on the CPU."""

    def count_arr(arr, length):
        counts = np.zeros(length, dtype=int)
        for idx in arr:
            counts[idx] += 1
        return counts

    def sample_noise(num):
        with torch.no_grad():
            counts = np.zeros(num_classes, dtype=int)
            for _ in range(math.ceil(num / batch_size)):
                this_batch_size = min(batch_size, num)
                num -= this_batch_size
                batch = x.repeat((this_batch_size, 1, 1, 1))
                noise = torch.randn_like(batch) * sigma
                predictions = model(batch + noise).argmax(1)
                counts += count_arr(predictions.cpu().numpy(), num_classes)
            return counts

    model.eval()
    c_hat = sample_noise(n0).argmax().item()
    n_a = sample_noise(n)[c_hat].item()
    p_lower = beta.ppf(alpha, n_a, n - n_a + 1) if n_a > 0 else 0.0
    return c_hat if p_lower >= 0.5 else -1


def batch_sizes(inputs: int, n0: int, n: int, batch_size: int) -> list[int]:
    """The forward batch sizes of ``SmoothedClassifier.certify_batch`` on ``inputs`` inputs:
    groups of max(1, batch_size // n) inputs share every batch equally."""
    k = max(1, batch_size // n)
    sizes = []
    for start in range(0, inputs, k):
        group = min(k, inputs - start)
        for num in (n0, n):
            per_input = max(1, batch_size // group)
            sizes += [group * min(per_input, num - done) for done in range(0, num, per_input)]
    return sizes


def bare_forward(model, x, sizes):
    """The model alone on the given batch sizes, on a fixed input in channels-last format."""
    batch = x.expand(max(sizes), *x.shape).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        for size in sizes:
            model(batch[:size]).argmax(1)


class Timed(torch.nn.Module):
    """The model, with the wall time spent inside its forward passes added up: the share of a
    certification's time outside the model is the loop's overhead, measured in the same time
    window as the whole, so it holds up under a varying machine load."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.seconds = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        began = time.perf_counter()
        out = self.model(x)
        self.seconds += time.perf_counter() - began
        return out


def bench_model(arch: str, args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    dataset = DATASETS[arch]
    base = get_model(arch, dataset=dataset).eval()
    info = dataset_info(dataset)
    num_classes = info.num_classes
    xs = torch.rand(args.inputs, *info.shape)
    noise = get_noise("gaussian", dim=xs[0].numel(), sigma=args.sigma)
    alpha = 0.001
    big, small = args.batch_size, args.cpu_batch_size
    crk19_model = Timed(copy.deepcopy(base))
    smoothed = {
        f"ours@{big}": SmoothedClassifier(Timed(copy.deepcopy(base)), noise, num_classes, big),
        f"ours-cl@{big}": SmoothedClassifier(Timed(copy.deepcopy(base)), noise, num_classes,
                                             big, channels_last=True),
        f"ours-cl@{small}": SmoothedClassifier(Timed(copy.deepcopy(base)), noise, num_classes,
                                               small, channels_last=True),
    }
    channels_last_model = smoothed[f"ours-cl@{big}"].base_classifier.model

    def crk19(n0, n):
        for x in xs:
            crk19_certify(crk19_model, x, n0, n, alpha, args.sigma, big, num_classes)

    def ours(classifier):
        def run(n0, n):
            classifier.certify_batch(xs, n0, n, alpha, generators=[
                torch.Generator().manual_seed(i) for i in range(args.inputs)])
        return run

    def forward(batch_size):
        def run(n0, n):
            bare_forward(channels_last_model, xs[0], batch_sizes(args.inputs, n0, n, batch_size))
        return run

    methods = {f"crk19@{big}": crk19, **{name: ours(c) for name, c in smoothed.items()},
               f"forward@{big}": forward(big), f"forward@{small}": forward(small)}
    timed = {f"crk19@{big}": crk19_model,
             **{name: c.base_classifier for name, c in smoothed.items()}}
    # warm up each path on a small problem (allocator, oneDNN primitive caches)
    for fn in methods.values():
        fn(10, min(args.n, big))
    for model in timed.values():
        model.seconds = 0.0
    # the methods take turns, so that a change of machine load hits all of them alike
    seconds = dict.fromkeys(methods, 0.0)
    cpu_seconds = dict.fromkeys(methods, 0.0)
    for _ in range(args.repeats):
        for name, fn in methods.items():
            began, cpu_began = time.perf_counter(), time.process_time()
            fn(args.n0, args.n)
            seconds[name] += time.perf_counter() - began
            cpu_seconds[name] += time.process_time() - cpu_began
    samples = args.repeats * args.inputs * (args.n0 + args.n)
    print(f"\n{arch} ({dataset}, {num_classes} classes)")
    for label, spent in (("wall", seconds), ("CPU", cpu_seconds)):
        rate = {name: samples / s for name, s in spent.items()}
        print(f"  samples per {label} second:")
        for name in methods:
            inside = (f"  {timed[name].seconds / seconds[name]:6.1%} of the wall time in the "
                      f"model" if name in timed and label == "wall" else "")
            print(f"    {name:16s} {rate[name]:8.1f}  ({spent[name]:6.1f} s){inside}")
        for a, b, note in [
            (f"ours@{big}", f"crk19@{big}", "the loop alone (same numerics)"),
            (f"ours-cl@{big}", f"crk19@{big}", "+ channels-last"),
            (f"ours-cl@{small}", f"crk19@{big}", "+ a smaller batch"),
            (f"ours-cl@{big}", f"forward@{big}", "overhead over the bare forward"),
            (f"ours-cl@{small}", f"forward@{small}", "overhead over the bare forward"),
        ]:
            print(f"    {a:>16s} / {b:<16s} = {rate[a] / rate[b]:5.2f}   {note}")


def bench_cli_defaults(arch: str, args: argparse.Namespace) -> None:
    """The CLI's default certification path against tuned settings, in one process."""
    from smoothcert.cli._allocator import default_batch_size, keep_freed_memory

    torch.manual_seed(0)
    dataset = DATASETS[arch]
    base = get_model(arch, dataset=dataset).eval()
    info = dataset_info(dataset)
    xs = torch.rand(args.inputs, *info.shape)
    noise = get_noise("gaussian", dim=xs[0].numel(), sigma=args.sigma)
    samples = args.repeats * args.inputs * (args.n0 + args.n)

    def certify(batch_size):
        classifier = SmoothedClassifier(copy.deepcopy(base), noise, info.num_classes,
                                        batch_size)

        def run(n0, n):
            classifier.certify_batch(xs, n0, n, 0.001, generators=[
                torch.Generator().manual_seed(i) for i in range(args.inputs)])
        return run

    def measure(methods):
        for fn in methods.values():  # warm up
            fn(10, min(args.n, 1000))
        cpu = dict.fromkeys(methods, 0.0)
        wall = dict.fromkeys(methods, 0.0)
        for _ in range(args.repeats):
            for name, fn in methods.items():
                began, cpu_began = time.perf_counter(), time.process_time()
                fn(args.n0, args.n)
                wall[name] += time.perf_counter() - began
                cpu[name] += time.process_time() - cpu_began
        return {name: (samples / cpu[name], samples / wall[name]) for name in methods}

    before = measure({"old@1000": certify(1000)})
    settings = keep_freed_memory()
    default = default_batch_size("cpu")
    tuned = sorted({100, 250, 1000} - {default})
    rates = {**before, **measure({f"cli@{default}": certify(default),
                                  **{f"tuned@{b}": certify(b) for b in tuned}})}
    print(f"\n{arch} ({dataset}): samples per CPU second (per wall second); allocator "
          f"{settings}")
    for name, (cpu_rate, wall_rate) in rates.items():
        print(f"    {name:12s} {cpu_rate:8.1f}  ({wall_rate:8.1f})")
    best = max((name for name in rates if name.startswith("tuned")), key=lambda k: rates[k][0])
    cli = f"cli@{default}"
    print(f"    {cli} / {best} = {rates[cli][0] / rates[best][0]:5.2f}   the CLI's default "
          f"against the best tuned batch (goal >= 0.95)")
    print(f"    {cli} / old@1000 = {rates[cli][0] / rates['old@1000'][0]:5.2f}   against the "
          f"previous default")


def sweep_batch_sizes(arch: str, samples: int = 2000) -> None:
    """Bare forward throughput (samples per CPU second) by batch size and memory format: on a
    CPU the largest batch is not always the fastest (cache, and the allocator's handling of
    large activation tensors)."""
    torch.manual_seed(0)
    info = dataset_info(DATASETS[arch])
    print(f"\n{arch}: forward samples per CPU second by batch size")
    for memory_format in (torch.contiguous_format, torch.channels_last):
        model = get_model(arch, dataset=DATASETS[arch]).eval().to(memory_format=memory_format)
        rates = []
        for batch_size in (50, 100, 250, 500, 1000, 2000):
            batch = torch.rand(batch_size, *info.shape).contiguous(memory_format=memory_format)
            steps = max(1, samples // batch_size)
            with torch.inference_mode():
                model(batch)
                began = time.process_time()
                for _ in range(steps):
                    model(batch).argmax(1)
                elapsed = time.process_time() - began
            rates.append(f"{batch_size}: {steps * batch_size / elapsed:.0f}")
        print(f"  {str(memory_format).removeprefix('torch.'):18s} " + "  ".join(rates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="resnet20,mnist_cnn",
                        help=f"comma-separated, from {', '.join(DATASETS)}")
    parser.add_argument("--n0", type=int, default=100)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=1000,
                        help="the batch of every method (default 1000, [CRK19]'s default)")
    parser.add_argument("--cpu-batch-size", type=int, default=250,
                        help="the smaller batch of ours-cl@ and forward@ (default 250)")
    parser.add_argument("--inputs", type=int, default=1,
                        help="inputs certified per call (several share a batch when n is small)")
    parser.add_argument("--repeats", type=int, default=1, help="calls per method, in turns")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sigma", type=float, default=0.25)
    parser.add_argument("--sweep", action="store_true",
                        help="instead: forward throughput by batch size and memory format")
    parser.add_argument("--cli", action="store_true",
                        help="instead: the CLI's default path against tuned batch sizes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.sweep:
        for arch in args.models.split(","):
            sweep_batch_sizes(arch)
        return
    if args.cli:
        for arch in args.models.split(","):
            bench_cli_defaults(arch, args)
        return
    print(f"torch {torch.__version__}, {args.threads} threads, n0={args.n0}, n={args.n}, "
          f"batch {args.batch_size}, {args.inputs} input(s) x {args.repeats} repeat(s)")
    for arch in args.models.split(","):
        bench_model(arch, args)


if __name__ == "__main__":
    main()
