"""What ``smoothcert certify`` and ``smoothcert predict`` share: the flags naming the model, the
data, the noise and the run, and building the smoothed classifier and dataset from them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from smoothcert.certify.dataset import RunSummary
from smoothcert.cli._model_args import add_model_arguments, check_model_arguments
from smoothcert.cli._noise_args import add_noise_arguments, noise_from_args
from smoothcert.cli._progress import ProgressBar, progress_bar
from smoothcert.cli._values import add_classes_argument
from smoothcert.runs.distributed import World, rank_device, run_sharded
from smoothcert.runs.shards import Shard

#: lower-precision dtypes for ``--autocast``
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--dataset", default=None,
                        help="dataset name (default: the checkpoint's); must match the "
                             "checkpoint's dataset, input shape and classes")
    parser.add_argument("--split", default="test", choices=("train", "test"),
                        help="dataset split (default test)")
    parser.add_argument("--data-dir", default=None, type=Path,
                        help="data directory (default $SMOOTHCERT_DATA_DIR)")
    add_classes_argument(parser, "as the model was trained")
    add_noise_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=1000,
                        help="noisy samples per forward pass (default 1000); inputs with few "
                             "samples share a batch. On a CPU 100-250 is often faster (see "
                             "bench/README.md)")
    parser.add_argument("--skip", type=int, default=1,
                        help="use every skip-th example: indices 0, skip, 2*skip, ... (default 1)")
    parser.add_argument("--max", type=int, default=-1, dest="max_examples",
                        help="at most this many examples (default -1: all)")
    parser.add_argument("--seed", type=int, default=0,
                        help="run seed; input idx draws its noise from a generator seeded by "
                             "(seed, idx) (default 0)")
    parser.add_argument("--out", required=True, type=Path,
                        help="results file (TSV); its run record goes beside it as .json. An "
                             "existing file of the same configuration is resumed")
    parser.add_argument("--device", default="cpu",
                        help="device for the model and the noise, e.g. cpu, cuda, cuda:1 "
                             "(default cpu); under torchrun, cuda means one GPU per process")
    parser.add_argument("--shard", type=_shard, default=None, metavar="I/N",
                        help="only shard I of N (0 <= I < N) of the selected inputs, written to "
                             "OUT.shardI-of-N.tsv; join the shards with smoothcert merge. Under "
                             "torchrun every process takes its own shard and rank 0 merges")
    fast = parser.add_argument_group(
        "faster numerics (each changes the base classifier being certified)")
    fast.add_argument("--autocast", choices=sorted(AUTOCAST_DTYPES), default=None,
                      help="run the model under torch.autocast in this dtype")
    fast.add_argument("--channels-last", action="store_true",
                      help="run the model in the channels-last memory format")
    fast.add_argument("--compile", action="store_true", help="run the model via torch.compile")


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _device(name: str, world: World) -> torch.device:
    try:
        device = rank_device(name, world)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise ValueError(f"device {name!r} is not available here ({exc})") from None
    return device


@dataclass
class Prepared:
    """The pieces of a run built from the command line."""

    smoothed: Any
    dataset: Any
    device: torch.device
    configuration: dict[str, Any]
    settings: dict[str, Any]
    progress: ProgressBar | None
    world: World


def prepare(args: argparse.Namespace) -> Prepared:
    """Load the checkpoint and the dataset, check they match, and build the smoothed classifier
    (on this process's device, under torchrun). ``configuration`` identifies the model and data
    (a resumed run must match it)."""
    from smoothcert.certify.classifier import SmoothedClassifier
    from smoothcert.certify.dataset import check_dataset_matches, file_sha256
    from smoothcert.data import get_dataset
    from smoothcert.models.checkpoint import load_checkpoint

    check_model_arguments(args)
    world = World.from_env()
    device = _device(args.device, world)
    options = {} if args.classes is None else {"classes": args.classes}
    data = {"split": args.split, "root": args.data_dir, **options}
    if args.checkpoint is None:  # the user's own model
        from smoothcert.cli._model_args import load_model_from_args

        name = args.dataset
        dataset = get_dataset(name, **data)
        model, identity, settings = load_model_from_args(args, dataset.info, device)
        num_classes = dataset.info.num_classes
    else:
        checkpoint = load_checkpoint(args.checkpoint, map_location=device)
        name = args.dataset or checkpoint.dataset
        dataset = get_dataset(name, **data)
        check_dataset_matches(checkpoint, dataset.info)
        model, num_classes = checkpoint.model, checkpoint.num_classes
        identity = {"checkpoint_sha256": file_sha256(args.checkpoint), "arch": checkpoint.arch}
        settings = {"checkpoint": str(args.checkpoint)}
    noise = noise_from_args(args, dim=dataset.info.dim)
    smoothed = SmoothedClassifier(
        model, noise, num_classes, batch_size=args.batch_size,
        autocast=AUTOCAST_DTYPES.get(args.autocast), channels_last=args.channels_last,
        compile=args.compile)
    configuration = {
        **identity, "dataset": name, "split": args.split,
        "classes": list(args.classes) if args.classes is not None else None,
    }
    settings["data_dir"] = str(args.data_dir) if args.data_dir is not None else None
    return Prepared(smoothed=smoothed, dataset=dataset, device=device,
                    configuration=configuration, settings=settings,
                    progress=progress_bar(args.command, show=sys.stderr.isatty() and world.is_main),
                    world=world)


def run_and_report(verb: str, args: argparse.Namespace, prepared: Prepared,
                   work: Callable[[Path, Shard | None], RunSummary]) -> int:
    """Run ``work(path, shard)`` as this process's part of the run (one process, one shard of a
    job array, or one process of a torchrun world, whose rank 0 then merges) and report it."""
    done = run_sharded(work, args.out, world=prepared.world, device=prepared.device,
                       shard=args.shard, command=["smoothcert", *sys.argv[1:]])
    summary = done.result
    part = f" of shard {done.shard}" if done.shard is not None else ""
    print(f"{verb} {summary.written} examples{part} ({summary.resumed} already done): "
          f"{summary.correct} correct, {summary.abstained} abstained -> {summary.path}")
    if done.merged is not None:
        print(f"merged {done.merged.rows} rows from {done.merged.shards} shards -> "
              f"{done.merged.path}")
    return 0
