"""The import graph of both packages: no circles, no import that climbs back up a layer.

Imports are read from the source with ``ast`` (module level and inside functions alike, since an
import moved into a function to dodge a circle is still a circle); ``if TYPE_CHECKING:`` blocks are
skipped, and so are the alias stubs left at old paths (they forward to the new module and nothing in
the packages imports them).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("spectraldiff", "mer")

# mer's layers, lowest first: a module may import its own layer (inside its own subpackage) and the
# layers below it, never one above. Names are module prefixes.
MER_LAYERS = [
    ["mer.data"],
    ["mer.graph", "mer.metrics"],
    ["mer.nn", "mer.config"],
    ["mer.recoverers", "mer.models"],
    ["mer.model"],
    ["mer.training"],
    ["mer.benchmark"],
    ["mer.reproduce"],
    ["mer.cli"],
    ["mer.__main__"],
]

# spectraldiff's core never reaches into its applications (generation, the eigh benchmark, the CLI).
SPECTRALDIFF_APPLICATIONS = ("spectraldiff.generation", "spectraldiff.eigh.bench", "spectraldiff.cli",
                             "spectraldiff.demo", "spectraldiff.__main__")


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_alias_stub(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.ImportFrom) and node.module == "spectraldiff.deprecation"
               for node in tree.body)


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return skipped


def _resolve(name: str, modules: set[str]) -> str | None:
    """The longest known module that ``name`` is or lies in."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(path: pathlib.Path, module: str, is_package: bool, modules: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf8"))
    skipped = _type_checking_nodes(tree)
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # ``from pkg import sub`` imports the submodule when there is one.
            targets = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in modules else prefix
                       for alias in node.names]
        else:
            continue
        for target in targets:
            resolved = _resolve(target, modules)
            if resolved is not None and resolved != module:
                found.add(resolved)
    return found


def _graph() -> dict[str, set[str]]:
    files = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf8"))
            if not _is_alias_stub(tree):
                files[_module_name(path)] = path
    modules = set(files)
    return {m: _imports(p, m, p.name == "__init__.py", modules) for m, p in files.items()}


GRAPH = _graph()


def _edges():
    return [(a, b) for a, targets in GRAPH.items() for b in sorted(targets)]


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; components of more than one module are circles."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _ignoring_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    # A package's __init__ re-exports its submodules; a submodule that imports a sibling through the
    # package would show up as a circle with the __init__, so circles are checked between real modules:
    # an edge into a package stands for edges into the submodules it re-exports.
    packages = {m for m in graph if any(other.startswith(m + ".") for other in graph)}
    expanded = {}
    for module, targets in graph.items():
        if module in packages:
            continue
        resolved = set()
        for target in targets:
            if target in packages:
                resolved |= {t for t in graph[target] if t not in packages and not t.startswith(module)}
            else:
                resolved.add(target)
        expanded[module] = resolved
    return expanded


def test_graph_is_read_from_the_packages():
    assert "mer.recoverers.gsdnet" in GRAPH and "spectraldiff.sde" in GRAPH
    assert "spectraldiff" in GRAPH["mer.recoverers.gsdnet"] or any(
        t.startswith("spectraldiff") for t in GRAPH["mer.recoverers.gsdnet"])


def test_no_import_circles():
    circles = [c for c in _strongly_connected(_ignoring_package_inits(GRAPH)) if len(c) > 1]
    assert circles == []


def test_spectraldiff_never_imports_mer():
    assert [(a, b) for a, b in _edges() if a.startswith("spectraldiff") and b.startswith("mer")] == []


def test_spectraldiff_core_never_imports_its_applications():
    def application(name):
        return any(name == app or name.startswith(app + ".") for app in SPECTRALDIFF_APPLICATIONS)

    climbs = [(a, b) for a, b in _edges()
              if a.startswith("spectraldiff") and a != "spectraldiff" and not application(a) and application(b)]
    assert climbs == []


def _mer_layer(module: str) -> tuple[int, str] | None:
    for rank, prefixes in enumerate(MER_LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                return rank, prefix
    return None


def test_every_mer_module_has_a_layer():
    unplaced = [m for m in GRAPH if m.startswith("mer.") and _mer_layer(m) is None]
    assert unplaced == []


@pytest.mark.parametrize("rank", range(len(MER_LAYERS)), ids=[",".join(p) for p in MER_LAYERS])
def test_mer_imports_point_down_the_layers(rank):
    wrong = []
    for a, b in _edges():
        if not (a.startswith("mer.") and b.startswith("mer.")):
            continue
        (rank_a, home_a), (rank_b, home_b) = _mer_layer(a), _mer_layer(b)
        if rank_a != rank:
            continue
        if rank_b > rank_a or (rank_b == rank_a and home_a != home_b):
            wrong.append((a, b))
    assert wrong == []
