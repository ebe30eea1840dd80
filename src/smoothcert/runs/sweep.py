"""Sweeps: grids of ``smoothcert train`` and ``smoothcert certify`` jobs described in TOML.

A sweep file (the schema is documented with examples in ``experiments/README.md``)::

    [sweep]
    out = "runs/cifar10-l1"          # root folder of all outputs (relative: to the working dir)

    [common]                         # options of both train and certify
    dataset = "cifar10"

    [train]                          # options of every `smoothcert train` job
    arch = "wrn40_2"
    epochs = 120

    [certify]                        # options of every `smoothcert certify` job
    norms = ["l1"]
    n0 = 64

    [[grid]]                         # a block of jobs: the product of its list-valued keys
    noise = "uniform"                # plain keys go to both commands (training = smoothing noise)
    sigma = [0.25, 0.5]
    train.stability = [false, true]  # train.* / certify.* keys go to one command only

Each grid point is one training job, in a folder named after the point (for instance
``uniform-sigma0.25-stability``), and one certification job that reads the trained checkpoint.
Points that differ only in ``certify.*`` keys share one training job. An option ``key = value``
becomes the command-line flag ``--key value`` (underscores become dashes); ``true`` becomes a bare
``--key``, ``false`` is left out, a list becomes one comma-separated value, and a table gives a
repeatable option once per entry (``radii = {l1 = [0.5, 1], linf = 0.001}`` is
``--radii l1=0.5,1 --radii linf=0.001``).

A job is skipped when its outputs are complete: a training job when its checkpoint was trained
with the job's options and has all its epochs; a certification job when its run record (``.json``)
is beside the TSV, matches the job's options, and the TSV has a row for every input the job
selects. Other outputs are not complete: the job runs, and ``train``/``certify`` refuse to
overwrite them, naming the difference.

The work is split in three modules: ``smoothcert.runs.sweep_jobs`` expands a sweep file into jobs,
``smoothcert.runs.sweep_complete`` decides whether a job's outputs are complete, and this module
selects and runs jobs; it re-exports the public names of ``sweep_jobs``, so that
``smoothcert.runs.sweep`` stays the one import for users of sweeps.
"""

from __future__ import annotations

import fnmatch
import logging
import subprocess
import sys
from collections.abc import Callable, Sequence

from smoothcert.runs.sweep_jobs import CHECKPOINT_NAME, Job, Sweep, load_sweep, parse_sweep

logger = logging.getLogger(__name__)

__all__ = [
    "Sweep",
    "Job",
    "load_sweep",
    "parse_sweep",
    "select_jobs",
    "run_jobs",
    "CHECKPOINT_NAME",
]


def select_jobs(jobs: Sequence[Job], only: Sequence[str] | None = None) -> list[Job]:
    """The jobs whose name matches one of the shell-style patterns ``only`` (all without), plus
    the training jobs they need."""
    if not only:
        return list(jobs)
    chosen = {job.name for job in jobs if any(fnmatch.fnmatchcase(job.name, p) for p in only)}
    chosen |= {job.needs for job in jobs if job.name in chosen and job.needs}
    return [job for job in jobs if job.name in chosen]


def run_jobs(jobs: Sequence[Job], *, program: Sequence[str] | None = None,
             runner: Callable[[list[str]], int] | None = None,
             keep_going: bool = False) -> dict[str, str]:
    """Run the jobs in order, skipping complete ones; returns each job's status
    ("done", "skipped", "failed", "blocked": its training job failed).

    ``runner`` runs one command and returns its exit code (default: a subprocess of this Python
    running ``smoothcert``).
    """
    program = list(program) if program is not None else [sys.executable, "-m",
                                                         "smoothcert.cli.main"]
    runner = runner or _subprocess_runner
    status: dict[str, str] = {}
    for number, job in enumerate(jobs, start=1):
        if job.needs and status.get(job.needs) in ("failed", "blocked"):
            status[job.name] = "blocked"
            logger.warning("[%d/%d] %s: not run, %s failed", number, len(jobs), job.name,
                           job.needs)
            continue
        if job.is_complete():
            status[job.name] = "skipped"
            logger.info("[%d/%d] %s: complete, skipped", number, len(jobs), job.name)
            continue
        logger.info("[%d/%d] %s: %s", number, len(jobs), job.name, job.command_line(program))
        code = runner(job.command(program))
        status[job.name] = "done" if code == 0 else "failed"
        if code != 0:
            logger.error("[%d/%d] %s failed with exit code %d", number, len(jobs), job.name,
                         code)
            if not keep_going:
                break
    return status


def _subprocess_runner(command: list[str]) -> int:
    return subprocess.run(command, check=False).returncode
