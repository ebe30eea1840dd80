"""Throughput of certification with 1 and with P processes (torch.distributed, gloo, CPU).

Each process uses one thread (``torch.set_num_threads(1)``), so P processes ask for P cores. The
same run (model, inputs, seed, n) is certified by one process into one file, and by P processes
(forked, joined to a process group on 127.0.0.1, each certifying its shard, then rank 0 merging),
timed from the start of the processes to the merged file, so process start-up, the process
group, the final barrier and the merge all count against the distributed run. The bench checks
that both files hold the same rows (apart from seconds) and prints

    speedup = T(1) / T(P),    scaling efficiency = speedup / P.

On a machine whose cores are shared with other work, the efficiency says as much about the
machine's load as about smoothcert; run it on an idle machine for figures worth quoting.
Run from the repository root:

    python bench/bench_distributed.py                          # lenet, 8 inputs, n = 2000
    python bench/bench_distributed.py --processes 4 --inputs 16 --n 10000
"""

from __future__ import annotations

import argparse
import csv
import os
import socket
import tempfile
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp

from smoothcert.certify.classifier import SmoothedClassifier
from smoothcert.certify.dataset import certify_dataset
from smoothcert.data import dataset_info
from smoothcert.models import get_model
from smoothcert.noises import get_noise
from smoothcert.runs.distributed import World, run_sharded

DATASETS = {"lenet": "mnist", "mnist_cnn": "mnist", "resnet20": "cifar10", "mlp": "digits"}


def build(args: argparse.Namespace) -> tuple[SmoothedClassifier, list[tuple[torch.Tensor, int]]]:
    info = dataset_info(DATASETS[args.model])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = get_model(args.model, dataset=DATASETS[args.model]).eval()
        inputs = [(torch.rand(*info.shape), 0) for _ in range(args.inputs)]
    noise = get_noise("gaussian", dim=info.dim, sigma=0.25)
    return SmoothedClassifier(model, noise, info.num_classes, batch_size=args.batch_size), inputs


def certify(args: argparse.Namespace, out: Path, world: World) -> None:
    torch.set_num_threads(1)
    smoothed, inputs = build(args)

    def work(path: Path, shard):
        return certify_dataset(smoothed, inputs, path, n0=args.n0, n=args.n, alpha=0.001,
                               seed=0, shard=shard, command=["bench"])

    run_sharded(work, out, world=world, device="cpu")


def worker(rank: int, size: int, port: int, args: argparse.Namespace, out: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(size), "LOCAL_RANK": str(rank)})
    certify(args, Path(out), World.from_env())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if k != "seconds"}
                for row in csv.DictReader(fh, delimiter="\t")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lenet", choices=sorted(DATASETS))
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--inputs", type=int, default=8)
    parser.add_argument("--n0", type=int, default=100)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(1)
    build(args)  # imports and data set descriptions, before any clock starts

    with tempfile.TemporaryDirectory() as tmp:
        one, many = Path(tmp) / "one.tsv", Path(tmp) / "many.tsv"
        began = time.perf_counter()
        certify(args, one, World())
        single = time.perf_counter() - began
        began = time.perf_counter()
        mp.start_processes(worker, args=(args.processes, free_port(), args, str(many)),
                           nprocs=args.processes, join=True, start_method="fork")
        parallel = time.perf_counter() - began
        same = rows(one) == rows(many)

    samples = args.inputs * (args.n0 + args.n)
    speedup = single / parallel
    print(f"{args.model}: {args.inputs} inputs x {args.n0} + {args.n} samples, batch "
          f"{args.batch_size}, 1 thread per process, {os.cpu_count()} CPUs")
    print(f"  1 process    {single:7.2f} s  {args.inputs / single:7.2f} inputs/s  "
          f"{samples / single:9.0f} samples/s")
    print(f"  {args.processes} processes  {parallel:7.2f} s  {args.inputs / parallel:7.2f} "
          f"inputs/s  {samples / parallel:9.0f} samples/s")
    print(f"  speedup {speedup:.2f}x, scaling efficiency {speedup / args.processes:.1%}; "
          f"merged rows equal the single-process rows: {same}")


if __name__ == "__main__":
    main()
