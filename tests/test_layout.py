"""The layout is the architecture: imports point down the layers only, and only the app wires the sandbox in.

Read from the source with ``ast`` (imports inside functions included; those under ``if TYPE_CHECKING:`` are for
annotations only and skipped), so a new upward import fails here with the line that made it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Top to bottom: a module may import its own layer, any layer below it and the leaves, never a layer above.
LAYERS: list[tuple[str, ...]] = [
    ("graph.app", "graph.cli", "graph.__main__"),
    ("graph.http",),
    ("graph.execution",),
    ("resolvers",),
    ("graph.services", "graph.config", "graph.keyfiles", "graph.errors", "graph.live"),
    ("graph.data",),
    ("graph.fleet",),
    ("graph.observability",),
    ("graph.gateway", "graph.sandbox"),
]
# Pure modules anything may use: they import nothing of ours but each other.
LEAVES = ("graph.types", "graph.ide", "graph.execution.manifest", "graph.execution.printer", "graph")
MAX_LINES = 350


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> list[Path]:
    return sorted([*(ROOT / "graph").rglob("*.py"), *(ROOT / "resolvers").rglob("*.py")])


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _layer(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (length of the matched prefix, layer)
    for index, packages in enumerate(LAYERS):
        for package in packages:
            if _within(module, package) and (best is None or len(package) > best[0]):
                best = (len(package), index)
    return None if best is None else best[1]


def _leaf(module: str) -> bool:
    return any(module == leaf or (leaf != "graph" and _within(module, leaf)) for leaf in LEAVES)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for inner in node.body for child in ast.walk(inner))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "graph":  # `from graph import __version__`, or a module of graph by name
                for alias in node.names:
                    yield node.lineno, "graph" if alias.name == "__version__" else f"graph.{alias.name}"
            else:
                yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def _ours(module: str) -> bool:
    return _within(module, "graph") or _within(module, "resolvers")


def test_imports_point_down_the_layers() -> None:
    upward = []
    for path in _sources():
        source = _name(path)
        if _leaf(source):
            for line, target in _imports(path):
                if _ours(target) and not _leaf(target):
                    upward.append(f"{path.relative_to(ROOT)}:{line}: leaf {source} imports {target}")
            continue
        mine = _layer(source)
        assert mine is not None, f"{source} is in no layer: add it to LAYERS in {Path(__file__).name}"
        for line, target in _imports(path):
            if not _ours(target) or _leaf(target):
                continue
            theirs = _layer(target)
            if theirs is None or theirs < mine:
                upward.append(f"{path.relative_to(ROOT)}:{line}: {source} imports {target}, a layer above it")
    assert upward == []


def test_only_the_app_wires_the_sandbox() -> None:
    wiring = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _sources()
        if not _within(_name(path), "graph.sandbox") and _name(path) != "graph.app"
        for line, target in _imports(path)
        if _within(target, "graph.sandbox")
    ]
    assert wiring == []


@pytest.mark.parametrize("path", _sources(), ids=lambda path: str(path.relative_to(ROOT)))
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{lines} lines: split it by what it holds"


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    # The rule itself, on a module that would break it: the gateway reaching up into the edge.
    module = tmp_path / "bad.py"
    module.write_text("from graph.http.edge import GraphQLEdge\nif TYPE_CHECKING:\n    import graph.app\n")
    found = list(_imports(module))
    assert found == [(1, "graph.http.edge")]
    layer_of_gateway = _layer("graph.gateway.client")
    layer_of_edge = _layer("graph.http.edge")
    assert layer_of_gateway is not None
    assert layer_of_edge is not None
    assert layer_of_edge < layer_of_gateway
