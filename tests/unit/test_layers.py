"""The package's layers import one way: client → engine → transport, protocol, state → models;
sinks sit beside the client (the client, the Redis consumer and history use them; they use the
engine, protocol and state, and nothing below them imports a sink).

Reads every module of ``dydx_ws`` with :mod:`ast` (no import) and checks its module-level imports:
a runtime import may only point at the same layer or one allowed below it; an import under
``if TYPE_CHECKING:`` names a type and may cross layers; imports inside functions are lazy and not
counted. A second test asserts that the module-level runtime imports form no circle, and a third
that the known exceptions below still exist (remove them once fixed).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import dydx_ws

PACKAGE = Path(dydx_ws.__file__).resolve().parent

# Shared leaf modules at the top of the package, usable by every layer.
BASE = {"dydx_ws.errors", "dydx_ws.events", "dydx_ws.network", "dydx_ws._route_limits"}
# The user's face: the top-level package and the modules that assemble the layers.
FACE = {
    "dydx_ws",
    "dydx_ws.client",
    "dydx_ws.replay",
    "dydx_ws.notebook",
    "dydx_ws._shutdown",
    "dydx_ws.redis_client",
    "dydx_ws.history",
}

# Layer -> layers its modules may import at run time (besides their own).
ALLOWED: Dict[str, Set[str]] = {
    "base": {"base"},
    "models": set(),
    "transport": {"base"},
    "protocol": {"base", "models"},
    "rest": {"base", "models", "protocol"},
    "state": {"base", "models", "protocol", "rest"},
    "engine": {"base", "models", "protocol", "rest", "state", "transport"},
    "sinks": {"base", "models", "protocol", "rest", "state", "transport", "engine"},
    "face": {"base", "models", "protocol", "rest", "state", "transport", "engine", "sinks"},
    "cli": {"base", "models", "protocol", "rest", "state", "transport", "engine", "sinks", "face"},
    "emulator": {"base"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str:
    if module in BASE:
        return "base"
    if module in FACE:
        return "face"
    if module == "dydx_ws.rest":
        return "rest"
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ALLOWED:
        return parts[1]
    raise AssertionError(f"{module} belongs to no layer: add it to test_layers.py")


def all_modules() -> Dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path, modules: Set[str]) -> Iterator[Tuple[str, bool]]:
    """(imported module, type-only) for each module-level import of a dydx_ws module."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def resolve(node: ast.ImportFrom) -> List[str]:
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            target = ".".join([*base, *([node.module] if node.module else [])])
        else:
            target = node.module or ""
        found = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
        return found or [target]

    def walk(body: List[ast.stmt], type_only: bool) -> Iterator[Tuple[str, bool]]:
        for node in body:
            if isinstance(node, ast.If):
                yield from walk(node.body, type_only or _is_type_checking(node))
                yield from walk(node.orelse, type_only)
            elif isinstance(node, ast.Try):
                yield from walk(node.body, type_only)
                for handler in node.handlers:
                    yield from walk(handler.body, type_only)
            elif isinstance(node, ast.ImportFrom):
                for target in resolve(node):
                    if target.startswith("dydx_ws"):
                        yield target, type_only
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("dydx_ws"):
                        yield alias.name, type_only

    yield from walk(ast.parse(path.read_text()).body, False)


def runtime_graph() -> Dict[str, Set[str]]:
    modules = all_modules()
    return {
        name: {t for t, type_only in imports(path, set(modules)) if not type_only}
        for name, path in modules.items()
    }


def test_the_parser_sees_the_layers() -> None:
    graph = runtime_graph()
    assert "dydx_ws.transport._reconnect" in graph["dydx_ws.client"]
    assert "dydx_ws.models" in graph["dydx_ws.protocol._messages"]
    type_only = dict(imports(all_modules()["dydx_ws.protocol._messages"], set(all_modules())))
    assert type_only["dydx_ws.state._orderbook"] is True
    assert "dydx_ws.sinks.base" in graph["dydx_ws.client"]
    assert layer("dydx_ws.sinks.checkpoint") == "sinks" and layer("dydx_ws.redis_client") == "face"


def test_sinks_sit_beside_the_client() -> None:
    """Sinks use the engine, protocol and state; the face and the CLI use sinks; nothing else."""
    users = {
        layer(importer)
        for importer, targets in runtime_graph().items()
        for target in targets
        if layer(target) == "sinks" and layer(importer) != "sinks"
    }
    assert users <= {"face", "cli"}
    assert "face" not in {
        layer(t) for m, ts in runtime_graph().items() if layer(m) == "sinks" for t in ts
    }


def test_runtime_imports_point_down() -> None:
    wrong = []
    for importer, targets in runtime_graph().items():
        for target in targets:
            if layer(target) != layer(importer) and layer(target) not in ALLOWED[layer(importer)]:
                wrong.append(f"{importer} ({layer(importer)}) -> {target} ({layer(target)})")
    assert not wrong, "imports against the layer direction:\n" + "\n".join(sorted(wrong))


def test_no_import_circle_at_run_time() -> None:
    graph = runtime_graph()
    # Importing a.b.c from outside a.b first runs a.b's __init__ (the root package's is left out:
    # every module would reach it and it only re-exports).
    for name, targets in graph.items():
        for target in list(targets):
            parent = target.rpartition(".")[0]
            if parent not in ("", "dydx_ws", name) and not name.startswith(parent + "."):
                targets.add(parent)
    done: Set[str] = set()
    circles: List[str] = []

    def visit(node: str, path: List[str]) -> None:
        if node in path:
            circles.append(" -> ".join([*path[path.index(node) :], node]))
            return
        if node in done:
            return
        for target in sorted(graph.get(node, ())):
            if target != "dydx_ws":
                visit(target, [*path, node])
        done.add(node)

    for module in sorted(graph):
        visit(module, [])
    assert not circles, "\n".join(circles)
