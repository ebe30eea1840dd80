"""Users' own models: a plain state_dict for a registered architecture, TorchScript and
torch.export archives, a Python factory; the refusals (a pickled model, mismatched keys, the
wrong output width) and the command-line options that load them."""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap

import pytest
import torch
from torch import nn

from smoothcert.data import dataset_info
from smoothcert.models import get_model
from smoothcert.models.user import (
    check_sources,
    file_kind,
    load_user_model,
    parse_normalize,
    read_state_dict,
)

INFO = dataset_info("digits")  # (1, 8, 8), 10 classes; nothing is read
SIDE_EFFECTS: list[str] = []


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _inputs() -> torch.Tensor:
    return torch.rand(5, *INFO.shape, generator=torch.Generator().manual_seed(3))


class Tiny(nn.Module):
    """A linear classifier on digits' 1x8x8 inputs."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


class RunsCodeWhenUnpickled:
    """Unpickling this object would append to SIDE_EFFECTS (as a malicious pickle would)."""

    def __reduce__(self):
        return (SIDE_EFFECTS.append, ("unpickled",))


# -- a state_dict for a registered architecture ------------------------------------------------

def test_plain_state_dict_of_the_network(tmp_path):
    net = get_model("mlp", dataset="digits").network.eval()
    path = tmp_path / "weights.pt"
    torch.save(net.state_dict(), path)
    loaded = load_user_model(INFO, arch="mlp", weights=path)
    x = _inputs()
    torch.testing.assert_close(loaded.model(x), net(x))
    assert loaded.description == {"source": "state_dict", "arch": "mlp",
                                  "weights_sha256": _sha256(path), "normalize": None}
    assert loaded.files == {"weights": str(path)}
    assert not loaded.model.training
    json.dumps(loaded.description)


def test_nested_state_dict_with_ddp_prefix(tmp_path):
    net = get_model("mlp", dataset="digits").network.eval()
    path = tmp_path / "trainer.ckpt"
    state = {f"module.{k}": v for k, v in net.state_dict().items()}
    torch.save({"epoch": 3, "state_dict": state, "optimizer": {"lr": 0.1}}, path)
    x = _inputs()
    torch.testing.assert_close(load_user_model(INFO, arch="mlp", weights=path).model(x), net(x))


def test_full_model_state_dict_keeps_its_normalization(tmp_path):
    full = get_model("mlp", dataset="digits").eval()
    path = tmp_path / "full.pt"
    torch.save(full.state_dict(), path)
    loaded = load_user_model(INFO, arch="mlp", weights=path)
    x = _inputs()
    torch.testing.assert_close(loaded.model(x), full(x))
    assert loaded.description["normalize"] == "in the weights"
    with pytest.raises(ValueError, match="own normalization layer.*drop --normalize"):
        load_user_model(INFO, arch="mlp", weights=path, normalize="0.5,0.25")


def test_normalize_is_prepended_in_pixel_space(tmp_path):
    net = get_model("mlp", dataset="digits").network.eval()
    path = tmp_path / "weights.pt"
    torch.save(net.state_dict(), path)
    loaded = load_user_model(INFO, arch="mlp", weights=path, normalize="0.5,0.25")
    x = _inputs()
    # by hand: the network sees (x - 0.5) / 0.25
    torch.testing.assert_close(loaded.model(x), net((x - 0.5) * 4.0))
    assert loaded.description["normalize"] == {"mean": [0.5], "std": [0.25]}


def test_mismatched_keys_are_listed(tmp_path):
    state = get_model("mlp", dataset="digits").network.state_dict()
    first = next(iter(state))
    state["extra.weight"] = torch.zeros(2)
    del state[first]
    path = tmp_path / "weights.pt"
    torch.save(state, path)
    with pytest.raises(ValueError) as info:
        load_user_model(INFO, arch="mlp", weights=path)
    message = str(info.value)
    assert f"missing keys: {first}" in message and "unexpected keys: extra.weight" in message


def test_wrong_shapes_are_listed(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(get_model("mlp", dataset="digits", num_classes=3).network.state_dict(), path)
    with pytest.raises(ValueError, match=r"shapes \(weights vs model\): .*\(3"):
        load_user_model(INFO, arch="mlp", weights=path)


def test_a_pickled_model_is_refused_without_running_its_code(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"model": RunsCodeWhenUnpickled()}, path)
    with pytest.raises(ValueError) as info:
        load_user_model(INFO, arch="mlp", weights=path)
    message = str(info.value)
    assert "\n" not in message
    assert "does not unpickle" in message and "torch.save(model.state_dict(), FILE)" in message
    assert "torch.export.save(torch.export.export(model, (x,)), FILE)" in message
    assert SIDE_EFFECTS == []
    # the same file given as a model archive is refused with the same advice
    with pytest.raises(ValueError, match="does not unpickle.*torch.save\\(model.state_dict"):
        load_user_model(INFO, model=path)
    assert SIDE_EFFECTS == []


def test_whole_module_pickle_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(Tiny(), path)
    with pytest.raises(ValueError, match="pickled Python object"):
        read_state_dict(path)


# -- archives --------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit in torch >= 2.10
def test_torchscript_archive_is_recognized_by_content(tmp_path):
    model = Tiny().eval()
    path = tmp_path / "model.bin"  # no telling suffix
    torch.jit.save(torch.jit.trace(model, torch.zeros(2, *INFO.shape)), str(path))
    assert file_kind(path) == "torchscript"
    loaded = load_user_model(INFO, model=path)
    x = _inputs()
    torch.testing.assert_close(loaded.model(x), model(x))
    assert loaded.description == {"source": "torchscript", "sha256": _sha256(path),
                                  "normalize": None}
    # given as weights, it is named for what it is
    with pytest.raises(ValueError, match="torchscript archive, not weights: pass it as --model"):
        load_user_model(INFO, arch="mlp", weights=path)
    with pytest.raises(ValueError, match="is a torchscript archive: pass --model FILE"):
        check_sources(arch=None, weights=path, model=None)


def test_export_archive_with_dynamic_batch(tmp_path):
    model = Tiny().eval()
    program = torch.export.export(model, (torch.zeros(2, *INFO.shape),),
                                  dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    path = tmp_path / "model.pt2"
    torch.export.save(program, path)
    assert file_kind(path) == "torch.export"
    loaded = load_user_model(INFO, model=path, normalize=[0.5, 2.0])
    loaded.model.eval()  # an exported module raises on eval(); the wrapper does not
    x = _inputs()
    torch.testing.assert_close(loaded.model(x), model((x - 0.5) / 2.0))
    assert loaded.description["source"] == "torch.export"
    assert loaded.description["sha256"] == _sha256(path)


def test_export_archive_with_a_static_batch_is_refused(tmp_path):
    program = torch.export.export(Tiny().eval(), (torch.zeros(2, *INFO.shape),))
    path = tmp_path / "model.pt2"
    torch.export.save(program, path)
    with pytest.raises(ValueError, match="batch of 1 .*dynamic batch dimension"):
        load_user_model(INFO, model=path)


def test_a_state_dict_is_not_a_model_archive(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(Tiny().state_dict(), path)
    assert file_kind(path) == "torch.save"
    with pytest.raises(ValueError, match="holds weights, not a model.*--arch NAME --weights"):
        load_user_model(INFO, model=path)


def test_a_smoothcert_checkpoint_is_not_a_model_archive(tmp_path):
    from smoothcert.models.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / "c.pt", model=get_model("mlp", dataset="digits"),
                           arch="mlp", dataset="digits", num_classes=10, input_shape=(1, 8, 8),
                           train_noise=None, config={}, epoch=1)
    with pytest.raises(ValueError, match="is a smoothcert checkpoint: pass --checkpoint"):
        load_user_model(INFO, model=path)


# -- a factory -------------------------------------------------------------------------------

def _write_module(tmp_path, classes: int = 10):
    source = tmp_path / "my_models.py"
    source.write_text(textwrap.dedent(f"""
        import torch
        from torch import nn

        def build():
            return nn.Sequential(nn.Flatten(), nn.Linear(64, {classes}))
    """))
    return source


def test_factory_from_a_file_with_weights(tmp_path):
    source = _write_module(tmp_path)
    reference = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()
    weights = tmp_path / "w.pt"
    torch.save(reference.state_dict(), weights)
    loaded = load_user_model(INFO, model=f"{source}:build", weights=weights)
    x = _inputs()
    torch.testing.assert_close(loaded.model(x), reference(x))
    assert loaded.description == {"source": "factory", "factory": "my_models.py:build",
                                  "source_sha256": _sha256(source),
                                  "weights_sha256": _sha256(weights), "normalize": None}


def test_factory_from_an_importable_module(tmp_path, monkeypatch, request):
    _write_module(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    # the import caches my_models in sys.modules: forget it afterwards, or a later test's own
    # my_models (docs/models.md has one) would get this one
    request.addfinalizer(lambda: sys.modules.pop("my_models", None))
    loaded = load_user_model(INFO, model="my_models:build")
    assert loaded.description["factory"] == "my_models:build"
    with pytest.raises(ValueError, match="has no attribute 'nothing'"):
        load_user_model(INFO, model="my_models:nothing")
    with pytest.raises(ValueError, match="cannot import module 'no_such_module_xyz'"):
        load_user_model(INFO, model="no_such_module_xyz:build")


def test_output_width_is_checked_against_the_dataset(tmp_path):
    source = _write_module(tmp_path, classes=7)
    with pytest.raises(ValueError, match=r"returns shape \(2, 7\).*'digits' has 10 classes"):
        load_user_model(INFO, model=f"{source}:build")


def test_a_model_that_fails_on_the_input_shape(tmp_path):
    source = tmp_path / "bad.py"
    source.write_text("from torch import nn\ndef build():\n    return nn.Linear(5, 10)\n")
    with pytest.raises(ValueError, match=r"fails on a batch of 2 inputs of shape \(1, 8, 8\)"):
        load_user_model(INFO, model=f"{source}:build")


# -- arguments -------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"arch": "mlp", "weights": None, "model": None}, "--arch mlp needs --weights"),
    ({"arch": "mlp", "weights": "w.pt", "model": "m:f"}, "not both"),
    ({"arch": None, "weights": "w.pt", "model": None}, "--weights needs --arch"),
])
def test_source_combinations(kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_sources(**kwargs)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights file .*nope.pt"):
        load_user_model(INFO, arch="mlp", weights=tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError, match="model file .*nope.pt2"):
        load_user_model(INFO, model=str(tmp_path / "nope.pt2"))


def test_parse_normalize():
    assert parse_normalize("0.1,0.2,0.3,1,2,3", 3) == ((0.1, 0.2, 0.3), (1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="needs 6 numbers for 3 channel"):
        parse_normalize("0.5,0.25", 3)
    with pytest.raises(ValueError, match="std must be > 0"):
        parse_normalize("0.5,0", 1)
    with pytest.raises(ValueError, match="comma-separated numbers"):
        parse_normalize("a,b", 1)


# -- the command line ------------------------------------------------------------------------

RUN = ["--noise", "gaussian", "--sigma", "0.25", "--max", "2", "--skip", "50", "--batch-size",
       "50"]


def test_certify_a_state_dict_from_the_command_line(tmp_path, capsys):
    from smoothcert.cli.main import main
    from smoothcert.runs.results import run_json_path

    weights = tmp_path / "weights.pt"
    torch.save(get_model("mlp", dataset="digits").network.state_dict(), weights)
    out = tmp_path / "run.tsv"
    code = main(["certify", "--arch", "mlp", "--weights", str(weights), "--normalize",
                 "0.3,0.4", "--dataset", "digits", *RUN, "--n0", "10", "--n", "50",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    record = json.loads(run_json_path(out).read_text())
    text = json.dumps(record)
    assert _sha256(weights) in text and '"arch": "mlp"' in text
    assert len(out.read_text().splitlines()) == 3  # header + 2 inputs


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit in torch >= 2.10
def test_predict_a_torchscript_model_from_the_command_line(tmp_path, capsys):
    from smoothcert.cli.main import main

    path = tmp_path / "model.ts"
    torch.jit.save(torch.jit.script(Tiny().eval()), str(path))
    out = tmp_path / "pred.tsv"
    code = main(["predict", "--model", str(path), "--dataset", "digits", *RUN, "--n", "20",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert _sha256(path) in out.with_suffix(".json").read_text()


@pytest.mark.parametrize("flags, message", [
    (["--checkpoint", "c.pt", "--arch", "mlp"], "not allowed with argument"),
    (["--arch", "mlp", "--weights", "w.pt"], "--arch needs --dataset"),
    (["--checkpoint", "c.pt", "--weights", "w.pt"], "--weights go with --arch or --model"),
    (["--dataset", "digits"], "one of the arguments --checkpoint --arch --model is required"),
    (["--checkpoint", "c.pt"], "your own model's weights load with --arch NAME --weights FILE"),
])
def test_model_flags_are_checked_before_anything_is_written(tmp_path, capsys, flags, message):
    from smoothcert.cli.main import main

    if "--checkpoint" in flags:  # a plain state_dict, which --checkpoint refuses
        flags = [str(tmp_path / "c.pt") if f == "c.pt" else f for f in flags]
        torch.save(Tiny().state_dict(), tmp_path / "c.pt")

    out = tmp_path / "x.tsv"
    try:
        code = main(["certify", *flags, *RUN, "--out", str(out)])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] in ([], ["c.pt"])



def test_the_documented_refusal_is_the_real_message(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    from smoothcert.cli.main import main

    doc = (Path(__file__).resolve().parents[1] / "docs" / "models.md").read_text()
    section = doc.split("## What is refused", 1)[1]
    quoted = " ".join(section.split("```\n", 2)[1].split())
    monkeypatch.chdir(tmp_path)
    torch.save(Tiny(), "model.pt")
    code = main(["certify", "--arch", "mlp", "--weights", "model.pt", "--dataset", "digits",
                 *RUN, "--out", "x.tsv"])
    assert code == 2
    assert capsys.readouterr().err.strip() == quoted
