"""Sampler speed: each registered noise's ``sample_like`` against ``torch.randn`` of the same size.

Both are timed in the same process on a CIFAR-sized batch (256 x 3 x 32 x 32, float32 by
default), alternately, as the median of repeated calls; the ratio to randn is the number that
matters (goal: at most 3). Run from the repository root:

    python bench/bench_samplers.py [--batch 256] [--repeats 15] [--device cpu] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from smoothcert import get_noise, list_noises

GOAL = 3.0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def paired_times(fn, baseline, repeats: int, device: torch.device, clock=time.perf_counter
                 ) -> tuple[list[float], list[float]]:
    """Seconds of each call of ``fn`` and of ``baseline``, timed alternately so that a change in
    the machine's load affects both alike."""
    for f in (fn, baseline):  # warm-up (allocations, lazy initialization)
        f()
    _sync(device)
    times: dict[int, list[float]] = {0: [], 1: []}
    for _ in range(repeats):
        for i, f in enumerate((fn, baseline)):
            start = clock()
            f()
            _sync(device)
            times[i].append(clock() - start)
    return times[0], times[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--shape", type=int, nargs="+", default=[3, 32, 32],
                        help="shape of one example (default: CIFAR-10, 3 32 32)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--sigma", type=float, default=0.5)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: this thread's CPU time, robust to other processes on a busy "
                             "machine (only meaningful with --threads 1 on the CPU)")
    args = parser.parse_args(argv)
    if args.clock == "cpu" and (args.threads != 1 or args.device != "cpu"):
        parser.error("--clock cpu needs --threads 1 and --device cpu")
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    x = torch.zeros((args.batch, *args.shape), device=device, dtype=dtype)
    dim = x[0].numel()
    gen = torch.Generator(device=device).manual_seed(0)

    def randn():
        return torch.randn(x.shape, generator=gen, device=device, dtype=dtype)

    print(f"batch {tuple(x.shape)} {args.dtype} on {device}, {args.threads} thread(s), "
          f"median of {args.repeats} ({args.clock} clock), each timed alternately with "
          f"torch.randn")
    print("(the fastest-call ratio is less sensitive to other processes on a busy machine)")
    print(f"{'noise':<14}{'ms':>10}{'randn ms':>10}{'x randn':>10}{'fastest':>10}")
    slow = []
    for name in list_noises():
        noise = get_noise(name, dim=dim, sigma=args.sigma)
        times, base_times = paired_times(
            lambda noise=noise: noise.sample_like(x, generator=gen), randn, args.repeats, device,
            clock)
        seconds, base = statistics.median(times), statistics.median(base_times)
        ratio = seconds / base
        fastest = min(times) / min(base_times)
        flag = "" if ratio <= GOAL else "  above goal"
        print(f"{name:<14}{seconds * 1e3:>10.2f}{base * 1e3:>10.2f}{ratio:>10.2f}"
              f"{fastest:>10.2f}{flag}")
        if ratio > GOAL:
            slow.append(name)
    print(f"goal: <= {GOAL:g}x randn; above: {', '.join(slow) if slow else 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
