"""The resumable (alpha, beta) grid of the smoothed risk of [PS23].

One folder per sweep holds ``risk.csv`` (``alpha,beta,n_errors,n,error``; here ``n`` is the
number of test inputs of the cell, the draws per input are ``n`` of the configuration) and
``run.json`` (the configuration and the checkpoint of each alpha). Rows are appended and flushed
as cells finish; a rerun skips the cells already present and refuses a different configuration.
Cells are keyed by alpha and beta rounded to ``KEY_DECIMALS`` decimals, so 0.1 + 0.2 and 0.3
are the same cell.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from smoothcert._version import __version__
from smoothcert.pal_sulam.risk.analysis import RiskTable
from smoothcert.pal_sulam.risk.evaluate import RiskEstimate
from smoothcert.runs.atomic import write_text_atomic
from smoothcert.validation import check_float

__all__ = ["KEY_DECIMALS", "CSV_HEADER", "grid_key", "RiskGrid", "run_risk_grid",
           "read_risk_table"]

log = logging.getLogger(__name__)

M = TypeVar("M")

KEY_DECIMALS = 4
CSV_HEADER = ("alpha", "beta", "n_errors", "n", "error")


def grid_key(value: float) -> float:
    """``value`` rounded to KEY_DECIMALS decimals (and -0.0 made 0.0): the key of a grid cell."""
    value = check_float("grid values (alpha, beta)", value, minimum=0.0)
    return round(value, KEY_DECIMALS) + 0.0


class RiskGrid:
    """A resumable (alpha, beta) grid in ``folder`` (see the module docstring).

    ``config`` holds everything a cell's value depends on besides alpha and beta (dataset,
    split, draws, noise, seed, inputs); it must be JSON-ready and equal on every rerun.
    """

    def __init__(self, folder: str | os.PathLike, config: Mapping[str, Any]) -> None:
        self.folder = Path(folder)
        self.csv_path = self.folder / "risk.csv"
        self.json_path = self.folder / "run.json"
        self.config = json.loads(json.dumps(dict(config)))
        self.folder.mkdir(parents=True, exist_ok=True)
        state = self._read_json()
        if state is None:
            state = {"smoothcert": __version__, "config": self.config, "checkpoints": {}}
        elif state.get("config") != self.config:
            old = state.get("config") or {}
            keys = sorted(k for k in set(old) | set(self.config) if old.get(k) != self.config.get(k))
            raise ValueError(
                f"{str(self.folder)!r} holds a grid with another configuration (differs in "
                f"{', '.join(keys)}: {', '.join(f'{k}={old.get(k)!r}' for k in keys)}); use "
                f"another output folder or the same settings"
            )
        self._state = state
        self._write_json()
        self._cells = self._read_csv()

    def _read_json(self) -> dict | None:
        if not self.json_path.exists():
            return None
        with open(self.json_path) as fh:
            return json.load(fh)

    def _write_json(self) -> None:
        write_text_atomic(self.json_path,
                          json.dumps(self._state, indent=2, sort_keys=True) + "\n")

    def _read_csv(self) -> dict[tuple[float, float], RiskEstimate]:
        cells: dict[tuple[float, float], RiskEstimate] = {}
        if not self.csv_path.exists():
            return cells
        with open(self.csv_path, newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                return cells
            if tuple(header) != CSV_HEADER:
                raise ValueError(f"{str(self.csv_path)!r} has header {header}, expected "
                                 f"{list(CSV_HEADER)}")
            for row in reader:
                if len(row) != len(CSV_HEADER):
                    # an interrupted write leaves a partial last line: that cell is redone
                    log.warning("ignoring incomplete line %r in %s", row, self.csv_path)
                    continue
                key = (grid_key(float(row[0])), grid_key(float(row[1])))
                cells[key] = RiskEstimate(n_errors=int(row[2]), n=int(row[3]))
        return cells

    @property
    def cells(self) -> dict[tuple[float, float], RiskEstimate]:
        """The finished cells, keyed by (alpha, beta) keys."""
        return dict(self._cells)

    def has(self, alpha: float, beta: float) -> bool:
        return (grid_key(alpha), grid_key(beta)) in self._cells

    def missing(self, alphas: Iterable[float], betas: Iterable[float]
                ) -> list[tuple[float, float]]:
        """The cells (alpha, beta) of the given values, keyed and in increasing order, that are
        not in the grid yet."""
        betas = sorted({grid_key(b) for b in betas})
        return [(a, b) for a in sorted({grid_key(a) for a in alphas}) for b in betas
                if not self.has(a, b)]

    def bind_checkpoint(self, alpha: float, checkpoint: str, path: str | None = None) -> None:
        """Record which checkpoint provides ``alpha``; refuse a different one for the same key.

        ``checkpoint`` identifies the model (the command line uses ``sha256:<digest of the
        file>``, so a checkpoint that moved is still the same one); ``path`` says where it was
        read last and is only informative (it is updated, never compared).
        """
        key = repr(grid_key(alpha))
        entry = {"id": checkpoint, "path": path}
        known = self._state["checkpoints"].get(key)
        known_id = known.get("id") if isinstance(known, dict) else known
        if known is not None and known_id != checkpoint:
            raise ValueError(f"alpha={key} already comes from checkpoint {known_id!r} in this "
                             f"grid, not {checkpoint!r}; two checkpoints have the same training "
                             f"noise, or the model changed since the grid was started")
        if self._state["checkpoints"].get(key) != entry:
            self._state["checkpoints"][key] = entry
            self._write_json()

    def record(self, alpha: float, beta: float, estimate: RiskEstimate) -> None:
        """Append one finished cell (and flush it to disk)."""
        key = (grid_key(alpha), grid_key(beta))
        if key in self._cells:
            raise ValueError(f"cell alpha={key[0]}, beta={key[1]} is already in {self.csv_path}")
        new = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        with open(self.csv_path, "a", newline="") as fh:
            writer = csv.writer(fh)
            if new:
                writer.writerow(CSV_HEADER)
            writer.writerow([repr(key[0]), repr(key[1]), estimate.n_errors, estimate.n,
                             repr(estimate.error)])
            fh.flush()
            os.fsync(fh.fileno())
        self._cells[key] = estimate

    def table(self) -> RiskTable:
        return RiskTable.from_cells(self._cells)


def run_risk_grid(grid: RiskGrid, models: Mapping[float, Callable[[], M]],
                  betas: Iterable[float], evaluate: Callable[[M, float], RiskEstimate]) -> int:
    """Fill the missing cells of ``grid``. ``models`` maps each alpha to a loader (called only
    when one of that alpha's cells is missing, once); ``evaluate(loaded, beta)`` computes a cell
    from what the loader returned (a model, a checkpoint). Returns the number of cells computed.
    """
    keys = [grid_key(a) for a in models]
    if len(set(keys)) != len(keys):
        raise ValueError(f"two models share an alpha after rounding to {KEY_DECIMALS} decimals: "
                         f"{sorted(keys)}")
    loaders = dict(zip(keys, models.values(), strict=True))
    todo: dict[float, list[float]] = {}
    for alpha, beta in grid.missing(keys, betas):
        todo.setdefault(alpha, []).append(beta)
    done = 0
    for alpha, missing in todo.items():
        model = loaders[alpha]()
        for beta in missing:
            estimate = evaluate(model, beta)
            grid.record(alpha, beta, estimate)
            log.info("alpha=%g beta=%g: %d/%d errors", alpha, beta, estimate.n_errors, estimate.n)
            done += 1
    return done


def read_risk_table(path: str | os.PathLike) -> RiskTable:
    """Read a grid's ``risk.csv`` (or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "risk.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no risk table at {str(path)!r}")
    cells: dict[tuple[float, float], RiskEstimate] = {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != CSV_HEADER:
            raise ValueError(f"{str(path)!r} has header {reader.fieldnames}, expected "
                             f"{list(CSV_HEADER)}")
        for row in reader:
            if None in row.values():
                continue
            cells[(grid_key(float(row["alpha"])), grid_key(float(row["beta"])))] = RiskEstimate(
                n_errors=int(row["n_errors"]), n=int(row["n"]))
    return RiskTable.from_cells(cells)
