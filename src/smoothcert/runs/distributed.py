"""Running smoothcert on several processes and machines with ``torch.distributed``.

Processes are started by PyTorch's launcher, ``torchrun``, which sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in each one's environment; nothing here
starts processes. ``World.from_env`` reads these variables; a process started without them is a
world of one and needs no process group.

The communication backend follows the device the user chose (``BACKENDS``): gloo for the CPU,
NCCL for CUDA. ``rank_device`` gives each process of a machine its own GPU when the user named
the device type only (``--device cuda`` -> ``cuda:LOCAL_RANK``).

What runs distributed:

- certification (``run_sharded``): each process certifies one shard of the selected inputs into
  its own results file (``smoothcert.runs.shards``); after a barrier, rank 0 merges the shards into the
  one file a single process would have written;
- the n samples of one input can be split between processes and their counts summed
  (``smoothcert.certify.split_sample``);
- training: DistributedDataParallel, each process taking its part of every batch
  (``smoothcert.training.loop``).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from smoothcert.runs.shards import MergeSummary, Shard, merge_shards, shard_paths

__all__ = [
    "World",
    "SINGLE_PROCESS",
    "BACKENDS",
    "backend_for",
    "rank_device",
    "process_group",
    "barrier",
    "all_reduce_sum",
    "broadcast_object",
    "CERTIFY_TIMEOUT",
    "ShardedRun",
    "run_sharded",
    "rank_batch_size",
    "rank_order",
    "wrap_model",
]

log = logging.getLogger(__name__)

R = TypeVar("R")

#: communication backend for each device type
BACKENDS: dict[str, str] = {"cpu": "gloo", "cuda": "nccl"}

#: how long a process may wait at a collective in a certification run: a process whose shard is
#: done (or was resumed almost done) waits at the final barrier for the slowest shard, which can
#: take hours; a process that dies ends the whole run through torchrun instead
CERTIFY_TIMEOUT = timedelta(hours=72)


def _env_int(environ: Mapping[str, str], name: str, minimum: int) -> int:
    text = environ.get(name)
    if text is None:
        raise ValueError(f"WORLD_SIZE is set but {name} is not; start the processes with "
                         f"torchrun, which sets RANK, WORLD_SIZE and LOCAL_RANK")
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"environment variable {name}={text!r} is not an integer") from None
    if value < minimum:
        raise ValueError(f"environment variable {name}={value} must be >= {minimum}")
    return value


@dataclass(frozen=True)
class World:
    """This process's place among ``size`` processes: global ``rank`` and ``local_rank`` on its
    machine. ``World()`` is a single process."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.size:
            raise ValueError(f"rank must be in 0..{self.size - 1} for a world of {self.size} "
                             f"processes, got {self.rank}")
        if self.local_rank < 0:
            raise ValueError(f"local_rank must be >= 0, got {self.local_rank}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> World:
        """The world torchrun describes in the environment (``os.environ`` by default), or a
        single process when ``WORLD_SIZE`` is not set."""
        environ = os.environ if environ is None else environ
        if "WORLD_SIZE" not in environ:
            return cls()
        size = _env_int(environ, "WORLD_SIZE", 1)
        rank = _env_int(environ, "RANK", 0)
        local = _env_int(environ, "LOCAL_RANK", 0) if "LOCAL_RANK" in environ else rank
        return cls(rank=rank, size=size, local_rank=local)

    @property
    def distributed(self) -> bool:
        """Whether there are other processes to work with."""
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes what exists once: merged results, checkpoints, metrics."""
        return self.rank == 0

    @property
    def shard(self) -> Shard:
        """This process's shard of a certification run."""
        return Shard(self.rank, self.size)


#: the world of a process started without torchrun
SINGLE_PROCESS = World()


def backend_for(device: torch.device | str) -> str:
    """The ``torch.distributed`` backend for processes computing on ``device``'s type."""
    kind = torch.device(device).type
    if kind not in BACKENDS:
        raise ValueError(f"no distributed backend for device type {kind!r}; distributed runs "
                         f"support {', '.join(sorted(BACKENDS))}")
    return BACKENDS[kind]


def rank_device(device: torch.device | str, world: World) -> torch.device:
    """The device of this process: a CUDA device named without an index becomes
    ``cuda:LOCAL_RANK`` (one GPU per process, as torchrun's ``--nproc_per_node`` = GPUs per
    machine expects); an explicit index, or any other device, is kept as given."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", world.local_rank if world.distributed else 0)
    if device.type == "cuda" and world.distributed:
        log.warning("every process of this machine uses %s (an explicit index); give "
                    "--device cuda for one GPU per process", device)
    return device


@contextlib.contextmanager
def process_group(world: World, device: torch.device | str,
                  timeout: timedelta | None = None) -> Iterator[None]:
    """Join the default process group for the duration of the block, with the backend for
    ``device`` (``backend_for``) and the rendezvous torchrun set up (``env://``); leave it
    afterwards (after a barrier, when the block ends without an error). A single process, or one already in a process group (which is then left as it
    is), does nothing. ``timeout``: how long a collective may wait (None: torch's default)."""
    if not world.distributed or dist.is_initialized():
        yield
        return
    device = _indexed(device)
    dist.init_process_group(backend=backend_for(device), init_method="env://",
                            world_size=world.size, rank=world.rank, timeout=timeout,
                            device_id=device if device.type == "cuda" else None)
    try:
        yield
        # leave together: a rank that tears its connections down while a peer is still in a
        # collective or writing makes gloo abort that peer at exit
        # ("terminate called without an active exception")
        dist.barrier(device_ids=[device.index] if device.type == "cuda" else None)
    finally:
        dist.destroy_process_group()


def _indexed(device: torch.device | str) -> torch.device:
    """``device``, refusing a GPU without an index: NCCL binds each process to one GPU, which
    ``rank_device`` chooses."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        raise ValueError("a distributed run needs one GPU per process, e.g. cuda:0, not "
                         "'cuda'; use rank_device(device, world)")
    return device


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier(device: torch.device | str) -> None:
    """Wait until every process gets here (nothing to wait for outside a process group)."""
    if not _active():
        return
    device = _indexed(device)
    # NCCL runs a barrier as an all-reduce on a GPU: name ours rather than let it guess
    dist.barrier(device_ids=[device.index] if device.type == "cuda" else None)


def all_reduce_sum(values: np.ndarray, device: torch.device | str) -> np.ndarray:
    """The element-wise sum of ``values`` over all processes (a copy of ``values`` outside a
    process group): integer counts are summed exactly in int64, real numbers in float64.
    Summed on ``device``, as NCCL needs GPU tensors."""
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        dtype = np.int64
    elif values.dtype.kind == "f":
        dtype = np.float64
    else:
        raise TypeError(f"all_reduce_sum adds integers or real numbers, got dtype "
                        f"{values.dtype}")
    if not _active():
        return values.astype(dtype, copy=True)
    tensor = torch.from_numpy(values.astype(dtype)).to(device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy()


def broadcast_object(value: object, device: torch.device | str, source: int = 0) -> object:
    """``value`` as process ``source`` has it, on every process (picklable values only; they
    come from another process of the same run)."""
    if not _active():
        return value
    holder = [value]
    device = _indexed(device)
    dist.broadcast_object_list(holder, src=source,
                               device=device if device.type == "cuda" else None)
    return holder[0]


@dataclass(frozen=True)
class ShardedRun(Generic[R]):
    """What ``run_sharded`` did in this process: ``result`` of the work, the file it wrote
    (``path``), and on rank 0 of a distributed run the ``merged`` file (else None)."""

    result: R
    path: Path
    shard: Shard | None
    merged: MergeSummary | None


def run_sharded(work: Callable[[Path, Shard | None], R], out: str | os.PathLike, *,
                world: World, device: torch.device | str, shard: Shard | None = None,
                timeout: timedelta | None = CERTIFY_TIMEOUT,
                command: list[str] | None = None) -> ShardedRun[R]:
    """Run ``work(path, shard)`` (a certification or prediction run writing its results file
    ``path`` for the inputs of ``shard``) as this process's part of a run into ``out``.

    - one process, no ``shard``: ``work(out, None)``;
    - ``shard`` given (a scheduler's job array, no framework): ``work(shard.path(out), shard)``;
      merge the shards afterwards with ``merge_shards`` (``smoothcert merge``);
    - a torchrun world of N processes: process r runs ``work`` for ``Shard(r, N)``, all wait at
      a barrier, then rank 0 merges the N shards into ``out``. Rerunning the same command
      resumes every shard, and merges again.

    The backend follows ``device`` (``process_group``); ``timeout`` bounds the wait at the
    barrier for the slowest shard.
    """
    if world.distributed and shard is not None:
        raise ValueError(f"the inputs are split either by torchrun ({world.size} processes) or by "
                         f"shard {shard}, not both; drop --shard under torchrun")
    out = Path(out)
    if world.distributed:
        shard = world.shard
    path = out if shard is None else shard.path(out)
    with process_group(world, device, timeout=timeout):
        result = work(path, shard)
        merged = None
        if world.distributed:
            barrier(device)
            try:
                if world.is_main:
                    merged = merge_shards(shard_paths(out, world.size), out, command=command)
            finally:
                # every process returns once the merge is over (or has failed on rank 0, which
                # raises), never while rank 0 is still writing
                barrier(device)
    return ShardedRun(result=result, path=path, shard=shard, merged=merged)


# ------------------------------------------------------------------------------------ training
def rank_batch_size(batch_size: int, world: World) -> int:
    """This process's part of a batch of ``batch_size`` examples.

    The batch size of a training recipe is the batch of one optimizer step, whatever the number
    of processes: each of N processes takes ``batch_size / N`` examples, and
    DistributedDataParallel averages their gradients, so a step sees the gradient of the mean
    loss over the same ``batch_size`` examples as one process (``rank_order``). Raise the
    recipe's batch size (and, by the linear scaling rule, its learning rate) to use larger GPUs
    fully; that is a different recipe.
    """
    if batch_size % world.size:
        raise ValueError(f"batch size {batch_size} cannot be split evenly between "
                         f"{world.size} processes; choose a multiple of {world.size}")
    return batch_size // world.size


def rank_order(order: torch.Tensor, world: World) -> torch.Tensor:
    """This process's part of an epoch's example ``order`` (the same on every process, drawn
    from the run's seed and the epoch): ``DistributedSampler`` without shuffling, so process r
    takes order[r], order[r + N], ... With per-process batches of ``rank_batch_size``, the N
    batches of step k hold exactly the examples of one process's batch k; the last few examples
    are repeated so that every process has as many (DistributedSampler's padding)."""
    if not world.distributed:
        return order
    sampler = torch.utils.data.DistributedSampler(
        range(len(order)), num_replicas=world.size, rank=world.rank, shuffle=False)
    return order[torch.tensor(list(sampler), dtype=torch.int64)]


def wrap_model(model: torch.nn.Module, world: World, device: torch.device | str
               ) -> torch.nn.Module:
    """``model`` in DistributedDataParallel (its parameters broadcast from rank 0, its gradients
    averaged over the processes at every backward pass), or ``model`` itself for one process.
    Train through the wrapper; evaluate and save the model itself."""
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device = torch.device(device)
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                   else None)
