"""The smoothed risk Delta-hat_{alpha,beta} of [PS23] and the resumable (alpha, beta) grid.

Delta-hat is the plain error rate of the Monte Carlo smoothed classifier: for each test input x,
``n`` noise draws delta_1..delta_n from the smoothing noise (size beta), the base classifier's hard
predictions f(x + delta_k) are counted, the vote is the most frequent class, and the input is an
error iff the vote differs from its label. There is no abstention and no confidence bound (unlike
CERTIFY): this estimates the risk of the smoothed classifier itself, up to the Monte Carlo error
of a majority of n draws. Ties in the vote go to the lowest class index (numpy's argmax rule, as
in the authors' evaluation). beta = 0 means no noise: the vote is f(x).

Reproducibility: the draws for the input with dataset index ``idx`` come from a torch generator
seeded by ``numpy.random.SeedSequence([seed, idx])``, so they do not depend on which other inputs
share a batch, on the batch size, or on the order of evaluation.

The grid: one folder per sweep holding ``risk.csv`` (``alpha,beta,n_errors,n,error``; here ``n``
is the number of test inputs of the cell, the draws per input are ``n`` of the configuration) and
``run.json`` (the configuration and the checkpoint of each alpha). Rows are appended and flushed
as cells finish; a rerun skips the cells already present and refuses a different configuration.
Cells are keyed by alpha and beta rounded to ``KEY_DECIMALS`` decimals, so 0.1 + 0.2 and 0.3
are the same cell.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from scipy.signal import savgol_filter

from smoothcert._version import __version__
from smoothcert.noises import Noise
from smoothcert.stats import clopper_pearson_interval

__all__ = [
    "KEY_DECIMALS", "grid_key", "input_seed", "majority_vote", "vote_counts", "RiskEstimate",
    "smoothed_risk", "RiskGrid", "run_risk_grid", "RiskTable",
    "read_risk_table", "savgol_window", "smoothed_curve", "BestAlpha", "best_alphas", "risk_curves_figure",
    "risk_heatmap_figure", "CSV_HEADER",
]

log = logging.getLogger(__name__)

M = TypeVar("M")

KEY_DECIMALS = 4
CSV_HEADER = ("alpha", "beta", "n_errors", "n", "error")


def grid_key(value: float) -> float:
    """``value`` rounded to KEY_DECIMALS decimals (and -0.0 made 0.0): the key of a grid cell."""
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"grid values (alpha, beta) must be finite numbers >= 0, got {value!r}")
    return round(value, KEY_DECIMALS) + 0.0


# ---------------------------------------------------------------------------------- evaluator
def input_seed(seed: int, index: int) -> int:
    """The 64-bit seed of the noise draws for input ``index`` under the run's ``seed``."""
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if isinstance(index, bool) or int(index) != index or index < 0:
        raise ValueError(f"index must be an integer >= 0, got {index!r}")
    state = np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint64)
    return int(state[0])


def majority_vote(counts: np.ndarray) -> np.ndarray:
    """The most frequent class of each row of ``counts`` (m, classes); ties to the lowest index."""
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] < 1:
        raise ValueError(f"counts must have shape (inputs, classes), got {counts.shape}")
    return np.argmax(counts, axis=1).astype(np.int64)


@torch.no_grad()
def vote_counts(model: torch.nn.Module, inputs: torch.Tensor, indices: Sequence[int], *,
                noise: Noise | None, n: int, num_classes: int, seed: int,
                batch_size: int = 1000) -> np.ndarray:
    """Counts of the base classifier's predictions under ``n`` noise draws per input.

    ``inputs`` is a batch (m, ...) on the model's device, ``indices`` their dataset indices (which
    seed their draws). ``noise=None`` (beta = 0) evaluates each input once and gives it all ``n``
    votes. The model runs on at most ``batch_size`` noisy inputs at a time. Returns int64 (m,
    num_classes). The model is put in eval mode and its mode restored afterwards.
    """
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n (noise draws per input) must be a positive integer, got {n!r}")
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    m = inputs.shape[0]
    if len(indices) != m:
        raise ValueError(f"got {len(indices)} indices for {m} inputs")
    was_training = model.training
    model.eval()
    try:
        if noise is None:
            batch, owner = inputs, torch.arange(m, device=inputs.device)
            weight = n
        else:
            copies = []
            for row, idx in enumerate(indices):
                generator = torch.Generator(device=inputs.device)
                generator.manual_seed(input_seed(seed, idx))
                block = inputs[row].unsqueeze(0).expand(n, *inputs.shape[1:])
                copies.append(block + noise.sample_like(block, generator=generator))
            batch = torch.cat(copies)
            owner = torch.arange(m, device=inputs.device).repeat_interleave(n)
            weight = 1
        predictions = torch.cat([model(batch[k:k + batch_size]).argmax(dim=1)
                                 for k in range(0, batch.shape[0], batch_size)])
    finally:
        model.train(was_training)
    if predictions.numel() and int(predictions.max()) >= num_classes:
        raise ValueError(f"the model predicts class {int(predictions.max())}, but "
                         f"num_classes={num_classes}")
    counts = torch.bincount(owner * num_classes + predictions, minlength=m * num_classes)
    return (counts.reshape(m, num_classes) * weight).cpu().numpy().astype(np.int64)


@dataclass(frozen=True)
class RiskEstimate:
    """``n_errors`` wrong votes among ``n`` test inputs."""

    n_errors: int
    n: int

    @property
    def error(self) -> float:
        return self.n_errors / self.n if self.n else float("nan")

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """The two-sided Clopper-Pearson interval for the risk."""
        low, high = clopper_pearson_interval(self.n_errors, self.n, 1.0 - confidence)
        return float(low), float(high)


def smoothed_risk(model: torch.nn.Module, dataset: Any, *, noise: Noise | None, n: int,
                  num_classes: int, seed: int, indices: Iterable[int] | None = None,
                  device: torch.device | str = "cpu", batch_size: int = 1000) -> RiskEstimate:
    """Delta-hat: the error rate of the majority vote of ``n`` draws over ``dataset``.

    ``dataset[i]`` must return (input tensor, integer label); ``indices`` selects the inputs
    (default: all). The model must already be on ``device``. Several inputs share each forward
    pass (``batch_size // n`` of them), which does not change the result (see the module doc).
    """
    indices = list(range(len(dataset))) if indices is None else [int(i) for i in indices]
    per_batch = max(1, batch_size // (1 if noise is None else n))
    errors = 0
    for start in range(0, len(indices), per_batch):
        chunk = indices[start:start + per_batch]
        items = [dataset[i] for i in chunk]
        inputs = torch.stack([torch.as_tensor(x) for x, _ in items]).to(device)
        labels = np.asarray([int(y) for _, y in items], dtype=np.int64)
        counts = vote_counts(model, inputs, chunk, noise=noise, n=n, num_classes=num_classes,
                             seed=seed, batch_size=batch_size)
        errors += int(np.sum(majority_vote(counts) != labels))
    return RiskEstimate(n_errors=errors, n=len(indices))


# ---------------------------------------------------------------------------------- the grid
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
        tmp = self.json_path.with_suffix(".json.tmp")
        with open(tmp, "w") as fh:
            json.dump(self._state, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, self.json_path)

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


# ---------------------------------------------------------------------------------- analysis
@dataclass(frozen=True)
class RiskTable:
    """The grid as arrays: ``n_errors`` and ``n`` (int64, -1 where a cell is missing), indexed by
    the sorted ``alphas`` and ``betas``."""

    alphas: np.ndarray
    betas: np.ndarray
    n_errors: np.ndarray
    n: np.ndarray

    @classmethod
    def from_cells(cls, cells: Mapping[tuple[float, float], RiskEstimate]) -> RiskTable:
        alphas = np.array(sorted({a for a, _ in cells}), dtype=np.float64)
        betas = np.array(sorted({b for _, b in cells}), dtype=np.float64)
        n_errors = np.full((alphas.size, betas.size), -1, dtype=np.int64)
        n = np.full_like(n_errors, -1)
        for (a, b), est in cells.items():
            i, j = np.searchsorted(alphas, a), np.searchsorted(betas, b)
            n_errors[i, j], n[i, j] = est.n_errors, est.n
        return cls(alphas=alphas, betas=betas, n_errors=n_errors, n=n)

    @property
    def error(self) -> np.ndarray:
        """Error rates (float64, nan where missing)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, self.n_errors / np.maximum(self.n, 1), np.nan)

    def interval(self, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Clopper-Pearson bounds per cell (nan where missing)."""
        present = self.n > 0
        low = np.full(self.n.shape, np.nan)
        high = np.full(self.n.shape, np.nan)
        if present.any():
            lo, hi = clopper_pearson_interval(self.n_errors[present], self.n[present],
                                              1.0 - confidence)
            low[present], high[present] = lo, hi
        return low, high


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


def savgol_window(length: int, window: int = 15, order: int = 3) -> int | None:
    """The Savitzky-Golay window for a curve of ``length`` points: ``window`` if it fits, else the
    largest odd number <= length that exceeds ``order``; None when the curve is too short to
    smooth (length <= order + 1)."""
    w = min(int(window), int(length))
    if w % 2 == 0:
        w -= 1
    return w if w > order else None


@dataclass(frozen=True)
class BestAlpha:
    """alpha* for one beta: the argmin of the raw error curve and of its Savitzky-Golay
    smoothing (``smoothed_alpha`` None when the curve was too short to smooth)."""

    beta: float
    raw_alpha: float
    raw_error: float
    smoothed_alpha: float | None
    smoothed_error: float | None


def smoothed_curve(alphas: np.ndarray, errors: np.ndarray, window: int = 15, order: int = 3
                   ) -> tuple[np.ndarray, np.ndarray] | None:
    """The Savitzky-Golay smoothing (``scipy.signal.savgol_filter``) of the error curve of the
    noise-trained models (alpha > 0, in increasing order, treated as equally spaced): (alphas,
    smoothed errors), or None when fewer points than ``savgol_window`` needs.

    The clean model (alpha = 0) is left out: it is not a member of the noise-trained family and
    its risk can jump by an order of magnitude (at beta = 0.7 on MNIST: 49% against 1%), which
    would make the filter ring over the first alphas and fake a minimum there.
    """
    trained = alphas > 0
    w = savgol_window(int(trained.sum()), window, order)
    if w is None:
        return None
    return alphas[trained], savgol_filter(errors[trained], w, order)


def best_alphas(table: RiskTable, window: int = 15, order: int = 3) -> list[BestAlpha]:
    """alpha* per beta: the raw argmin over all alphas, and the argmin over the clean model's raw
    error (if alpha = 0 was evaluated) and the smoothed curve of the noise-trained models
    (``smoothed_curve``). Ties go to the smallest alpha."""
    out = []
    for j, beta in enumerate(table.betas):
        present = table.n[:, j] > 0
        if not present.any():
            continue
        alphas, errors = table.alphas[present], table.error[present, j]
        i = int(np.argmin(errors))
        curve = smoothed_curve(alphas, errors, window, order)
        if curve is None:
            out.append(BestAlpha(float(beta), float(alphas[i]), float(errors[i]), None, None))
            continue
        candidates = np.concatenate([alphas[alphas == 0], curve[0]])
        values = np.concatenate([errors[alphas == 0], curve[1]])
        s = int(np.argmin(values))
        out.append(BestAlpha(float(beta), float(alphas[i]), float(errors[i]),
                             float(candidates[s]), float(values[s])))
    return out


def risk_curves_figure(table: RiskTable, window: int = 15, order: int = 3):
    """Delta-hat against alpha on a log scale, one colour per beta: raw points with Clopper-Pearson
    bars, the smoothed curve of the noise-trained models as a line, alpha* (``best_alphas``)
    starred. Zero error rates are drawn at 1/(2n) so they stay on the log axis."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 5.0), layout="constrained")
    ax = fig.subplots()
    low, high = table.interval()
    best = {b.beta: b for b in best_alphas(table, window, order)}
    for j, beta in enumerate(table.betas):
        present = table.n[:, j] > 0
        if not present.any():
            continue
        colour = f"C{j % 10}"
        alphas, err = table.alphas[present], table.error[present, j]
        floor = 0.5 / table.n[present, j]
        shown = np.maximum(err, floor)
        bars = np.vstack([shown - np.maximum(low[present, j], 0.5 * floor),
                          np.maximum(high[present, j], shown) - shown])
        ax.errorbar(alphas, shown, yerr=np.maximum(bars, 0), fmt=".", ms=3, lw=0.6,
                    color=colour, alpha=0.6)
        choice = best[float(beta)]
        curve = smoothed_curve(alphas, err, window, order)
        if curve is None:
            ax.plot(alphas, shown, color=colour,
                    label=f"β = {beta:g} (α* = {choice.raw_alpha:g}, raw)")
            continue
        ax.plot(curve[0], np.maximum(curve[1], floor.min()), color=colour,
                label=f"β = {beta:g} (α* = {choice.smoothed_alpha:g})")
        ax.plot([choice.smoothed_alpha], [max(choice.smoothed_error, floor.min())], marker="*",
                ms=11, color=colour, mec="k")
    ax.set_yscale("log")
    ax.set_xlabel("α (training noise)")
    ax.set_ylabel("Δ̂(α, β): error of the smoothed classifier")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small", ncol=2)
    return fig


def risk_heatmap_figure(table: RiskTable):
    """The error rates as a heatmap (alpha across, beta up, log colour scale; missing cells
    blank; zero errors drawn at 1/(2n))."""
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    err = table.error.T
    shown = np.where(table.n.T > 0, np.maximum(err, 0.5 / np.maximum(table.n.T, 1)), np.nan)
    fig = Figure(figsize=(8.0, 4.0), layout="constrained")
    ax = fig.subplots()
    finite = shown[np.isfinite(shown)]
    norm = LogNorm(vmin=finite.min(), vmax=finite.max()) if finite.size else None
    mesh = ax.pcolormesh(_edges(table.alphas), _edges(table.betas),
                         np.ma.masked_invalid(shown), norm=norm, cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="Δ̂(α, β)")
    ax.set_xlabel("α (training noise)")
    ax.set_ylabel("β (smoothing noise)")
    return fig


def _edges(values: np.ndarray) -> np.ndarray:
    """Cell edges around sorted centres (midpoints; half a step beyond the ends)."""
    if values.size == 1:
        return np.array([values[0] - 0.5, values[0] + 0.5])
    mids = 0.5 * (values[1:] + values[:-1])
    return np.concatenate([[2 * values[0] - mids[0]], mids, [2 * values[-1] - mids[-1]]])
