"""Imports flow one way: entry points -> services -> models, with no loops between features.

The graph is read from the source with `ast`, so imports inside functions count as much as those at the top:
a lazy import hides a loop from Python, not from the design. A node is a feature package (sigdesk/<package>/)
or a top-level module (sigdesk/<module>.py); a module that imports no feature is a leaf and can close no loop.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "sigdesk"

# Import edges (importer node, imported node) that close a loop today, in packages other engineers are moving.
# Each is allowed here only until that move lands; the lead empties this set. Do not add to it.
KNOWN: set[tuple[str, str]] = set()

# Modules that break the layering rules today, with the same promise. Do not add to it.
KNOWN_LAYERING: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module, dotted, resolved
    line: int

    @property
    def where(self) -> str:
        return f"{self.module.replace('.', '/')}.py:{self.line} imports {self.target}"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, known: set[str]) -> Iterator[Import]:
    """Every import in the file, wherever it is; `from a import b` points at a.b when b is a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, path.name == "__init__.py", node)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield Import(module, candidate if candidate in known else base, node.lineno)


def all_imports() -> list[Import]:
    modules = all_modules()
    return [item for module, path in modules.items() for item in imports_of(module, path, set(modules))]


def node_of(module: str) -> str | None:
    """sigdesk.inbox.views -> inbox; sigdesk.db -> db; anything outside sigdesk -> None."""
    parts = module.split(".")
    if parts[0] != "sigdesk" or len(parts) < 2:
        return None
    return parts[1]


def feature_graph() -> dict[str, dict[str, list[Import]]]:
    graph: dict[str, dict[str, list[Import]]] = defaultdict(lambda: defaultdict(list))
    for item in all_imports():
        source, target = node_of(item.module), node_of(item.target)
        if source and target and source != target:
            graph[source][target].append(item)
    return graph


def loops(edges: dict[str, set[str]]) -> list[list[str]]:
    """One shortest loop through each strongly connected group of nodes (Tarjan, then a breadth-first search)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    found: list[list[str]] = []
    for group in sorted(groups, key=min):
        for source in sorted(group):
            for target in sorted(edges.get(source, set()) & group):
                loop = [source, *_shortest_path(target, source, group, edges)]
                if not any(_same_loop(loop, other) for other in found):
                    found.append(loop)
    return found


def _shortest_path(start: str, goal: str, group: set[str], edges: dict[str, set[str]]) -> list[str]:
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        if node == goal:
            return paths[node]
        for nxt in sorted(edges.get(node, set()) & group):
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    return [start, goal]


def _same_loop(one: list[str], other: list[str]) -> bool:
    return set(zip(one, one[1:])) == set(zip(other, other[1:]))


def describe(loop: list[str], graph: dict[str, dict[str, list[Import]]]) -> str:
    lines = [" -> ".join(loop)]
    for source, target in zip(loop, loop[1:]):
        wheres = list(dict.fromkeys(item.where for item in graph[source][target]))
        lines += [f"    {source} -> {target}: {where}" for where in wheres[:3]]
    return "\n".join(lines)


def test_feature_packages_import_each_other_without_loops():
    graph = feature_graph()
    edges = {
        source: {target for target in targets if (source, target) not in KNOWN} for source, targets in graph.items()
    }
    found = loops(edges)
    assert not found, "import loops between sigdesk packages:\n" + "\n".join(describe(loop, graph) for loop in found)


def test_the_known_loops_are_still_loops():
    """An entry that no longer closes a loop must leave KNOWN, so the list only ever shrinks."""
    graph = feature_graph()
    edges = {source: set(targets) for source, targets in graph.items()}
    in_loops = {(a, b) for loop in _all_loop_edges(edges) for a, b in [loop]}
    stale = sorted(edge for edge in KNOWN if edge not in in_loops)
    assert not stale, f"remove from KNOWN, these no longer close a loop: {stale}"


def _all_loop_edges(edges: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Edges whose target can reach back to their source."""

    def reaches(start: str, goal: str) -> bool:
        seen, todo = {start}, [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            for nxt in edges.get(node, ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    return {(a, b) for a, targets in edges.items() for b in targets if reaches(b, a)}


def _is_flask(target: str) -> bool:
    return target == "flask" or target.startswith(("flask.", "flask_"))


def layering_violations() -> list[Import]:
    """services/commands/models modules importing views or Flask; the WhatsApp client importing Flask."""
    found = []
    for item in all_imports():
        parts = item.module.split(".")
        layer = parts[-1] in ("services", "commands") or parts[1:2] == ["models"]
        if layer and (item.target.split(".")[-1] == "views" or _is_flask(item.target)):
            found.append(item)
        elif parts[1:2] == ["whatsapp"] and _is_flask(item.target):
            found.append(item)
    return found


def test_services_commands_and_models_never_import_views_or_flask():
    found = [item for item in layering_violations() if (item.module, item.target) not in KNOWN_LAYERING]
    assert not found, "layering broken:\n" + "\n".join(f"    {item.where}" for item in found)


def test_the_graph_sees_lazy_and_relative_imports():
    """The reader itself: an import inside a function and a relative import both make an edge."""
    source = "from . import services\nfrom ..db import utcnow\n\ndef late():\n    from sigdesk.jobs import Worker\n"
    tree_path = ROOT / "inbox" / "views.py"
    node = ast.parse(source)
    froms = [item for item in ast.walk(node) if isinstance(item, ast.ImportFrom)]
    assert _resolve("sigdesk.inbox.views", False, froms[0]) == "sigdesk.inbox"
    assert _resolve("sigdesk.inbox.views", False, froms[1]) == "sigdesk.db"
    assert _resolve("sigdesk.inbox", True, froms[0]) == "sigdesk.inbox"
    assert {item.module for item in froms} == {None, "db", "sigdesk.jobs"} and tree_path.exists()
    assert loops({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
