"""The flags naming the base classifier of ``smoothcert certify`` and ``smoothcert predict``: a
checkpoint written by ``smoothcert train``, or the user's own model (``--arch NAME --weights
FILE``, ``--model FILE`` for a TorchScript or torch.export archive, ``--model MODULE:FACTORY``),
with ``--normalize MEAN,STD`` for a model without its normalization layer.

No torch import at module level: building the parser stays fast."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_model_arguments", "check_model_arguments", "load_model_from_args"]


def _numbers(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers (the C means, then the C stds), got {text!r}"
        ) from None


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --checkpoint | --arch | --model (exactly one), --weights and --normalize."""
    group = parser.add_argument_group(
        "the base classifier (exactly one of --checkpoint, --arch, --model)")
    source = group.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, default=None, metavar="FILE",
                        help="a checkpoint written by smoothcert train")
    source.add_argument("--arch", default=None, metavar="NAME",
                        help="a registered architecture (smoothcert's mlp, mnist_cnn, lenet, "
                             "resnet20, ...) whose weights --weights holds; needs --dataset")
    source.add_argument("--model", default=None, metavar="FILE|MODULE:FACTORY",
                        help="your own model: a TorchScript or torch.export archive, or a "
                             "callable returning an nn.Module (pkg.module:build, or "
                             "path/to/models.py:build), with --weights optional; needs --dataset")
    group.add_argument("--weights", type=Path, default=None, metavar="FILE",
                       help="a plain state_dict (torch.save(model.state_dict(), FILE); read "
                            "weights-only) for --arch or --model MODULE:FACTORY")
    group.add_argument("--normalize", type=_numbers, default=None, metavar="MEAN,STD",
                       help="prepend a normalization layer (x - mean) / std: the C means, then "
                            "the C stds, e.g. 0.1307,0.3081. Needed when your model expects "
                            "normalized inputs, so that the noise is added in pixel space")


def check_model_arguments(args: argparse.Namespace) -> None:
    """Refuse inconsistent model flags (ValueError naming them), before anything is read or
    written."""
    if args.checkpoint is not None:
        extra = [flag for flag, value in (("--weights", args.weights),
                                          ("--normalize", args.normalize)) if value is not None]
        if extra:
            raise ValueError(f"{' and '.join(extra)} go with --arch or --model, not "
                             f"--checkpoint (a checkpoint holds its weights and normalization)")
        return
    from smoothcert.models.user import check_sources

    check_sources(arch=args.arch, weights=args.weights, model=args.model)
    if args.dataset is None:
        flag = "--arch" if args.arch is not None else "--model"
        raise ValueError(f"{flag} needs --dataset (the data your model classifies)")


def load_model_from_args(args: argparse.Namespace, info: Any, device: Any
                         ) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The user's model for dataset ``info`` on ``device`` (``--arch`` or ``--model``), the
    run-configuration entries that identify it (its source and the SHA-256 of its files) and the
    settings entries (the paths read)."""
    from smoothcert.models.user import load_user_model

    check_model_arguments(args)
    loaded = load_user_model(info, arch=args.arch, weights=args.weights, model=args.model,
                             normalize=args.normalize, device=device)
    return loaded.model, {"model": loaded.description}, {"model_files": loaded.files}
