"""``smoothcert train``: train a base classifier with noise augmentation or stability training.

The noise flags choose the TRAINING noise; the smoothing noise is chosen later, at
certification. Leaving out ``--noise`` (or ``--sigma 0``) trains on clean inputs. Started by
``torchrun``, every process runs the command and the training is data-parallel (see
``smoothcert.training.loop.train``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from smoothcert.cli._catalog import (
    class_field_default,
    dataset_names,
    model_names,
    module_dict_keys,
)
from smoothcert.cli._noise_args import add_noise_arguments, given_shape, with_data_grid
from smoothcert.cli._values import add_classes_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    # names and defaults from the library's source: building the parser imports no torch
    stability_weight = class_field_default("training.config", "TrainConfig", "stability_weight")
    datasets, models = dataset_names(), model_names()
    parser = subparsers.add_parser(
        "train",
        help="train a base classifier with noise (augmentation or stability training)",
        description="Train a base classifier on noisy inputs. The noise flags give the "
                    "TRAINING noise (added in pixel space, not clipped); the smoothing noise is "
                    "chosen at certification and may differ. A checkpoint is written after "
                    "every epoch; --resume continues an interrupted run. Unset optimization "
                    "flags come from the recipe: yang2020 (SGD 0.1, Nesterov 0.9, weight decay "
                    "1e-4, cosine, batch 64, crop+flip), pal_sulam2023 (Adadelta 1.0, StepLR "
                    "0.7, batch 64; default for mnist_cnn) or adam (1e-3, batch 64; default "
                    "for mlp and lenet).",
    )
    parser.add_argument("--dataset", required=True, choices=datasets, metavar="NAME",
                        help=f"training data: {', '.join(datasets)}")
    parser.add_argument("--arch", required=True, choices=models, metavar="ARCH",
                        help=f"architecture: {', '.join(models)}")
    add_noise_arguments(parser, required=False)
    parser.add_argument("--epochs", required=True, type=int, help="number of epochs")
    parser.add_argument("--recipe", choices=module_dict_keys("training.config", "RECIPES"), default=None,
                        help="optimization recipe (default: by architecture, see above)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="examples per batch (default: the recipe's)")
    parser.add_argument("--lr", type=float, default=None,
                        help="initial learning rate (default: the recipe's)")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                        help="the dataset's training augmentation (default: the recipe's, "
                             "where the dataset has one)")
    parser.add_argument("--stability", action="store_true",
                        help="stability training: CE(f(x1), y) + w KL(f(x1) || f(x2)) with two "
                             "noise draws")
    parser.add_argument("--stability-weight", type=float, default=stability_weight,
                        help=f"the weight w of the KL term (default {stability_weight:g})")
    parser.add_argument("--noise-copies", type=int, default=1,
                        help="repeat each example this many times per batch, each with fresh "
                             "noise (Pal and Sulam use 100; default 1)")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="start from this checkpoint of the same architecture (fine-tuning)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of initialization, data order, noise and subsets (default 0)")
    parser.add_argument("--out", type=Path, default=None,
                        help="checkpoint file; metrics (.metrics.csv, .metrics.json) and curves "
                             "(.curves.png) go beside it (default runs/<dataset>-<arch>-<training "
                             "noise>.pt)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run whose checkpoint is --out (start it if absent)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data directory (default $SMOOTHCERT_DATA_DIR)")
    parser.add_argument("--device", default="cpu",
                        help="device, e.g. cpu, cuda, cuda:1 (default cpu)")
    parser.add_argument("--max-train", type=int, default=None,
                        help="train on a random subset of this many training examples")
    parser.add_argument("--max-eval", type=int, default=None,
                        help="evaluate each epoch on a random subset of this many test examples")
    add_classes_argument(parser, "for training and evaluation")
    parser.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE",
                        type=_key_value,
                        help="another dataset option, e.g. dim=10 (repeatable)")
    parser.add_argument("--workers", type=int, default=0,
                        help="data-loading worker processes for file-backed image folders "
                             "(default 0)")
    parser.add_argument("--progress-every", type=float, default=30.0, metavar="SECONDS",
                        help="when stderr is not a terminal, a progress line at most this often "
                             "within an epoch (default 30), besides one line per epoch")
    parser.set_defaults(func=run, validate=validate)


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.replace("-", "_"), json.loads(value)
    except json.JSONDecodeError:
        return key.replace("-", "_"), value


def _config(args: argparse.Namespace) -> Any:
    from smoothcert.training import TrainConfig

    options = dict(args.dataset_option)
    if args.classes is not None:
        options["classes"] = list(args.classes)
    # the training noise as given; TrainConfig checks it (and takes size 0 as clean training)
    shape = given_shape(args)
    if args.noise is not None:  # dssn on the digits: the digits' grid, not 255
        from smoothcert.data import dataset_info

        grid = dataset_info(args.dataset, **options).quantization
        shape = with_data_grid(args.noise, shape, grid)
    given = {"name": args.noise, "sigma": args.sigma, "scale": args.scale, **shape}
    noise = {key: value for key, value in given.items() if value is not None} or None
    return TrainConfig(
        dataset=args.dataset, arch=args.arch, noise=noise,
        epochs=args.epochs, recipe=args.recipe, batch_size=args.batch_size, lr=args.lr,
        augment=args.augment, stability=args.stability,
        stability_weight=args.stability_weight, noise_copies=args.noise_copies,
        init_from=None if args.init_from is None else str(args.init_from), seed=args.seed,
        max_train=args.max_train, max_eval=args.max_eval, dataset_options=options,
        out=None if args.out is None else str(args.out), resume=args.resume,
        device=args.device, data_dir=None if args.data_dir is None else str(args.data_dir),
        workers=args.workers,
    )


def _epoch_line(row: dict[str, Any], epochs: int) -> str:
    noisy = row["test_noisy_accuracy"]
    return (f"epoch {row['epoch']}/{epochs}  loss {row['train_loss']:.4f}  "
            f"train acc {row['train_accuracy']:.4f}  test acc {row['test_accuracy']:.4f}"
            + ("" if noisy is None else f"  noisy test acc {noisy:.4f}")
            + f"  lr {row['lr']:.3g}  {row['seconds']:.1f}s")


def validate(args: argparse.Namespace) -> None:
    """Every check that needs no data or file: the whole training configuration."""
    if args.progress_every <= 0:
        raise ValueError(f"--progress-every must be > 0 seconds, got {args.progress_every}")
    args.config = _config(args).resolved()


def run(args: argparse.Namespace) -> int:
    from smoothcert.cli._allocator import keep_freed_memory
    from smoothcert.cli._progress import ProgressReporter
    from smoothcert.runs.distributed import World, process_group, rank_device
    from smoothcert.training import TrainingDivergedError, train

    keep_freed_memory()
    config = getattr(args, "config", None) or _config(args).resolved()
    # under torchrun every process runs this command: data-parallel training, rank 0 reports
    world = World.from_env()
    reporter = ProgressReporter("train", "batch", every=args.progress_every,
                                enabled=world.is_main)

    def progress(batches: Iterable, total: int, description: str) -> Iterable:
        return reporter.wrap(batches, total, description)

    def report(row: dict[str, Any], model: Any) -> None:
        reporter.write(_epoch_line(row, config.epochs))

    try:
        with process_group(world, rank_device(args.device, world)):
            result = train(config, progress=progress if world.is_main else None,
                           on_epoch_end=report if world.is_main else None, world=world)
    except TrainingDivergedError as exc:
        print(f"smoothcert train: error: {exc}", file=sys.stderr)
        return 1
    if not world.is_main:
        return 0
    from smoothcert.plots.certified import save_figure
    from smoothcert.plots.training import plot_training_curves
    from smoothcert.training import default_run_name, output_files

    curves = save_figure(plot_training_curves(result.metrics, default_run_name(result.config)),
                         output_files(result.checkpoint)[2])
    print(f"checkpoint: {result.checkpoint}")
    print(f"metrics: {result.metrics_csv}, {result.metrics_json}")
    print(f"curves: {curves}")
    return 0
