"""What ``smoothcert certify`` and ``smoothcert predict`` share: the flags naming the model, the
data, the noise and the run, their checks, and building the smoothed classifier and dataset.

``check_run_arguments`` runs every check that needs no model, data or file (``main`` calls the
command's ``validate`` before ``run``; ``smoothcert sweep`` calls it for every job), so a bad value
is refused before any file is created. ``prepare`` then loads the checkpoint and the data, still
before the results file is opened.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smoothcert.cli._catalog import dataset_names, noise_families
from smoothcert.cli._model_args import add_model_arguments, check_model_arguments
from smoothcert.cli._noise_args import add_noise_arguments, given_shape, noise_from_args
from smoothcert.cli._values import add_classes_argument

__all__ = ["add_run_arguments", "add_sample_arguments", "check_run_arguments",
           "check_sample_arguments", "prepare", "run_and_report", "Prepared", "AUTOCAST"]

#: lower-precision dtypes for ``--autocast`` (torch dtype names)
AUTOCAST = {"bf16": "bfloat16", "fp16": "float16"}
#: sample counts and level for random noise when not given
SAMPLE_DEFAULTS = {"n0": 100, "n": 100_000, "alpha": 0.001}


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    datasets = dataset_names()
    parser.add_argument("--dataset", default=None, choices=datasets, metavar="NAME",
                        help="dataset name (default: the checkpoint's); must match the "
                             f"checkpoint's dataset, input shape and classes: {', '.join(datasets)}")
    parser.add_argument("--split", default="test", choices=("train", "test"),
                        help="dataset split (default test)")
    parser.add_argument("--data-dir", default=None, type=Path,
                        help="data directory (default $SMOOTHCERT_DATA_DIR)")
    add_classes_argument(parser, "as the model was trained")
    add_noise_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="noisy samples per forward pass; inputs with few samples share a "
                             "batch (default 1000, or 250 on a CPU whose allocator is not glibc: "
                             "the fast setting of each, see bench/README.md)")
    parser.add_argument("--skip", type=int, default=1,
                        help="use every skip-th example: indices 0, skip, 2*skip, ... (default 1)")
    parser.add_argument("--max", type=int, default=-1, dest="max_examples",
                        help="at most this many examples (default -1: all)")
    parser.add_argument("--seed", type=int, default=0,
                        help="run seed (>= 0); input idx draws its noise from a generator seeded "
                             "by (seed, idx) (default 0)")
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
    fast.add_argument("--autocast", choices=sorted(AUTOCAST), default=None,
                      help="run the model under torch.autocast in this dtype")
    fast.add_argument("--channels-last", action="store_true",
                      help="run the model in the channels-last memory format")
    fast.add_argument("--compile", action="store_true", help="run the model via torch.compile")


def add_sample_arguments(parser: argparse.ArgumentParser, *, n0: bool) -> None:
    """``--n0`` (if ``n0``), ``--n`` and ``--alpha``: for random noise only (a deterministic
    noise enumerates its transformations and takes none of them)."""
    if n0:
        parser.add_argument("--n0", type=int, default=None,
                            help=f"samples to select the top class (default "
                                 f"{SAMPLE_DEFAULTS['n0']}; random noise only)")
    parser.add_argument("--n", type=int, default=None,
                        help=f"samples to estimate its probability (default "
                             f"{SAMPLE_DEFAULTS['n']}; random noise only)")
    parser.add_argument("--alpha", type=float, default=None,
                        help=f"failure probability per example (default "
                             f"{SAMPLE_DEFAULTS['alpha']}; random noise only)")


def _shard(text: str) -> Any:
    from smoothcert.runs.shards import Shard

    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _family_class(name: str) -> Any:
    import smoothcert.noises  # noqa: F401  (registers the package's families)
    from smoothcert.noises.base import noise_class

    return noise_class(name)


def check_run_arguments(args: argparse.Namespace) -> None:
    """The checks of the shared flags that need no model, data or file (ValueError)."""
    from smoothcert.validation import check_int

    check_model_arguments(args)
    if args.skip < 1:
        raise ValueError(f"--skip must be an integer >= 1, got {args.skip}")
    if args.max_examples == 0 or args.max_examples < -1:
        raise ValueError(f"--max must be -1 (all examples) or an integer >= 1, got "
                         f"{args.max_examples}")
    check_int("--seed", args.seed, minimum=0)
    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size must be an integer >= 1, got {args.batch_size}")
    if args.out.is_dir():
        raise ValueError(f"--out {str(args.out)!r} is a directory; give the results file, e.g. "
                         f"{str(args.out / 'certify.tsv')!r}")
    family = noise_families()[args.noise]
    fields = {field.name for field in family.fields}
    unknown = sorted(set(given_shape(args)) - fields)
    if unknown:
        raise ValueError(
            f"noise {args.noise!r} has no parameter(s) {', '.join(unknown)}; its shape "
            f"parameters are: {', '.join(sorted(fields)) or 'none'}")
    for size in ("sigma", "scale"):
        value = getattr(args, size)
        if value is not None and not value > 0:
            raise ValueError(f"--{size} must be a finite number > 0, got {value!r}")


def check_sample_arguments(args: argparse.Namespace) -> None:
    """Deterministic noise takes no --n0/--n/--alpha; random noise gets the defaults of those
    not given, checked (n0 <= n). Sets them on ``args``."""
    from smoothcert.stats import check_alpha, check_sample_count

    names = [name for name in ("n0", "n", "alpha") if hasattr(args, name)]
    if _family_class(args.noise).deterministic:
        given = [f"--{name}" for name in names if getattr(args, name) is not None]
        if given:
            raise ValueError(
                f"{args.noise} noise is deterministic: certification enumerates its "
                f"transformations and draws no samples, so {', '.join(given)} "
                f"{'does' if len(given) == 1 else 'do'} not apply; "
                f"leave them out")
        return
    for name in names:
        if getattr(args, name) is None:
            setattr(args, name, SAMPLE_DEFAULTS[name])
    for name in names:
        if name != "alpha":
            check_sample_count(f"--{name}", getattr(args, name))
    check_alpha(args.alpha)
    if "n0" in names and args.n0 > args.n:
        raise ValueError(f"--n0 {args.n0} is larger than --n {args.n}: n0 samples only select "
                         f"the top class and n estimate its probability; the usual protocol "
                         f"takes n0 = 100 and n = 100000")


def _device(name: str, world: Any) -> Any:
    import torch

    from smoothcert.runs.distributed import rank_device

    try:
        device = rank_device(name, world)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise ValueError(f"device {name!r} is not available here ({exc})") from None
    return device


def load_checkpoint_checked(path: Path, device: Any) -> Any:
    """``load_checkpoint`` with one-line errors: a folder, a missing file, a damaged file."""
    from smoothcert.models.checkpoint import load_checkpoint

    if path.is_dir():
        raise ValueError(f"--checkpoint {str(path)!r} is a directory; give a checkpoint file "
                         f"written by smoothcert train (e.g. {str(path / 'checkpoint.pt')!r})")
    if not path.exists():
        raise FileNotFoundError(f"--checkpoint {str(path)!r} does not exist")
    try:
        return load_checkpoint(path, map_location=device)
    except ValueError as exc:
        if exc.__cause__ is None or isinstance(exc.__cause__, ValueError):
            raise
        raise ValueError(
            f"--checkpoint {str(path)!r} cannot be read: it is damaged (e.g. truncated by an "
            f"interrupted copy) or not a checkpoint of this architecture "
            f"({type(exc.__cause__).__name__})") from exc


@dataclass
class Prepared:
    """The pieces of a run built from the command line."""

    smoothed: Any
    dataset: Any
    device: Any
    configuration: dict[str, Any]
    settings: dict[str, Any]
    progress: Any
    world: Any


def prepare(args: argparse.Namespace, task: str) -> Prepared:
    """Load the checkpoint and the dataset, check they match, and build the smoothed classifier
    (on this process's device, under torchrun). ``configuration`` identifies the model and data
    (a resumed run must match it); ``settings`` records what does not change results (the batch
    size, the allocator)."""
    import torch

    from smoothcert.certify.classifier import SmoothedClassifier
    from smoothcert.certify.dataset import check_dataset_matches, file_sha256
    from smoothcert.cli._allocator import allocator_settings, default_batch_size, keep_freed_memory
    from smoothcert.cli._progress import ProgressReporter
    from smoothcert.data import get_dataset
    from smoothcert.runs.distributed import World

    keep_freed_memory()
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
        checkpoint = load_checkpoint_checked(args.checkpoint, device)
        name = args.dataset or checkpoint.dataset
        dataset = get_dataset(name, **data)
        check_dataset_matches(checkpoint, dataset.info)
        model, num_classes = checkpoint.model, checkpoint.num_classes
        identity = {"checkpoint_sha256": file_sha256(args.checkpoint), "arch": checkpoint.arch}
        settings = {"checkpoint": str(args.checkpoint)}
    noise = noise_from_args(args, dim=dataset.info.dim, quantization=dataset.info.quantization)
    if not noise.additive and len(dataset) > 0:
        # a transformation that refuses the data (dssn: inputs off its grid) is refused here,
        # before the results file is opened, not at the first input
        noise.perturb(dataset[0][0].reshape(1, -1).to(device))
    batch_size = args.batch_size or default_batch_size(device.type)
    autocast = getattr(torch, AUTOCAST[args.autocast]) if args.autocast else None
    smoothed = SmoothedClassifier(
        model, noise, num_classes, batch_size=batch_size,
        autocast=autocast, channels_last=args.channels_last, compile=args.compile)
    configuration = {
        **identity, "dataset": name, "split": args.split,
        "classes": list(args.classes) if args.classes is not None else None,
    }
    settings.update(data_dir=str(args.data_dir) if args.data_dir is not None else None,
                    batch_size_default=args.batch_size is None,
                    allocator=allocator_settings())
    return Prepared(smoothed=smoothed, dataset=dataset, device=device,
                    configuration=configuration, settings=settings,
                    progress=ProgressReporter(task, "input", enabled=world.is_main),
                    world=world)


def run_and_report(verb: str, args: argparse.Namespace, prepared: Prepared,
                   work: Callable[[Path, Any], Any]) -> int:
    """Run ``work(path, shard)`` as this process's part of the run (one process, one shard of a
    job array, or one process of a torchrun world, whose rank 0 then merges) and report it."""
    from smoothcert.runs.distributed import run_sharded

    try:
        done = run_sharded(work, args.out, world=prepared.world, device=prepared.device,
                           shard=args.shard, command=["smoothcert", *sys.argv[1:]])
    finally:
        prepared.progress.close()
    summary = done.result
    part = f" of shard {done.shard}" if done.shard is not None else ""
    print(f"{verb} {summary.written} examples{part} ({summary.resumed} already done): "
          f"{summary.correct} correct, {summary.abstained} abstained -> {summary.path}")
    if done.merged is not None:
        print(f"merged {done.merged.rows} rows from {done.merged.shards} shards -> "
              f"{done.merged.path}")
    return 0
