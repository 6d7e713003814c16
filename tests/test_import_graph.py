"""The worker and the connection protocols import no module that imports
them back: the protocols see the worker through ngxws.proxy.context."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "ngxws"


def _graph() -> dict[str, set[str]]:
    mods: dict[str, Path] = {}
    for f in ROOT.rglob("*.py"):
        parts = f.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = f
    graph: dict[str, set[str]] = {}
    for name, f in mods.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(f.read_text())):  # TYPE_CHECKING imports count too
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ngxws"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    deps.add(sub if sub in mods else node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("ngxws"))
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = {start}, list(graph[start])
    for _ in range(10 * len(graph)):  # bounded: each module is visited once
        if not todo:
            return False
        mod = todo.pop()
        if mod == goal:
            return True
        if mod not in seen:
            seen.add(mod)
            todo.extend(graph[mod])
    return False


def test_worker_and_proxy_modules_are_in_no_import_circle() -> None:
    graph = _graph()
    mods = ["ngxws.worker", *(m for m in graph if m.startswith("ngxws.proxy."))]
    circles = [m for m in mods if _reaches(graph, m, m)]
    assert circles == []
