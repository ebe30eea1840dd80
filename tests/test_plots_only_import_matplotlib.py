"""matplotlib is imported by smoothcert.plots only: the rest of the library draws nothing."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "smoothcert"


def _matplotlib_imports(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" \
                and node.args and isinstance(node.args[0], ast.Constant):
            names = [str(node.args[0].value)]
        else:
            continue
        if any(name == "matplotlib" or name.startswith("matplotlib.") for name in names):
            lines.append(node.lineno)
    return lines


def test_matplotlib_is_imported_only_under_plots():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 50
    outside = {str(p.relative_to(PACKAGE)): lines for p in files
               if (lines := _matplotlib_imports(p)) and p.relative_to(PACKAGE).parts[0] != "plots"}
    assert outside == {}
    assert _matplotlib_imports(PACKAGE / "plots" / "certified.py")  # the check can see one


def test_the_check_finds_every_form_of_import(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("import matplotlib\nfrom matplotlib.figure import Figure\n"
                    "def f():\n    import matplotlib.pyplot as plt\n"
                    "importlib.import_module('matplotlib.colors')\nimport numpy\n")
    assert _matplotlib_imports(path) == [1, 2, 4, 5]
