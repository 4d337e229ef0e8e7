"""The house's dependency direction, read from the source: docs/architecture.md says it, this keeps it true.

Each layer imports only layers below it, and no chain of top-level imports comes back to where it started.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import edgemtl

PACKAGE = Path(edgemtl.__file__).parent
#: Modules every layer may import: pure Python or NumPy, no layer of their own.
FOUNDATION = ("errors", "tasks", "metrics", "palette", "paths", "machine", "kinds", "features", "resize", "jsonfile")
#: Lower layers first; a layer may import any layer of a lower rank, never one of its own rank or above.
RANKS = {"foundation": 0, "data": 1, "model": 1, "runtime": 1, "plots": 2, "train": 3, "deploy": 4, "commands": 5}
RANKS["cli"] = 6


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    return "foundation" if len(parts) == 1 or parts[1] in FOUNDATION else parts[1]


def is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (PACKAGE.parent / relative.with_suffix(".py")).is_file() or (PACKAGE.parent / relative).is_dir()


def imports(path: Path, top_level_only: bool) -> Iterator[str]:
    """The edgemtl modules a file imports; `from package import submodule` counts as the submodule.

    Top level only: imports inside functions (lazy, on first use) and under TYPE_CHECKING cannot start
    a circle when the module loads.
    """
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("edgemtl"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("edgemtl"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield full if is_module(full) else node.module


def test_each_layer_imports_only_layers_below_it():
    upward = sorted(
        f"{module_name(path)} imports {target}"
        for path in PACKAGE.rglob("*.py")
        for target in imports(path, top_level_only=False)
        if layer(target) != layer(module_name(path)) and RANKS[layer(target)] >= RANKS[layer(module_name(path))]
    )
    assert upward == [], "\n".join(upward)
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages - set(FOUNDATION) == set(RANKS) - {"foundation"}, "a new package needs its place in RANKS"


def test_no_circle_of_top_level_imports():
    graph = {module_name(path): set(imports(path, top_level_only=True)) for path in PACKAGE.rglob("*.py")}
    done: set[str] = set()

    def visit(module: str, stack: list[str]) -> None:
        if module in stack:
            raise AssertionError("import circle: " + " -> ".join([*stack[stack.index(module) :], module]))
        if module in done:
            return
        for target in graph.get(module, ()):
            if target != module:
                visit(target, [*stack, module])
        done.add(module)

    for module in graph:
        visit(module, [])


def test_the_scan_sees_lazy_imports_and_submodules(tmp_path):
    source = PACKAGE / "commands" / "evaluate.py"
    lazy = set(imports(source, top_level_only=False)) - set(imports(source, top_level_only=True))
    assert "edgemtl.runtime.scoring" in lazy  # imported inside a method: counted for layers, not for circles
    assert "edgemtl.train.distributed" in set(imports(PACKAGE / "train" / "trainer.py", top_level_only=True))
