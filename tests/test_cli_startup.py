"""The command line starts without the heavy libraries, and its static view of the registries
(read from the source by ``smoothcert.cli._catalog``) equals the live registries."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("torch", "scipy", "numpy", "matplotlib", "pandas", "tqdm")

#: commands whose own module needs numpy (the analysis of results files); --help of the others
#: imports none of HEAVY. They run last: the modules seen accumulate in one process.
NUMPY_COMMANDS = ("analyze", "plot", "demo")

_HELP_ALL = """
import json, sys
from smoothcert.cli.main import _subcommands, main
seen = {}
late = %r
for command in [None, *[c for c in _subcommands() if c not in late], *late]:
    try:
        main(([command] if command else []) + ["--help"])
    except SystemExit:
        pass
    seen[command or ""] = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps(seen))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}


def test_help_of_every_command_imports_no_heavy_library():
    done = subprocess.run([sys.executable, "-c", _HELP_ALL % (NUMPY_COMMANDS,)],
                          capture_output=True, text=True, env=_env(), check=True)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"", "certify", "predict", "train", "risk", "sweep", "analyze", "plot"} <= set(seen)
    for command, modules in seen.items():
        heavy = set(HEAVY) - ({"numpy"} if command in NUMPY_COMMANDS else set())
        assert not heavy & set(modules), \
            f"smoothcert {command} --help imported {sorted(heavy & set(modules))}"


def test_help_is_fast():
    # `python -X importtime`: no heavy module appears before a subcommand runs
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "smoothcert.cli.main",
                           "--help"], capture_output=True, text=True, env=_env(), check=True)
    seconds = time.perf_counter() - start
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert not {m for m in imported if m.split(".")[0] in HEAVY}
    assert "certify" in done.stdout and "train" in done.stdout
    # loose: CI machines are noisy (about 0.3 s on an idle 2-core machine)
    assert seconds < 3.0, f"smoothcert --help took {seconds:.2f} s"


def test_catalog_equals_the_live_registries():
    from smoothcert.cli import _catalog
    from smoothcert.data import list_datasets
    from smoothcert.models import list_models
    from smoothcert.noises import list_noises, noise_class

    static = _catalog._static_families()
    assert set(static) == set(list_noises()) - _runtime_families()
    for name, family in static.items():
        cls = noise_class(name)
        fields = [f.name for f in dataclasses.fields(cls) if f.name not in ("dim", "sigma")]
        assert [f.name for f in family.fields] == fields, name
        assert family.module == cls.__module__
    assert set(_catalog._static_names("data", "register_dataset")) <= set(list_datasets())
    assert set(_catalog.dataset_names()) == set(list_datasets())
    assert set(_catalog.model_names()) == set(list_models())


def _runtime_families() -> set[str]:
    """Families registered by tests (outside the package)."""
    from smoothcert.noises import list_noises, noise_class

    return {n for n in list_noises() if not noise_class(n).__module__.startswith("smoothcert.")}


def test_static_choices_equal_the_library():
    from smoothcert.certify.classifier import CERTIFY_MODES
    from smoothcert.cli import certify
    from smoothcert.cli._catalog import class_field_default, module_dict_keys
    from smoothcert.stats import BOUNDS
    from smoothcert.training import RECIPES, TrainConfig

    assert tuple(certify.MODES) == tuple(CERTIFY_MODES)
    assert set(certify.BOUNDS) == set(BOUNDS)
    assert module_dict_keys("training.config", "RECIPES") == sorted(RECIPES)
    assert class_field_default("training.config", "TrainConfig", "stability_weight") == \
        TrainConfig(dataset="", arch="").stability_weight


def test_shape_flags_come_from_the_families_fields():
    from smoothcert.cli._noise_args import shape_flags

    flags = shape_flags()
    assert {"k", "j", "a", "p"} <= set(flags)
    assert "exp_p (default 2.0)" in flags["p"][1]


def test_verbose_after_the_command_and_no_prefix_matching(capsys):
    from smoothcert.cli.main import build_parser, main

    args = build_parser().parse_args(["sweep", "x.toml", "-v", "-v"])
    assert args.verbose + args.verbose_after == 2
    args = build_parser().parse_args(["-v", "sweep", "x.toml"])
    assert args.verbose + args.verbose_after == 1
    args = build_parser("plot").parse_args(["plot", "radius", "--noises", "gaussian", "--dim",
                                            "4", "--norm", "l2", "--out", "r.png", "-vv"])
    assert args.verbose + args.verbose_after == 2
    with pytest.raises(SystemExit) as exc:
        main(["train", "--dataset", "digits", "--arch", "mlp", "--epochs", "1",
              "--max-trai", "5"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --max-trai" in capsys.readouterr().err
