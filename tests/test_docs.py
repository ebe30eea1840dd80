"""The documentation cannot drift from the code.

- Every ``smoothcert ...`` command line in a shell block of README.md and docs/*.md parses with
  the real parser, and every option named in inline code (`--flag value`) exists with a valid
  value.
- Blocks marked for it run, in document order, in a temporary folder: a fenced block whose info
  string is ``bash test`` or ``python test``, and ``python file=NAME`` blocks, which are written
  to NAME; python blocks share one namespace. A document with ``... test slow`` blocks is also
  run whole (those blocks included) under ``-m slow``. Commands run at small scale:
  ``SMALL`` replaces the values of the flags that set the amount of work, certify and predict get
  ``--max 3``, the demo gets ``--quick``; ``PY_SMALL`` replaces text in python blocks.
- ``--help`` of every command works.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from smoothcert.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELLS = {"bash", "sh", "shell", "console"}
#: values of the environment variables the examples use
PLACEHOLDERS = {"SLURM_ARRAY_TASK_ID": "0", "SMOOTHCERT_DATA_DIR": "/path/to/data"}
#: options of other programs named in the docs' inline code (torchrun's, pip's)
FOREIGN = {"--nnodes", "--max-restarts", "--nproc-per-node", "--standalone", "--no-python",
           "--rdzv-backend", "--rdzv-endpoint", "--rdzv-id"}
#: flags that set the amount of work, and their values in a tested run
SMALL = {"--epochs": "1", "--n": "100", "--n0": "20"}
#: the same for python blocks: text replacements
PY_SMALL = {"n=100_000": "n=500"}
TESTED_MAX = "3"


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    tags: tuple[str, ...]
    text: str

    @property
    def where(self) -> str:
        path = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{path}:{self.line}"


_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    found = []
    for match in _FENCE.finditer(text):
        info = match.group(1).split()
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(path, line, info[0] if info else "", tuple(info[1:]), match.group(2)))
    return found


def prose(path: Path) -> str:
    """The text outside fenced blocks."""
    return _FENCE.sub("", path.read_text())


def commands(text: str) -> list[str]:
    """Shell command lines of a block: continuations joined, comments and blanks dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def substitute(line: str) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name not in PLACEHOLDERS:
            raise AssertionError(f"no placeholder for ${name} in {line!r}: add it to "
                                 f"PLACEHOLDERS")
        return PLACEHOLDERS[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, line)


def smoothcert_argv(line: str) -> list[str] | None:
    """The arguments after ``smoothcert`` in a command line (also after torchrun's ``--``)."""
    tokens = shlex.split(substitute(line), comments=True)
    for i, token in enumerate(tokens):
        if token == "smoothcert" and (i == 0 or tokens[i - 1] == "--"):
            return tokens[i + 1:]
    return None


def _documented_commands() -> list[tuple[str, list[str]]]:
    found = []
    for path in DOCS:
        for block in blocks(path):
            if block.lang in SHELLS:
                for line in commands(block.text):
                    argv = smoothcert_argv(line)
                    if argv is not None:
                        found.append((f"{block.where} {' '.join(argv)[:60]}", argv))
    return found


COMMANDS = _documented_commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize("argv", [c[1] for c in COMMANDS], ids=[c[0] for c in COMMANDS])
def test_documented_command_parses(argv, capsys):
    if "--help" in argv or "-h" in argv:
        argv = [a for a in argv if a not in ("--help", "-h")]
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"smoothcert {' '.join(argv)}: {capsys.readouterr().err.strip()}")


#: a run is long when it asks for this much work
LONG = {"--n": 10_000, "--epochs": 10}
#: a document may state its examples' times once, in a paragraph starting with this
TIMES_NOTE = "How long the examples take"


def _is_long(argv: list[str]) -> bool:
    if argv[:1] == ["demo"] and "--quick" not in argv:
        return True
    for flag, limit in LONG.items():
        if flag in argv[:-1]:
            try:
                if float(argv[argv.index(flag) + 1]) >= limit:
                    return True
            except ValueError:
                pass
    return False


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_long_examples_say_how_long_they_take(path):
    """Near every long example (or in the document's note on times), the text says how long it
    takes on a CPU and on a GPU."""
    text = path.read_text()
    if TIMES_NOTE in text:
        return
    silent = []
    for match in _FENCE.finditer(text):
        if (match.group(1).split() or [""])[0] not in SHELLS:
            continue
        argvs = [smoothcert_argv(line) for line in commands(match.group(2))]
        if any(argv is not None and _is_long(argv) for argv in argvs):
            near = text[max(0, match.start() - 800):match.end() + 800]
            if "CPU" not in near or "GPU" not in near:
                silent.append(f"line {text.count(chr(10), 0, match.start()) + 1}")
    assert not silent, f"{path.name}: long examples without their CPU and GPU times: {silent}"


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions
                  if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: action for action in parser._actions for flag in action.option_strings}


def _value_problem(action: argparse.Action, value: str) -> str | None:
    if action.nargs == 0:
        return None
    if action.choices is not None and value not in action.choices:
        return f"{value!r} is not one of {sorted(action.choices)}"
    if callable(action.type):
        try:
            action.type(value)
        except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
            return f"{value!r}: {exc}"
    return None


_PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_:/,.|-]*$")  # FILE, NAME, MEAN,STD, I/N, ...


def _inline_problems(span: str, parsers: dict[str, argparse.ArgumentParser]) -> list[str]:
    tokens = span.split()
    if tokens[0] == "smoothcert":
        if len(tokens) < 2 or tokens[1] not in parsers:
            return [f"{span!r}: no command {tokens[1:2]}"] if len(tokens) > 1 else []
        candidates = [_options(parsers[tokens[1]])]
        tokens = tokens[2:]
    else:
        candidates = [_options(p) for p in parsers.values()]
    problems = []
    for i, token in enumerate(tokens):
        if not token.startswith("--") or token == "--" or token in FOREIGN:
            continue
        flag = token.split("=", 1)[0]
        actions = [options[flag] for options in candidates if flag in options]
        if not actions:
            problems.append(f"{span!r}: no command has the option {flag}")
            continue
        value = token.split("=", 1)[1] if "=" in token else (
            tokens[i + 1] if i + 1 < len(tokens) else None)
        if value is None or value.startswith("--") or _PLACEHOLDER.match(value):
            continue
        checks = [_value_problem(action, value) for action in actions]
        if all(checks):
            problems.append(f"{span!r}: {checks[0]}")
    return problems


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_inline_options_exist_with_valid_values(path):
    parsers = _subparsers()
    spans = re.findall(r"`([^`\n]+)`", prose(path))
    spans = [s.strip() for s in spans if s.strip().startswith(("--", "smoothcert "))]
    problems = [p for span in spans for p in _inline_problems(span, parsers)]
    assert not problems, "\n".join(problems)


def test_the_inline_check_catches_a_drifted_option():
    parsers = _subparsers()
    assert _inline_problems("--autocast bfloat16", parsers)
    assert not _inline_problems("--autocast bf16", parsers)
    assert _inline_problems("smoothcert certify --no-such-flag", parsers)
    assert not _inline_problems("--shard I/N", parsers)


@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_help_of_every_command(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"smoothcert {command}" in capsys.readouterr().out


# -- running the marked blocks -----------------------------------------------------------------

def small(argv: list[str]) -> list[str]:
    """``argv`` at the tested scale (see the module docstring)."""
    out = list(argv)
    for i, token in enumerate(out[:-1]):
        if token in SMALL:
            out[i + 1] = SMALL[token]
    if out and out[0] in ("certify", "predict"):
        if "--max" in out:
            out[out.index("--max") + 1] = TESTED_MAX
        else:
            out += ["--max", TESTED_MAX]
    if out and out[0] == "train" and "--max-train" not in out:
        out += ["--max-train", "300", "--max-eval", "100"]
    if out and out[0] == "demo" and "--quick" not in out:
        out.append("--quick")
    return out


def _run_block(block: Block, namespace: dict, capsys, monkeypatch) -> None:
    if block.lang == "python":
        text = block.text
        for old, new in PY_SMALL.items():
            text = text.replace(old, new)
        exec(compile(text, block.where, "exec"), namespace)
        return
    for line in commands(block.text):
        if line.startswith("export "):
            name, _, value = line[len("export "):].partition("=")
            monkeypatch.setenv(name.strip(), substitute(shlex.split(value)[0]))
            continue
        argv = smoothcert_argv(line)
        if argv is None:
            pytest.fail(f"{block.where}: a tested block may hold smoothcert commands and "
                        f"exports only, got {line!r}")
        argv = small(argv)
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's errors
            code = exc.code
        assert code == 0, (f"{block.where}: smoothcert {' '.join(argv)} exited {code}: "
                           f"{capsys.readouterr().err[-2000:]}")


def _tested(path: Path, slow: bool) -> list[Block]:
    """The blocks to run, in order: the ``file=`` and ``test`` blocks, and with ``slow`` also the
    ``test slow`` ones (the whole document; without ``slow``, None if it has no slow block)."""
    chosen = [b for b in blocks(path) if "test" in b.tags and (slow or "slow" not in b.tags)
              or any(t.startswith("file=") for t in b.tags)]
    if slow and not any("slow" in b.tags for b in chosen):
        return []
    return chosen


def _run_doc(path: Path, slow: bool, tmp_path: Path, capsys, monkeypatch) -> None:
    chosen = _tested(path, slow)
    if not any("test" in b.tags for b in chosen):
        pytest.skip(f"no {'slow ' if slow else ''}tested blocks in {path.name}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # so that tested code imports the files written
    monkeypatch.setattr(sys, "argv", ["smoothcert"])
    namespace: dict = {"__name__": "__docs__"}  # python blocks share it, as in a notebook
    for block in chosen:
        names = [t[len("file="):] for t in block.tags if t.startswith("file=")]
        if names:
            (tmp_path / names[0]).write_text(block.text)
        else:
            _run_block(block, namespace, capsys, monkeypatch)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_marked_blocks_run(path, tmp_path, capsys, monkeypatch):
    _run_doc(path, False, tmp_path, capsys, monkeypatch)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_marked_slow_blocks_run(path, tmp_path, capsys, monkeypatch):
    _run_doc(path, True, tmp_path, capsys, monkeypatch)


def test_small_scales_the_work_down():
    assert small(["certify", "--n", "100000", "--out", "x"]) == [
        "certify", "--n", "100", "--out", "x", "--max", TESTED_MAX]
    assert small(["train", "--epochs", "120"]) == ["train", "--epochs", "1", "--max-train",
                                                    "300", "--max-eval", "100"]
    assert small(["demo"]) == ["demo", "--quick"]


def test_a_failing_block_fails(tmp_path, capsys, monkeypatch):
    doc = tmp_path / "doc.md"
    doc.write_text("```bash test\nsmoothcert analyze no-such-file.tsv\n```\n")
    with pytest.raises(AssertionError, match="doc.md:1: smoothcert analyze no-such-file.tsv "
                                             "exited 2"):
        _run_doc(doc, False, tmp_path, capsys, monkeypatch)
    doc.write_text("```bash test\nls\n```\n")
    with pytest.raises(pytest.fail.Exception, match="smoothcert commands and exports only"):
        _run_doc(doc, False, tmp_path, capsys, monkeypatch)


# -- the developer map and the layering rules -------------------------------------------------

PACKAGE = ROOT / "src" / "smoothcert"


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def test_the_map_names_every_package_and_module():
    section = _readme_section("For developers: where things live")
    map_block = _FENCE.search(section).group(2)
    named = set(re.findall(r"^  (\S+?)/?\s", map_block, re.M))
    named.discard("src/smoothcert")
    actual = {p.name for p in PACKAGE.glob("*.py")} | {
        str(p.parent.relative_to(PACKAGE)) for p in PACKAGE.rglob("__init__.py")
        if p.parent != PACKAGE and p.parent.parent in (PACKAGE, PACKAGE / "noises")}
    assert named == actual, (f"README's map names {sorted(named - actual)} that do not exist and "
                             f"misses {sorted(actual - named)}")


def _layers() -> list[set[str]]:
    section = _readme_section("For developers: where things live")
    chain = section[section.index("`cli` →"):]
    chain = chain[:chain.index(".\n")]
    return [set(re.findall(r"`(\w+)`", part)) for part in chain.split("→")]


def _module_imports() -> dict[str, set[str]]:
    """smoothcert module -> the smoothcert modules it imports at module level."""
    import ast

    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.parse(path.read_text()).body:
            for sub in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
                if isinstance(sub, ast.Import):
                    found |= {a.name for a in sub.names}
                elif isinstance(sub, ast.ImportFrom) and sub.module and sub.level == 0:
                    found.add(sub.module)
                    found |= {f"{sub.module}.{a.name}" for a in sub.names}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_imports_follow_the_layers_without_cycles():
    layers = _layers()
    level = {name: i for i, layer in enumerate(layers) for name in layer}
    graph = _module_imports()
    packages = {_package(m) for m in graph} - {""}
    assert packages <= set(level), f"packages missing from the layers: {packages - set(level)}"
    upward = sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps
                    if _package(m) and _package(d) and level[_package(d)] < level[_package(m)])
    assert not upward, "imports against the layers:\n" + "\n".join(upward)
    between: dict[str, set[str]] = {}
    for m, deps in graph.items():
        for d in deps:
            if _package(m) and _package(d) and _package(m) != _package(d):
                between.setdefault(_package(m), set()).add(_package(d))
    for start in between:  # no cycle through start
        seen, stack = set(), list(between[start])
        while stack:
            node = stack.pop()
            assert node != start, f"an import cycle through {start}"
            if node not in seen:
                seen.add(node)
                stack.extend(between.get(node, ()))


def test_the_library_rules():
    """No print and no device choice outside the CLI; matplotlib only where the README says."""
    import ast

    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = str(path.relative_to(PACKAGE))
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if where.startswith("cli/"):
                break
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                problems.append(f"{where}:{node.lineno} prints")
            if isinstance(node, ast.Attribute) and node.attr == "is_available" and getattr(
                    node.value, "attr", None) == "cuda":
                problems.append(f"{where}:{node.lineno} picks a device")
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "matplotlib" for n in names) and not where.startswith(
                    "plots/"):
                problems.append(f"{where}:{node.lineno} imports matplotlib")
    assert not problems, "\n".join(problems)
