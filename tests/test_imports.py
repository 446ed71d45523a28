"""Every `megageo` import inside the package resolves, the lazy ones in function bodies included: those run only
on the path that needs them (a benchmark's last step, a GPU branch), so a moved module would otherwise fail only
there, at the end of a long job (`bench context` imported a writer from a module that had moved)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "megageo"


def imported_names(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("megageo"):
            for alias in node.names:
                yield node.lineno, node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("megageo"):
                    yield node.lineno, alias.name, None


def resolves(module_name: str, name: str | None) -> bool:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return False
    if name is None or hasattr(module, name):
        return True
    try:
        importlib.import_module(f"{module_name}.{name}")
    except ImportError:
        return False
    return True


def test_every_megageo_import_in_the_package_resolves() -> None:
    unresolved = [f"{path.relative_to(PACKAGE.parent)}:{line} from {module} import {name}"
                  for path in sorted(PACKAGE.rglob("*.py"))
                  for line, module, name in imported_names(path) if not resolves(module, name)]
    assert unresolved == []
