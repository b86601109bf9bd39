"""The import structure: commands lean on the core, never on each other, and no cycles."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tools" / "pinsync"
COMMANDS = {"lock", "check", "bump"}


def imports_of(module: str) -> set[str]:
    """The pinsync modules `module` imports, at the top or inside functions."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
GRAPH = {m: imports_of(m) for m in MODULES}


def test_no_import_cycles() -> None:
    graphlib.TopologicalSorter(GRAPH).prepare()  # raises CycleError


@pytest.mark.parametrize("module", sorted(set(MODULES) - {"cli", "__main__"}))
def test_only_the_cli_imports_commands_and_nothing_imports_the_cli(module: str) -> None:
    assert "cli" not in GRAPH[module]
    assert not (GRAPH[module] & COMMANDS), f"{module} imports {GRAPH[module] & COMMANDS}"


def test_the_product_package_holds_no_benchmark_or_test_helpers() -> None:
    assert {"bench", "wheelhouse"}.isdisjoint(MODULES)
