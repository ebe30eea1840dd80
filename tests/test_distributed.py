"""Scaling out: shards of a certification run, merging them, torch.distributed processes (gloo
on 127.0.0.1), and DistributedDataParallel training."""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from _toy_models import Interrupting, Linear
from smoothcert.certify.classifier import SmoothedClassifier
from smoothcert.certify.dataset import certify_dataset, select_indices
from smoothcert.noises import get_noise
from smoothcert.runs.distributed import (
    World,
    all_reduce_sum,
    backend_for,
    barrier,
    process_group,
    rank_batch_size,
    rank_device,
    rank_order,
    run_sharded,
)
from smoothcert.runs.results import run_json_path
from smoothcert.runs.shards import Shard, merge_shards, shard_path, shard_paths

PROTOCOL = {"n0": 10, "n": 200, "alpha": 0.01}
SIZE = 13  # inputs in the toy dataset: not a multiple of the shard counts used
#: the longest a test process waits at a collective: a hang fails instead of blocking the tests
WAIT = timedelta(seconds=60)


# ---------------------------------------------------------------------------------- helpers
def _dataset() -> list[tuple[torch.Tensor, int]]:
    gen = torch.Generator().manual_seed(1)
    model = Linear()
    items = []
    for _ in range(SIZE):
        x = torch.rand(1, 4, 4, generator=gen)
        label = int(model(x[None]).argmax()) if torch.rand(1, generator=gen) < 0.8 else 0
        items.append((x, label))
    return items


def _certify(out, shard=None, *, model=None, **kwargs):
    """Certify the toy dataset into ``out`` (one input per forward batch, so a row cannot
    depend on its batch neighbours)."""
    smoothed = SmoothedClassifier(model or Linear(), get_noise("gaussian", dim=16, sigma=0.25), 3,
                                  batch_size=PROTOCOL["n"])
    args = {**PROTOCOL, "norms": ("l2",), "seed": 5, "command": ["test"], **kwargs}
    return certify_dataset(smoothed, _dataset(), out, shard=shard, **args)


def _lines(path) -> list[str]:
    return Path(path).read_text().splitlines()


def _without_seconds(path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert rows and all("seconds" in row for row in rows)
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _snapshot(paths) -> dict[str, bytes | None]:
    return {str(p): Path(p).read_bytes() if Path(p).exists() else None for p in paths}


# ---------------------------------------------------------------------------------- shards
def test_shard_parse_select_and_names(tmp_path):
    assert Shard.parse("3/8") == Shard(3, 8) and str(Shard(3, 8)) == "3/8"
    for bad in ("8/8", "-1/4", "1/0", "1", "a/b", "1/2/3"):
        with pytest.raises(ValueError, match="shard"):
            Shard.parse(bad)
    with pytest.raises(ValueError, match="shard index must be in 0..1"):
        Shard(2, 2)
    # round robin over the selection, which comes first: every 2nd input, at most 7
    selected = select_indices(100, skip=2, max_examples=7)
    parts = [Shard(i, 3).select(selected) for i in range(3)]
    assert parts == [[0, 6, 12], [2, 8], [4, 10]]
    assert sorted(sum(parts, [])) == selected
    # each shard's run record is its own, beside a distinct results file
    names = shard_paths(tmp_path / "run.tsv", 2)
    assert [p.name for p in names] == ["run.shard0-of-2.tsv", "run.shard1-of-2.tsv"]
    records = {run_json_path(p) for p in names} | {run_json_path(tmp_path / "run.tsv")}
    assert len(records) == 3
    assert shard_path(tmp_path / "run", 1, 2).name == "run.shard1-of-2.tsv"
    assert run_json_path(shard_path(tmp_path / "run", 1, 2)) != run_json_path(tmp_path / "run")


def test_world_from_environment():
    assert World.from_env({}) == World(0, 1, 0) and not World().distributed
    world = World.from_env({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"})
    assert (world.rank, world.size, world.local_rank) == (2, 4, 0)
    assert world.distributed and not world.is_main and world.shard == Shard(2, 4)
    with pytest.raises(ValueError, match="RANK"):
        World.from_env({"WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match="rank must be in 0..1"):
        World.from_env({"WORLD_SIZE": "2", "RANK": "2"})
    with pytest.raises(ValueError, match="not an integer"):
        World.from_env({"WORLD_SIZE": "two", "RANK": "0"})


def test_backend_and_device_follow_the_chosen_device():
    assert backend_for("cpu") == "gloo" and backend_for("cuda:1") == "nccl"
    with pytest.raises(ValueError, match="no distributed backend for device type 'meta'"):
        backend_for("meta")
    world = World(rank=5, size=8, local_rank=1)
    assert rank_device("cuda", world) == torch.device("cuda", 1)
    assert rank_device("cuda:3", world) == torch.device("cuda", 3)
    assert rank_device("cpu", world) == torch.device("cpu")
    assert rank_device("cuda", World()) == torch.device("cuda", 0)
    with pytest.raises(ValueError, match="one GPU per process"), \
            process_group(World(0, 2), "cuda"):
        pass


def test_collectives_outside_a_process_group_are_local():
    counts = np.array([3, 0, 7], dtype=np.int32)
    summed = all_reduce_sum(counts, "cpu")
    assert summed.dtype == np.int64 and summed.tolist() == [3, 0, 7]
    assert all_reduce_sum(np.array([0.5]), "cpu").tolist() == [0.5]
    with pytest.raises(TypeError, match="integers or real numbers"):
        all_reduce_sum(np.array(["a"]), "cpu")
    barrier("cpu")  # nothing to wait for


# ---------------------------------------------------------------------------------- merging
@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """One process's results for the toy run, the reference for every merge."""
    out = tmp_path_factory.mktemp("single") / "single.tsv"
    _certify(out, skip=1, max_examples=-1)
    return out


def _sharded(directory, count, **kwargs) -> tuple[Path, list[Path]]:
    out = directory / "merged.tsv"
    for index in range(count):
        _certify(shard_path(out, index, count), Shard(index, count), **kwargs)
    return out, shard_paths(out, count)


def test_merged_shards_equal_one_process(tmp_path, single):
    out, shards = _sharded(tmp_path, 3)
    record = json.loads(run_json_path(shards[1]).read_text())
    assert record["configuration"]["shard"] == {"index": 1, "count": 3}
    assert record["settings"]["selected"] == SIZE
    assert [int(line.split("\t")[0]) for line in _lines(shards[1])[1:]] == [1, 4, 7, 10]

    summary = merge_shards(list(reversed(shards)), out, command=["merge"])
    assert (summary.rows, summary.shards) == (SIZE, 3)
    assert _lines(out)[0] == _lines(single)[0]
    assert [int(line.split("\t")[0]) for line in _lines(out)[1:]] == list(range(SIZE))
    assert _without_seconds(out) == _without_seconds(single)
    merged = json.loads(run_json_path(out).read_text())
    reference = json.loads(run_json_path(single).read_text())
    assert merged["configuration"] == reference["configuration"]
    assert [m["shard"]["index"] for m in merged["merged_from"]] == [0, 1, 2]
    # the merged file is an ordinary finished run: the single-process command has nothing to do
    assert _certify(out).written == 0
    # merging the same run again replaces it
    assert merge_shards(shards, out).rows == SIZE


def test_selection_comes_before_sharding(tmp_path):
    reference = tmp_path / "one.tsv"
    _certify(reference, skip=3, max_examples=4)
    out, shards = _sharded(tmp_path, 2, skip=3, max_examples=4)
    assert [int(line.split("\t")[0]) for line in _lines(shards[0])[1:]] == [0, 6]
    merge_shards(shards, out)
    assert [int(line.split("\t")[0]) for line in _lines(out)[1:]] == [0, 3, 6, 9]
    assert _without_seconds(out) == _without_seconds(reference)


def test_merge_refuses_shards_of_different_configurations(tmp_path):
    out = tmp_path / "merged.tsv"
    _certify(shard_path(out, 0, 2), Shard(0, 2))
    _certify(shard_path(out, 1, 2), Shard(1, 2), seed=6)
    before = _snapshot([out, run_json_path(out)])
    with pytest.raises(ValueError, match=r"belongs to another run .*seed: 5 vs 6"):
        merge_shards(shard_paths(out, 2), out)
    assert _snapshot([out, run_json_path(out)]) == before == {str(out): None,
                                                             str(run_json_path(out)): None}
    # another --max is a setting, not the configuration: caught as another selection
    other = tmp_path / "other"
    other.mkdir()
    mixed = other / "merged.tsv"
    _certify(shard_path(mixed, 0, 2), Shard(0, 2))
    _certify(shard_path(mixed, 1, 2), Shard(1, 2), max_examples=6)
    with pytest.raises(ValueError, match="selected 6 inputs, .* 13 \\(different --max"):
        merge_shards(shard_paths(mixed, 2), mixed)


def test_merge_refuses_missing_repeated_and_unsharded_files(tmp_path, single):
    out, shards = _sharded(tmp_path, 3)
    with pytest.raises(ValueError, match="missing shard.* 2/3"):
        merge_shards(shards[:2], out)
    with pytest.raises(ValueError, match="shard 1/3 is given twice"):
        merge_shards([*shards, shards[1]], out)
    copy = tmp_path / "copy.tsv"
    shutil.copy(shards[1], copy)
    shutil.copy(run_json_path(shards[1]), run_json_path(copy))
    with pytest.raises(ValueError, match="shard 1/3 is given twice"):
        merge_shards([*shards, copy], out)
    with pytest.raises(ValueError, match="not a shard"):
        merge_shards([single], out)
    (tmp_path / "two").mkdir()
    halves = _sharded(tmp_path / "two", 2)[1]
    with pytest.raises(ValueError, match="different numbers of shards"):
        merge_shards([*shards, *halves], out)
    with pytest.raises(ValueError, match="must not be one of the shards"):
        merge_shards(shards, shards[0])
    run_json_path(shards[2]).unlink()
    with pytest.raises(FileNotFoundError, match="no run record"):
        merge_shards(shards, out)
    assert not out.exists()


def test_merge_refuses_duplicated_foreign_and_missing_rows(tmp_path):
    out, shards = _sharded(tmp_path, 2)
    rows0, rows1 = _lines(shards[0]), _lines(shards[1])
    pristine = shards[0].read_bytes()

    # a row of shard 1 copied into shard 0: the index would appear twice
    shards[0].write_text("\n".join([*rows0, rows1[1]]) + "\n")
    with pytest.raises(ValueError, match=r"repeats rows already given: idx 1"):
        merge_shards(shards, out)
    # a row repeated inside one shard
    shards[0].write_text("\n".join([*rows0, rows0[2]]) + "\n")
    with pytest.raises(ValueError, match=r"repeats rows already given: idx 2"):
        merge_shards(shards, out)
    # a row of another input (idx 99 was never selected)
    shards[0].write_text("\n".join([*rows0, "99" + rows0[1][1:]]) + "\n")
    with pytest.raises(ValueError, match=r"not shard 0/2's inputs: idx 99"):
        merge_shards(shards, out)
    # rows missing: shard 0 must hold 0, 2, ..., 12 (7 rows)
    shards[0].write_text("\n".join(rows0[:-2]) + "\n")
    with pytest.raises(ValueError, match=r"lacks 2 of shard 0/2's 7 inputs \(idx 10, 12\)"):
        merge_shards(shards, out)
    shards[0].write_bytes(pristine)
    assert merge_shards(shards, out).rows == SIZE


def test_merge_refuses_an_output_of_another_run(tmp_path, single):
    out, shards = _sharded(tmp_path, 2)
    other = tmp_path / "other.tsv"
    _certify(other, seed=9, max_examples=2)
    before = _snapshot([other, run_json_path(other)])
    with pytest.raises(ValueError, match=r"other.tsv' belongs to another run .*seed: 9 vs 5"):
        merge_shards(shards, other)
    assert _snapshot([other, run_json_path(other)]) == before
    bare = tmp_path / "bare.tsv"
    bare.write_text("anything\n")
    with pytest.raises(ValueError, match="exists without its run record"):
        merge_shards(shards, bare)
    assert bare.read_text() == "anything\n"


def test_killed_shard_resumes_and_merge_equals_uninterrupted_run(tmp_path, single):
    out = tmp_path / "merged.tsv"
    _certify(shard_path(out, 0, 2), Shard(0, 2))
    killed = shard_path(out, 1, 2)
    # shard 1 (idx 1, 3, ..., 11): selection and estimation are one forward pass each, so the
    # 7th call is the 4th input's selection: 3 rows are written
    with pytest.raises(KeyboardInterrupt):
        _certify(killed, Shard(1, 2), model=Interrupting(Linear(), at_call=7))
    assert len(_lines(killed)) == 1 + 3
    # and a crash while writing the 4th row leaves a truncated line behind
    with open(killed, "ab") as fh:
        fh.write(b"7\t2\t2\t0.9")
    with pytest.raises(ValueError, match="ends in an incomplete line"):
        merge_shards(shard_paths(out, 2), out)
    assert not out.exists()
    summary = _certify(killed, Shard(1, 2))
    assert (summary.resumed, summary.written) == (3, 3)
    merge_shards(shard_paths(out, 2), out)
    assert _without_seconds(out) == _without_seconds(single)


def test_predict_shards_merge_like_certify_shards(tmp_path):
    from smoothcert.certify.dataset import predict_dataset

    smoothed = SmoothedClassifier(Linear(), get_noise("gaussian", dim=16, sigma=0.25), 3)
    reference = tmp_path / "one.tsv"
    predict_dataset(smoothed, _dataset(), reference, n=100, alpha=0.01, seed=2)
    out = tmp_path / "merged.tsv"
    for index in range(3):
        predict_dataset(smoothed, _dataset(), shard_path(out, index, 3), n=100, alpha=0.01,
                        seed=2, shard=Shard(index, 3))
    assert merge_shards(shard_paths(out, 3), out).rows == SIZE
    assert _lines(out)[0].split("\t")[3] == "p_value"
    assert _without_seconds(out) == _without_seconds(reference)


def test_merge_command(tmp_path, capsys):
    from smoothcert.cli.main import main

    out, shards = _sharded(tmp_path, 2)
    assert main(["merge", *map(str, shards), "--out", str(out)]) == 0
    assert f"merged {SIZE} rows from 2 shards" in capsys.readouterr().out
    assert main(["merge", str(shards[0]), "--out", str(tmp_path / "m.tsv")]) == 2
    assert "missing shard(s) 1/2" in capsys.readouterr().err
    assert not (tmp_path / "m.tsv").exists()


# ---------------------------------------------------------------------------------- processes
def _join_world(rank: int, size: int, port: int) -> World:
    torch.set_num_threads(1)
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(size), "LOCAL_RANK": str(rank)})
    return World.from_env()


def _spawn(worker, size: int, *args) -> None:
    """Run ``worker(rank, size, port, *args)`` in ``size`` processes forked from this one (no
    re-import of torch), joined to one gloo world on 127.0.0.1; fails if any of them fails."""
    mp.start_processes(worker, args=(size, _free_port(), *args), nprocs=size, join=True,
                       start_method="fork")


def _certify_worker(rank: int, size: int, port: int, out: str) -> None:
    world = _join_world(rank, size, port)
    run = run_sharded(lambda path, shard: _certify(path, shard), out, world=world,
                      device="cpu", command=["test"], timeout=WAIT)
    assert run.path == shard_path(out, rank, size) and (run.merged is not None) == (rank == 0)
    # every process returns after rank 0 has merged
    assert Path(out).exists()


def test_two_processes_certify_equals_one_process(tmp_path, single):
    out = tmp_path / "merged.tsv"
    _spawn(_certify_worker, 2, str(out))
    assert _without_seconds(out) == _without_seconds(single)
    assert len(_lines(shard_path(out, 1, 2))) == 1 + 6
    merged = json.loads(run_json_path(out).read_text())
    assert merged["configuration"] == json.loads(run_json_path(single).read_text())[
        "configuration"]


def test_run_sharded_refuses_shard_under_torchrun(tmp_path):
    with pytest.raises(ValueError, match="not both"):
        run_sharded(lambda path, shard: None, tmp_path / "x.tsv", world=World(0, 2),
                    device="cpu", shard=Shard(0, 2))


@pytest.fixture
def checkpoint(tmp_path):
    from smoothcert.models import get_model
    from smoothcert.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = get_model("mlp", dataset="digits")
    return save_checkpoint(tmp_path / "digits.pt", model=model, arch="mlp", dataset="digits",
                           num_classes=10, input_shape=(1, 8, 8), train_noise=None, config={},
                           epoch=1)


def _certify_argv(checkpoint, out, *extra) -> list[str]:
    # the untrained model is nearly constant near each input: most rows are certified
    return ["certify", "--checkpoint", str(checkpoint), "--dataset", "digits", "--noise",
            "gaussian", "--sigma", "0.01", "--n0", "10", "--n", "100", "--alpha", "0.01",
            "--skip", "50", "--max", "5", "--batch-size", "100", "--out", str(out), *extra]


def test_cli_shards_and_merge_equal_one_process(tmp_path, checkpoint, capsys):
    from smoothcert.cli.main import main

    single_out = tmp_path / "single.tsv"
    assert main(_certify_argv(checkpoint, single_out)) == 0
    out = tmp_path / "array.tsv"
    for index in (1, 0):
        assert main(_certify_argv(checkpoint, out, "--shard", f"{index}/2")) == 0
    assert "of shard 0/2" in capsys.readouterr().out and not out.exists()
    assert main(["merge", *map(str, shard_paths(out, 2)), "--out", str(out)]) == 0
    assert _without_seconds(out) == _without_seconds(single_out)
    assert sum(row["prediction"] != "-1" for row in _without_seconds(out)) >= 3
    with pytest.raises(SystemExit):
        main(_certify_argv(checkpoint, out, "--shard", "2/2"))
    assert "shard index must be in 0..1" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_certify_equals_one_process(tmp_path, checkpoint):
    from smoothcert.cli.main import main

    single_out = tmp_path / "single.tsv"
    assert main(_certify_argv(checkpoint, single_out)) == 0
    out = tmp_path / "torchrun.tsv"
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
               "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
               # "--": smoothcert's --n and --max are also prefixes of torchrun's options
               "--master-port", str(_free_port()), "-m", "--", "smoothcert.cli.main",
               *_certify_argv(checkpoint, out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert "merged 5 rows from 2 shards" in done.stdout
    assert _without_seconds(out) == _without_seconds(single_out)


# ---------------------------------------------------------------------------------- training
def test_processes_split_every_batch_into_the_same_examples():
    order = torch.randperm(21, generator=torch.Generator().manual_seed(0))
    batch, size = 6, 3
    parts = [rank_order(order, World(rank, size)) for rank in range(size)]
    per_rank = rank_batch_size(batch, World(0, size))
    assert per_rank == 2 and all(len(p) == 7 for p in parts)  # 21 examples: no padding
    for step in range(3):
        together = torch.cat([p[step * per_rank:(step + 1) * per_rank] for p in parts])
        assert sorted(together.tolist()) == sorted(order[step * batch:(step + 1) * batch].tolist())
    # an uneven number of examples: the last ones repeat so that every process has as many
    padded = [rank_order(order[:20], World(rank, 3)) for rank in range(3)]
    assert [len(p) for p in padded] == [7, 7, 7]
    assert set(torch.cat(padded).tolist()) == set(order[:20].tolist())
    assert torch.equal(rank_order(order, World()), order)
    with pytest.raises(ValueError, match="batch size 64 cannot be split evenly between 3"):
        rank_batch_size(64, World(0, 3))


def _train_config(tmp_path, name, **overrides):
    from smoothcert.training import TrainConfig

    # 16 examples in batches of 8: two optimizer steps
    fields = dict(dataset="digits", arch="mlp", epochs=1, max_train=16, max_eval=10,
                  batch_size=8, out=str(tmp_path / f"{name}.pt"))
    return TrainConfig(**{**fields, **overrides})


def _train_worker(rank: int, size: int, port: int, directory: str, overrides: dict) -> None:
    from smoothcert.training.loop import train

    world = _join_world(rank, size, port)
    config = _train_config(Path(directory), "ddp", **overrides)
    with process_group(world, "cpu", timeout=WAIT):
        result = train(config, world=world)
    torch.save({"state": result.model.state_dict(), "metrics": result.metrics},
               Path(directory) / f"rank{rank}.pt")


@pytest.mark.parametrize("overrides", [{}, {"noise": {"name": "gaussian", "sigma": 0.25}}],
                         ids=["clean", "noise"])
def test_data_parallel_training_keeps_the_ranks_in_step(tmp_path, overrides):
    from smoothcert.models.checkpoint import load_checkpoint
    from smoothcert.training.loop import train

    single = train(_train_config(tmp_path, "single", **overrides))
    # a step too small to move any weight: the initialization
    start = train(_train_config(tmp_path, "start", **{**overrides, "max_train": 1,
                                                       "batch_size": 1, "lr": 1e-30}))
    _spawn(_train_worker, 2, str(tmp_path), overrides)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    initial = dict(start.model.named_parameters())
    for name, value in single.model.named_parameters():
        # the processes hold identical weights after two steps ...
        assert torch.equal(ranks[0]["state"][name], ranks[1]["state"][name]), name
        # ... which moved away from the initialization
        assert not torch.allclose(ranks[0]["state"][name], initial[name])
        if not overrides:
            # without noise, the two processes' steps are one process's steps
            torch.testing.assert_close(ranks[0]["state"][name], value, rtol=1e-5, atol=1e-6)
    # rank 0 wrote the one checkpoint; metrics cover every example of every process
    saved = load_checkpoint(tmp_path / "ddp.pt")
    for name, value in saved.model.state_dict().items():
        assert torch.equal(value, ranks[0]["state"][name])
    (row,) = ranks[0]["metrics"]
    assert row == {**ranks[1]["metrics"][0], "seconds": row["seconds"]}
    if not overrides:
        assert row["train_loss"] == pytest.approx(single.metrics[0]["train_loss"], rel=1e-6)
        assert row["train_accuracy"] == single.metrics[0]["train_accuracy"]
        assert row["test_accuracy"] == single.metrics[0]["test_accuracy"]
    else:
        assert row["test_noisy_accuracy"] is not None


# ---------------------------------------------------------------------------------- split samples
def _split_worker(rank: int, size: int, port: int, directory: str) -> None:
    from smoothcert.certify.split_sample import certify_split

    world = _join_world(rank, size, port)
    smoothed = SmoothedClassifier(Linear(), get_noise("gaussian", dim=16, sigma=0.5), 3,
                                  batch_size=64)
    with process_group(world, "cpu", timeout=WAIT):
        certs = [certify_split(smoothed, x, 20, 700, 0.01, seed=3, idx=idx, chunk=100,
                               world=world) for idx, (x, _) in enumerate(_dataset()[:4])]
    (Path(directory) / f"split{rank}.json").write_text(json.dumps([_plain(c) for c in certs]))


def _plain(cert) -> list:
    return [cert.prediction, cert.p_lower, {k.value: v for k, v in cert.radius.items()},
            cert.counts.tolist()]


def test_split_samples_give_the_same_certificate_for_any_number_of_processes(tmp_path):
    from scipy.stats import beta, norm

    from smoothcert.certify.split_sample import (
        ESTIMATION,
        SELECTION,
        certify_split,
        chunk_generator,
    )
    from smoothcert.norms import Norm

    smoothed = SmoothedClassifier(Linear(), get_noise("gaussian", dim=16, sigma=0.5), 3,
                                  batch_size=64)
    alone = []
    for idx, (x, _) in enumerate(_dataset()[:4]):
        cert = certify_split(smoothed, x, 20, 700, 0.01, seed=3, idx=idx, chunk=100)
        # the counts are those of the chunks' own streams: 7 chunks of 100 for n = 700
        estimation = sum(smoothed.class_counts(x, 100, chunk_generator(3, idx, ESTIMATION, c))
                         for c in range(7))
        # n0 = 20: one chunk
        selection = smoothed.class_counts(x, 20, chunk_generator(3, idx, SELECTION, 0))
        assert cert.counts.tolist() == estimation.tolist()
        top = int(selection.argmax())
        p_lower = beta.ppf(0.01, estimation[top], 700 - estimation[top] + 1)
        assert cert.p_lower == pytest.approx(p_lower, rel=1e-10)
        if p_lower > 0.5:
            assert cert.prediction == top
            assert cert.radius[Norm.L2] == pytest.approx(0.5 * norm.ppf(p_lower), rel=1e-9)
        alone.append(_plain(cert))
    assert any(c[0] != -1 for c in alone)
    _spawn(_split_worker, 2, str(tmp_path))
    for rank in range(2):
        assert json.loads((tmp_path / f"split{rank}.json").read_text()) == alone


@pytest.mark.slow
def test_torchrun_train(tmp_path):
    from smoothcert.models.checkpoint import load_checkpoint

    out = tmp_path / "ddp.pt"
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
               "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
               "--master-port", str(_free_port()), "-m", "--", "smoothcert.cli.main",
               "train", "--dataset", "digits", "--arch", "mlp", "--epochs", "2",
               "--max-train", "16", "--batch-size", "8", "--max-eval", "10", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    # rank 0 alone reports and writes
    assert done.stdout.count("checkpoint:") == 1
    assert done.stderr.count("epoch 2/2") == 1
    assert load_checkpoint(out).epoch == 2
