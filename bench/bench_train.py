"""Training speed: smoothcert's epoch loop against a plain PyTorch loop on the same data.

Both loops train the same architecture, from the same initialization, with the same optimizer,
on the same in-memory images, adding Gaussian noise to every batch. The smoothcert time covers
its whole epoch loop (batching, noise sampling, forward, backward, step, the NaN check), not the
per-epoch evaluation or the checkpoint. Prints CPU seconds per batch (one thread, so CPU time
is the loop's own cost even on a machine shared with other work) and the ratio plain / ours
(goal >= 0.9: the library's conveniences must not slow training down).

    python bench/bench_train.py [--batches 8] [--repeats 3]

Needs MNIST and CIFAR-10 in $SMOOTHCERT_DATA_DIR (or --data-dir).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from smoothcert.data import get_dataset
from smoothcert.models import get_model
from smoothcert.training.loop import TrainConfig, train

SIGMA = 0.25
CASES = (("mnist", "mnist_cnn"), ("cifar10", "resnet20"))


def time_ours(dataset: str, arch: str, batches: int, data_dir: str, folder: Path,
              tag: str) -> float:
    """Seconds of smoothcert's training loop over ``batches`` batches (one epoch)."""
    span: dict[str, float] = {}

    def progress(iterable, total, description):
        span["start"] = time.process_time()
        yield from iterable
        span["end"] = time.process_time()

    config = TrainConfig(dataset=dataset, arch=arch, noise={"name": "gaussian", "sigma": SIGMA},
                         epochs=1,
                         max_train=64 * batches, max_eval=64, augment=False,
                         data_dir=data_dir, out=str(folder / f"{tag}.pt"))
    train(config, progress=progress)
    return span["end"] - span["start"]


def time_plain(dataset: str, arch: str, batches: int, data_dir: str) -> float:
    """Seconds of a textbook PyTorch loop over the same number of batches."""
    data = get_dataset(dataset, "train", root=data_dir)
    config = TrainConfig(dataset=dataset, arch=arch).resolved()
    images, labels = data.get_batch(torch.arange(64 * batches))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = get_model(arch, dataset=dataset)
    optimizer = (torch.optim.Adadelta(model.parameters(), lr=config.lr)
                 if config.optimizer == "adadelta" else
                 torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                 nesterov=config.nesterov, weight_decay=config.weight_decay))
    model.train()
    start = time.process_time()
    order = torch.randperm(len(images))
    for chunk in order.split(64):
        x, y = images[chunk], labels[chunk]
        x = x + SIGMA * torch.randn_like(x)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=8, help="batches of 64 per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each loop (best kept)")
    parser.add_argument("--data-dir", default=os.environ.get("SMOOTHCERT_DATA_DIR"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        for dataset, arch in CASES:
            ours, plain = [], []
            for repeat in range(args.repeats):  # interleaved, so load changes hit both
                ours.append(time_ours(dataset, arch, args.batches, args.data_dir, Path(tmp),
                                      f"{arch}{repeat}"))
                plain.append(time_plain(dataset, arch, args.batches, args.data_dir))
            best_ours, best_plain = min(ours), min(plain)
            print(f"{arch:10s} on {dataset:8s}: smoothcert {best_ours / args.batches:.4f} s/batch,"
                  f" plain PyTorch {best_plain / args.batches:.4f} s/batch, ratio plain/ours "
                  f"{best_plain / best_ours:.3f}")


if __name__ == "__main__":
    main()
