"""The package's runtime import graph has no cycles.

Every module of ``smoothcert`` is parsed with ``ast`` (nothing is imported), and each ``import``
statement, wherever it stands (module level or inside a function: a lazy import is still an
import at run time), adds an edge from the module to the module it names. Imports under ``if
TYPE_CHECKING:`` are skipped: they never run. Importing ``a.b.c`` also runs the ``__init__`` of
the packages ``a`` and ``a.b``; those edges are added too, except to the importer's own enclosing
packages (which are necessarily initialised before it).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "smoothcert"


def _modules() -> dict[str, Path]:
    """Module name -> file, for every module of the package (packages by their __init__)."""
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> list[str]:
    """Absolute names of everything imported at run time by ``tree``."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[:len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # "from a import b" imports a.b when b is a module, else a name of a
            names.extend(f"{prefix}.{alias.name}" for alias in node.names)
            names.append(prefix)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        own_packages = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)}
        if is_package:
            own_packages.add(name)
        for target in _imported_names(tree, name, is_package):
            if not (target == PACKAGE or target.startswith(PACKAGE + ".")):
                continue
            parts = target.split(".")
            # the target module (or the deepest module named by the dotted path) and the
            # packages above it
            hits = [".".join(parts[:k]) for k in range(1, len(parts) + 1)
                    if ".".join(parts[:k]) in modules]
            for hit in hits:
                if hit != name and hit not in own_packages:
                    graph[name].add(hit)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def connect(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return components


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_lazy_imports_and_skips_type_checking_blocks():
    tree = ast.parse("from typing import TYPE_CHECKING\n"
                     "if TYPE_CHECKING:\n    from smoothcert.x import A\n"
                     "def f():\n    from smoothcert.y import b\n    import smoothcert.z\n"
                     "from . import w\n")
    names = _imported_names(tree, "smoothcert.pkg.mod", is_package=False)
    assert "smoothcert.x.A" not in names and "smoothcert.x" not in names
    assert {"smoothcert.y", "smoothcert.z", "smoothcert.pkg.w"} <= set(names)


def test_no_import_cycles_in_the_package():
    graph = import_graph()
    assert "smoothcert.certify.classifier" in graph  # the walk found the package
    assert find_cycles(graph) == []


def test_nothing_below_the_facade_imports_it():
    """certify/'s procedures and engine see ``SmoothedClassifier`` only as an annotation; the
    facade imports them, never the other way round (the dataset runner sits above it)."""
    graph = import_graph()
    facade = "smoothcert.certify.classifier"
    above = {facade, "smoothcert.certify.dataset"}
    below = [m for m in graph if m.startswith("smoothcert.certify.") and m not in above]
    assert {"smoothcert.certify.sampling", "smoothcert.certify.fixed"} <= set(below)
    assert [m for m in below if facade in graph[m]] == []
