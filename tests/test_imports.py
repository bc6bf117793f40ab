"""The import order docs/architecture.md states: no circles, fastsock never imports bench, and
the server's modules never import the load generator or the report (numpy, scipy and matplotlib
must not load into a server process: their threads slow every message)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = ("fastsock.address", "fastsock.loop", "fastsock.connection", "fastsock.server",
          "fastsock.uring", "fastsock.handlers", "fastsock.lifecycle",
          "fastsock.workers")  # fmt: skip


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    """module -> the project modules it imports at module level (imports inside functions
    are deferred on purpose and do not make a circle at import time)."""
    paths = [*ROOT.glob("fastsock/**/*.py"), *ROOT.glob("bench/**/*.py")]
    names = {_module(p) for p in paths}
    graph: dict[str, set[str]] = {}
    for path in paths:
        me = _module(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        deps = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from pkg import sub` depends on the submodule where there is one, else on
                # pkg itself.
                subs = [f"{node.module}.{a.name}" for a in node.names]
                targets = [t for t in subs if t in names] or [node.module]
            else:
                continue
            # A package's own __init__ runs before its modules: no circle through a parent.
            deps |= {t for t in targets if t in names and t != me and not me.startswith(t + ".")}
        graph[me] = deps
    return graph


def test_no_import_circle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(d) :] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_imports_go_one_way() -> None:
    graph = _graph()
    for m, deps in graph.items():
        if m.startswith("fastsock"):
            assert not any(d.startswith("bench") for d in deps), (m, deps)
        if m.startswith(SERVER):
            heavy = {d for d in deps if d.startswith(("fastsock.load", "fastsock.report"))}
            assert not heavy, f"{m} imports {heavy}"
