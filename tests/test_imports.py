"""The import graph of digisem, read from the source with ``ast``: no cycles, and the layering

    cli -> train / evaluate / demo / analyses / app -> zoo -> systems -> nn, digitize, link

where ``digisem.link`` is a library of its own (it imports nothing else from digisem).

How the graph is built
----------------------
- Nodes are the modules of ``src/digisem`` (a package is its ``__init__``: ``digisem.systems``).
- Every ``import`` and ``from ... import`` counts, at module level or inside a function (a lazy
  import hides a dependency from import time, not from the design), relative or absolute; imports
  under ``if TYPE_CHECKING:`` count too.
- ``from P import name`` is an edge to the module ``P.name`` when that file exists (``from . import
  metrics``), else to ``P`` itself (``from ..link import from_spec`` imports the package
  ``digisem.link``). ``import a.b.c`` and ``from a.b.c import x`` are edges to ``a.b.c`` only: the
  parent packages' ``__init__`` modules also run, but counting those would make every submodule of a
  package that imports its submodules (``digisem.systems``) a false cycle. A sibling import such as
  ``from .base import System`` inside ``digisem.systems`` is an edge to ``digisem.systems.base``, not
  to the package.
- A package ``__init__`` that loads its submodules with ``pkgutil.iter_modules(__path__)`` (the
  registry of ``digisem.systems``) imports every one of them.

A cycle is a strongly connected component of two or more modules (or a module importing itself).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "digisem"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    lazy: bool  # inside a function

    def __str__(self) -> str:
        where = f"{MODULES[self.source].relative_to(SOURCE)}:{self.line}"
        return f"{self.source} -> {self.target} ({where}{', in a function' if self.lazy else ''})"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(path): path for path in sorted((SOURCE / PACKAGE).rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _known(name: str) -> str | None:
    """The deepest digisem module that ``name`` (a dotted path) names or lies in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _relative_base(current: str, level: int, module: str | None) -> str:
    package = current if _is_package(current) else current.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{module}" if module else package


class _Collector(ast.NodeVisitor):
    def __init__(self, name: str):
        self.name = name
        self.depth = 0
        self.edges: list[Edge] = []

    def _add(self, target: str | None, node: ast.AST) -> None:
        if target is not None and (target == PACKAGE or target.startswith(PACKAGE + ".")):
            known = _known(target)
            if known is not None:
                self.edges.append(Edge(self.name, known, node.lineno, self.depth > 0))

    def _function(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = _relative_base(self.name, node.level, node.module) if node.level else node.module
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            self._add(candidate if candidate in MODULES else base, node)

    def visit_Call(self, node: ast.Call) -> None:
        function = node.func
        called = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
        if called == "import_module" and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            self._add(node.args[0].value, node)
        if called == "iter_modules" and _is_package(self.name) and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id == "__path__":
            for module in MODULES:
                if module.rpartition(".")[0] == self.name:
                    self.edges.append(Edge(self.name, module, node.lineno, self.depth > 0))
        self.generic_visit(node)


def _edges() -> list[Edge]:
    edges = []
    for name, path in MODULES.items():
        collector = _Collector(name)
        collector.visit(ast.parse(path.read_text(), filename=str(path)))
        edges += collector.edges
    return edges


EDGES = _edges()


def _cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components with a cycle (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for edge in edges:
        graph[edge.source].add(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _report(edges: list[Edge]) -> str:
    return "\n  " + "\n  ".join(str(edge) for edge in edges)


# ---------------------------------------------------------------------------------------------------
# the graph builder itself


def _edges_of(name: str, source: str) -> set[tuple[str, bool]]:
    collector = _Collector(name)
    collector.visit(ast.parse(source))
    return {(edge.target, edge.lazy) for edge in collector.edges}


def test_the_graph_reads_every_kind_of_import():
    source = (
        "import torch\n"
        "import digisem.link.theory\n"
        "from torch import nn\n"
        "from .base import System\n"  # a sibling module, not the package
        "from ..digitize import ScalarQuantizer\n"
        "from .. import metrics\n"  # a module named in the import list
        "from ..link import from_spec\n"  # a name from a package: the package
        "from digisem.link.spec import parse_spec\n"
        "def lazy():\n"
        "    from digisem.train.run import run_recipe\n"
        "    from ..evaluate import sweep\n"
    )
    assert _edges_of("digisem.systems.ampsc", source) == {
        ("digisem.link.theory", False), ("digisem.systems.base", False), ("digisem.digitize", False), ("digisem.metrics", False),
        ("digisem.link", False), ("digisem.link.spec", False), ("digisem.train.run", True), ("digisem.evaluate", True)}
    # relative imports from a package __init__ start at the package itself
    assert _edges_of("digisem.systems", "from .base import FAMILIES\nfrom ..zoo import load\n") == {("digisem.systems.base", False), ("digisem.zoo", False)}
    # the registry's dynamic imports: every submodule of digisem.systems
    found = {(edge.source, edge.target) for edge in EDGES}
    assert {("digisem.systems", module) for module in MODULES if module.startswith("digisem.systems.")} <= found
    assert all(edge.target in MODULES for edge in EDGES)


def test_cycle_detection_finds_planted_cycles():
    edges = [Edge("digisem.metrics", "digisem.io", 1, False), Edge("digisem.io", "digisem.metrics", 1, True), Edge("digisem.snr", "digisem.snr", 1, False)]
    assert _cycles(edges) == [["digisem.io", "digisem.metrics"], ["digisem.snr"]]
    assert _cycles([Edge("digisem.metrics", "digisem.io", 1, False)]) == []
    # a system file importing its own package (``from . import FAMILIES``) closes a loop through the registry
    back = _edges_of("digisem.systems.deepjscc", "from . import FAMILIES\n")
    assert back == {("digisem.systems", False)}
    planted = EDGES + [Edge("digisem.systems.deepjscc", "digisem.systems", 1, False)]
    assert ["digisem.systems", "digisem.systems.deepjscc"] in [[m for m in c if m in ("digisem.systems", "digisem.systems.deepjscc")] for c in _cycles(planted)]


# ---------------------------------------------------------------------------------------------------
# the rules


def test_no_import_cycles():
    cycles = _cycles(EDGES)
    details = []
    for component in cycles:
        inside = [edge for edge in EDGES if edge.source in component and edge.target in component]
        details.append(f"cycle {component}:" + _report(inside))
    assert not cycles, "import cycles in digisem:\n" + "\n".join(details)


def test_only_the_cli_imports_the_cli():
    offending = [edge for edge in EDGES if edge.target == "digisem.cli" and edge.source != "digisem.cli"]
    assert not offending, "digisem.cli is the top layer; nothing may import it:" + _report(offending)


def test_the_link_is_a_library_of_its_own():
    offending = [edge for edge in EDGES if _in(edge.source, "digisem.link") and not _in(edge.target, "digisem.link")]
    assert not offending, "digisem.link imports nothing else from digisem:" + _report(offending)


CORE = ("digisem.systems", "digisem.zoo", "digisem.nn", "digisem.digitize")
UPPER = ("digisem.train", "digisem.cli", "digisem.evaluate", "digisem.demo", "digisem.analyses", "digisem.app")


@pytest.mark.parametrize("core", CORE)
def test_the_core_does_not_import_the_layers_above_it(core):
    offending = [edge for edge in EDGES if _in(edge.source, core) and any(_in(edge.target, upper) for upper in UPPER)]
    assert not offending, f"{core} sits below {', '.join(UPPER)}:" + _report(offending)


@pytest.mark.parametrize("lower", ["digisem.nn", "digisem.digitize"])
def test_the_building_blocks_do_not_import_systems_or_the_zoo(lower):
    offending = [edge for edge in EDGES if _in(edge.source, lower) and (_in(edge.target, "digisem.systems") or _in(edge.target, "digisem.zoo"))]
    assert not offending, f"{lower} is a building block of the systems:" + _report(offending)
