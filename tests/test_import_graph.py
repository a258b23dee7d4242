"""The package's import graph: no cycles, and the boundaries the package docstrings promise.

Read from the source with `ast`, so it sees every import, including those inside functions
(a deferred import is still a dependency); only `if TYPE_CHECKING:` blocks are left out, since
they never run. Importing a.b.c also runs a and a.b, so those count as imported too (except
the importer's own parent packages, which are already running when it is imported).
"""

from __future__ import annotations

import ast
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

PACKAGE = "imagerepo"
ROOT = PROJECT_ROOT / PACKAGE


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _imported(name: str) -> set[str]:
    """The package's modules that importing module `name` imports (directly)."""
    path = MODULES[name]
    here = name if _is_package(name) else name.rpartition(".")[0]
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [source]
            targets += [f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in MODULES]
        else:
            continue
        for target in targets:
            if target.split(".")[0] != PACKAGE:
                continue
            # Importing a.b.c runs a, a.b and a.b.c.
            parts = target.split(".")
            for end in range(1, len(parts) + 1):
                ancestor = ".".join(parts[:end])
                if ancestor in MODULES and not (name + ".").startswith(ancestor + "."):
                    found.add(ancestor)
    found.discard(name)
    return found


GRAPH = {name: _imported(name) for name in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read():
    assert "imagerepo.images.queries" in GRAPH["imagerepo.access"]
    assert "imagerepo.access" in GRAPH["imagerepo.images.routes"]
    assert "imagerepo.blobstore" in GRAPH["imagerepo.errors"], "importing a.b runs a"
    assert "imagerepo.app" in GRAPH["imagerepo"], "imports inside functions count"
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert _cycles(GRAPH) == []


def _reach(name: str) -> set[str]:
    seen, todo = set(), [name]
    while todo:
        for nxt in GRAPH[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_blob_store_imports_nothing_outside_itself():
    for name in MODULES:
        if name.startswith("imagerepo.blobstore"):
            outside = {m for m in _reach(name) if not m.startswith("imagerepo.blobstore")}
            assert outside == set(), (name, outside)


def test_the_client_imports_nothing_of_the_server():
    outside = {m for m in _reach("imagerepo.client") if not m.startswith("imagerepo.client")}
    assert outside == set(), outside


def test_nothing_imports_the_route_modules_but_the_app_and_other_routes():
    routes = {name for name in MODULES if name.endswith(".routes")} | {
        "imagerepo.auth",
        "imagerepo.admin",
        "imagerepo.audit",
        "imagerepo.health",
        "imagerepo.docs",
    }
    domain = {"imagerepo.access", "imagerepo.errors", "imagerepo.pagination", "imagerepo.imagetypes"} | {
        name for name in MODULES if name.startswith(("imagerepo.blobstore", "imagerepo.images.", "imagerepo.tags."))
    }
    for name in domain - routes:
        assert _reach(name) & routes == set(), (name, _reach(name) & routes)
