"""Graph sets for generation: the two public benchmark families, loaders and the published split.

Generators (registered by name in :data:`GENERATORS`, so a config or the CLI can name them):

- :func:`community_small`: two equal communities of ``G(c, 0.7)`` graphs, ``2c`` nodes in 12–20,
  joined by a few inter-community edges (``p_inter = 0.05``), built as the published set was;
- :func:`grid`: 2-D grids with sides 10–19 (100–361 nodes);
- :func:`planar`: Delaunay triangulations of 64 uniform random points in the unit square (SPECTRE);
- :func:`sbm`: stochastic block models with 2–5 communities of 20–40 nodes (SPECTRE), connected only.

Published sets without a generator (:data:`PUBLISHED_ONLY`, e.g. ``enzymes``) are read from
``../shared/data/graphs`` only; :func:`available_datasets` lists every name a run may use.

Loaders (:func:`load_graphs` dispatches on the path):

- a ``.json`` file: a list of ``{"num_nodes": n, "edges": [[u, v], ...]}`` (the format of the
  converted benchmark sets, see ``../shared/data/graphs/README.md``);
- a ``.pkl``/``.pickle`` file holding a list of ``networkx.Graph``, read through the restricted
  unpickler (:func:`spectraldiff.safe_pickle.load_pickle`, ``allow="graphs"``), which refuses any
  global that is not a graph, a container or a NumPy value; ``trust_pickle=True`` opts in to plain
  ``pickle.load``, which runs code from the file — only for files you trust;
- a folder of edge-list files (one graph per file, ``u v`` per line, ``#`` comments), in name order.

Every loader validates through :func:`validate_graphs`: directed graphs, graphs whose only edges
are self loops and empty lists are rejected with a ``ValueError`` naming the offending graph; nodes are
relabelled ``0..n-1`` in their original order and remaining self loops are dropped.

The published split (:func:`split_graphs`): the **first** ``int(0.2 · len)`` graphs are the test set,
the rest the training set, no shuffling.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Callable, Sequence

import networkx as nx
import numpy as np

from ..registry import Registry, UnknownNameError
from ..safe_pickle import load_pickle

__all__ = [
    "community_small",
    "grid",
    "planar",
    "sbm",
    "SBM_P_IN",
    "SBM_P_OUT",
    "GENERATORS",
    "PUBLISHED_ONLY",
    "available_datasets",
    "get_generator",
    "available_generators",
    "register_generator",
    "validate_graphs",
    "load_graphs",
    "load_json_graphs",
    "load_pickle_graphs",
    "load_edgelist_folder",
    "save_json_graphs",
    "split_graphs",
    "published_data_dir",
    "published_graphs_path",
    "TEST_FRACTION",
]

#: Fraction of graphs, taken from the front, that form the test set in the published split.
TEST_FRACTION = 0.2


# -- generators --------------------------------------------------------------------------------
def community_small(num_graphs: int = 100, seed: int = 0, *, min_nodes: int = 12, max_nodes: int = 20,
                    p_intra: float = 0.7, p_inter: float = 0.05, fixed_communities: bool = True) -> list[nx.Graph]:
    """Two-community graphs as in the ``community_small`` benchmark.

    For each graph a size ``m`` is drawn uniformly from ``[min_nodes, max_nodes]`` and the community
    size is ``c = m // 2`` (so 12–20 gives 12, 14, ..., 20 nodes, 20 half as often as the others: the
    size distribution of the published set). Each community is an Erdős–Rényi ``G(c, p_intra)``
    graph; nodes ``0..c-1`` form the first community, ``c..2c-1`` the second. As in the published
    generator, each of the ``c²`` inter-community pairs is joined with probability ``2 · p_inter / c``,
    and when none was drawn the first nodes of the two communities, ``0`` and ``c``, are joined, so the
    communities are linked by one to three edges.

    Parameters
    ----------
    num_graphs, seed : int
        How many graphs, and the seed of everything drawn here (same seed, same list).
    min_nodes, max_nodes : int
        Range of the drawn size ``m`` (the graph has ``2 · (m // 2)`` nodes).
    p_intra, p_inter : float
        Edge probability inside a community; inter-community parameter (see above).
    fixed_communities : bool
        ``True`` (default) reproduces the published set, whose generator seeded community ``i`` with
        ``i``: community ``i`` is ``networkx.gnp_random_graph(c, p_intra, seed=i)``, so all graphs of one
        size share their two communities and differ only in the bridges (this regenerates the
        communities of ``../shared/data/graphs/community_small.json`` exactly). ``False`` draws every
        community afresh from ``seed``, a more varied family with a higher train-vs-test MMD.
    """
    if num_graphs < 1:
        raise ValueError(f"num_graphs must be ≥ 1, got {num_graphs}")
    if not 2 <= min_nodes <= max_nodes:
        raise ValueError(f"need 2 ≤ min_nodes ≤ max_nodes, got {min_nodes}, {max_nodes}")
    rng = np.random.default_rng(seed)
    graphs = []
    for _ in range(num_graphs):
        c = int(rng.integers(min_nodes, max_nodes + 1)) // 2
        g = nx.Graph()
        g.add_nodes_from(range(2 * c))
        for index, offset in enumerate((0, c)):
            community_seed = index if fixed_communities else int(rng.integers(2**31))
            community = nx.gnp_random_graph(c, p_intra, seed=community_seed)
            g.add_edges_from((offset + u, offset + v) for u, v in community.edges())
        bridge = rng.random((c, c)) < 2.0 * p_inter / c
        if not bridge.any():
            bridge[0, 0] = True
        g.add_edges_from((int(i), c + int(j)) for i, j in zip(*np.nonzero(bridge)))
        graphs.append(g)
    return graphs


def grid(num_graphs: int = 100, seed: int = 0, *, min_side: int = 10, max_side: int = 19) -> list[nx.Graph]:
    """2-D grid graphs ``rows × cols`` with both sides drawn uniformly from ``[min_side, max_side]``.

    The defaults give 100–361 nodes, the range of the published ``grid`` set. Nodes are numbered row
    by row.
    """
    if num_graphs < 1:
        raise ValueError(f"num_graphs must be ≥ 1, got {num_graphs}")
    if not 1 <= min_side <= max_side:
        raise ValueError(f"need 1 ≤ min_side ≤ max_side, got {min_side}, {max_side}")
    rng = np.random.default_rng(seed)
    graphs = []
    for _ in range(num_graphs):
        rows, cols = (int(v) for v in rng.integers(min_side, max_side + 1, size=2))
        graphs.append(nx.convert_node_labels_to_integers(nx.grid_2d_graph(rows, cols), ordering="sorted"))
    return graphs


def planar(num_graphs: int = 200, seed: int = 0, *, num_nodes: int = 64) -> list[nx.Graph]:
    """Planar graphs as in SPECTRE: the Delaunay triangulation of ``num_nodes`` points drawn
    uniformly in the unit square (an edge for every side of every triangle).

    A triangulation is planar and connected by construction, so every graph passes
    :func:`spectraldiff.generation.validity.is_planar_graph`. Needs scipy.
    """
    from scipy.spatial import Delaunay  # scipy only here: the rest of the module does without it

    if num_graphs < 1:
        raise ValueError(f"num_graphs must be ≥ 1, got {num_graphs}")
    if num_nodes < 3:
        raise ValueError(f"a triangulation needs num_nodes ≥ 3, got {num_nodes}")
    rng = np.random.default_rng(seed)
    graphs = []
    for _ in range(num_graphs):
        triangles = Delaunay(rng.random((num_nodes, 2))).simplices  # (T, 3) node indices
        g = nx.Graph()
        g.add_nodes_from(range(num_nodes))
        for a, b, c in triangles.tolist():
            g.add_edges_from(((a, b), (b, c), (a, c)))
        graphs.append(g)
    return graphs


#: Edge probabilities of the SBM family. The issue text says p_out 0.05, but SPECTRE's generator
#: (``data.py``, ``SBMDataset``) and the SPECTRE/DiGress validity test (``is_sbm_graph``) both use
#: 0.005, and the V.U.N. numbers the papers report are on that data; ``sbm(p_out=0.05)`` gives the other.
SBM_P_IN = 0.3
SBM_P_OUT = 0.005


def sbm(num_graphs: int = 200, seed: int = 0, *, min_communities: int = 2, max_communities: int = 5,
        min_size: int = 20, max_size: int = 40, p_in: float = SBM_P_IN, p_out: float = SBM_P_OUT,
        connected: bool = True) -> list[nx.Graph]:
    """Stochastic block models as in SPECTRE: ``k`` communities (``k`` uniform in 2–5), each of a
    size uniform in 20–40, edges with probability ``p_in`` inside and ``p_out`` between communities.

    Nodes are numbered community by community (``graph.graph["partition"]`` holds the blocks).
    ``connected=True`` (default) redraws disconnected graphs, as the later SPECTRE/DiGress data
    preparation does (SPECTRE's first generator kept them: with ``p_out = 0.005`` two 20-node
    communities share no edge about 13 % of the time).
    """
    if num_graphs < 1:
        raise ValueError(f"num_graphs must be ≥ 1, got {num_graphs}")
    if not 1 <= min_communities <= max_communities or not 1 <= min_size <= max_size:
        raise ValueError("need 1 ≤ min_communities ≤ max_communities and 1 ≤ min_size ≤ max_size")
    rng = np.random.default_rng(seed)
    graphs = []
    while len(graphs) < num_graphs:
        k = int(rng.integers(min_communities, max_communities + 1))
        sizes = [int(v) for v in rng.integers(min_size, max_size + 1, size=k)]
        probs = np.full((k, k), p_out)
        np.fill_diagonal(probs, p_in)
        g = nx.stochastic_block_model(sizes, probs.tolist(), seed=int(rng.integers(2**31)))
        if connected and not nx.is_connected(g):
            continue
        simple = nx.Graph(g.edges())  # drop networkx's block attributes, keep the numbering
        simple.add_nodes_from(range(g.number_of_nodes()))
        simple = nx.convert_node_labels_to_integers(simple, ordering="sorted")
        simple.graph["partition"] = [sorted(block) for block in g.graph["partition"]]
        graphs.append(simple)
    return graphs


GENERATORS: Registry[Callable[..., list[nx.Graph]]] = Registry("graph generator")

#: Published sets with no package generator: read from ``../shared/data/graphs/<name>.json`` only.
PUBLISHED_ONLY = ("enzymes",)


def register_generator(name: str, generator: Callable[..., list[nx.Graph]]) -> None:
    """Register ``generator(num_graphs, seed, **kwargs) -> list[nx.Graph]``; a duplicate name is an error."""
    GENERATORS.register(name, generator)


def available_generators() -> list[str]:
    return GENERATORS.names()


def available_datasets() -> list[str]:
    """Every dataset name a run may use: the generators, then the published-only sets."""
    return available_generators() + [n for n in PUBLISHED_ONLY if n not in GENERATORS]


def get_generator(name: str) -> Callable[..., list[nx.Graph]]:
    """The registered generator called ``name``; an unknown name's error lists the valid ones."""
    if name in PUBLISHED_ONLY and name not in GENERATORS:
        raise UnknownNameError(f"graph dataset {name!r} has no package generator: it is read from "
                               f"../shared/data/graphs/{name}.json (or pass the file with --graphs)")
    if name not in GENERATORS:  # named as a dataset, which is what the CLI and configs call it
        raise UnknownNameError(f"unknown graph dataset {name!r}; choose one of {available_datasets()}")
    return GENERATORS.get(name)


register_generator("community_small", community_small)
register_generator("grid", grid)
register_generator("planar", planar)
register_generator("sbm", sbm)


# -- validation --------------------------------------------------------------------------------
def validate_graphs(graphs: Sequence, source: str = "graphs", names: Sequence[str] | None = None) -> list[nx.Graph]:
    """Check a list of graphs and return simple undirected copies with nodes ``0..n-1``.

    Raises ``ValueError`` for an empty list, an entry that is not a ``networkx.Graph``, a directed
    graph, a graph without nodes, or a graph whose only edges are self loops; the message names the
    graph by its index, and by ``names[i]`` (e.g. its file) where given. Self loops next to ordinary
    edges are dropped; parallel edges of multigraphs are merged.
    """
    if not isinstance(graphs, (list, tuple)):
        raise ValueError(f"{source}: expected a list of networkx.Graph, got {type(graphs).__name__}")
    if len(graphs) == 0:
        raise ValueError(f"{source}: the list of graphs is empty")
    out = []
    for i, g in enumerate(graphs):
        graph = f"graph {i}" if names is None else f"graph {i} ({names[i]})"
        if not isinstance(g, nx.Graph):
            kind = type(g).__name__
            raise ValueError(f"{source}: {graph} is {'an' if kind[0].lower() in 'aeiou' else 'a'} {kind}, "
                             "expected a networkx.Graph")
        if g.is_directed():
            raise ValueError(f"{source}: {graph} is directed; graph generation here is for undirected "
                             "graphs (convert with graph.to_undirected() if the direction does not matter)")
        if g.number_of_nodes() == 0:
            raise ValueError(f"{source}: {graph} has no nodes")
        loops = nx.number_of_selfloops(g)
        if loops > 0 and loops == g.number_of_edges():
            raise ValueError(f"{source}: {graph} has only self loops ({loops}) and no other edges")
        simple = nx.Graph()
        simple.add_nodes_from(g.nodes)
        simple.add_edges_from((u, v) for u, v in g.edges() if u != v)
        out.append(nx.convert_node_labels_to_integers(simple, ordering="default"))
    return out


# -- loaders -----------------------------------------------------------------------------------
def load_json_graphs(path: str | os.PathLike) -> list[nx.Graph]:
    """Graphs from a JSON list of ``{"num_nodes": n, "edges": [[u, v], ...]}`` (nodes ``0..n-1``).

    An object with ``"directed": true`` is rejected like a directed networkx graph.
    """
    path = Path(path)
    try:
        records = json.loads(path.read_text(encoding="utf8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a readable JSON graph file, the file is truncated or corrupt "
                         f"({error})") from error
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of graphs, got a {type(records).__name__}")
    graphs = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or "num_nodes" not in rec or "edges" not in rec:
            raise ValueError(f"{path}: graph {i} must be an object with 'num_nodes' and 'edges'")
        n = rec["num_nodes"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{path}: graph {i} has num_nodes={n!r}; expected a positive integer")
        g = nx.DiGraph() if rec.get("directed", False) else nx.Graph()
        g.add_nodes_from(range(n))
        for edge in rec["edges"]:
            if not isinstance(edge, list) or len(edge) != 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v < n for v in edge
            ):
                raise ValueError(f"{path}: graph {i} has edge {edge!r}; nodes must be integers in [0, {n})")
            g.add_edge(*edge)
        graphs.append(g)
    return validate_graphs(graphs, source=str(path))


def load_pickle_graphs(path: str | os.PathLike, *, trust_pickle: bool = False) -> list[nx.Graph]:
    """Graphs from a pickle holding a list of ``networkx.Graph``.

    Read with the restricted unpickler (``load_pickle(path, allow="graphs")``): a file naming any
    other global raises :class:`spectraldiff.safe_pickle.UnsafePickleError` before anything runs.
    ``trust_pickle=True`` uses plain ``pickle.load``, which runs whatever code the file carries:
    only for files you trust.
    """
    path = Path(path)
    graphs = load_pickle(path, allow="graphs", trust_pickle=trust_pickle)
    return validate_graphs(graphs, source=str(path))


#: Name endings of the files an edge-list folder may hold (``""``: no suffix).
EDGE_LIST_SUFFIXES = ("", ".txt", ".edges", ".edgelist", ".el", ".tsv")


def natural_key(name: str) -> list:
    """Sort key that orders the digit runs of ``name`` as numbers: ``g2`` before ``g10``."""
    return [(0, int(part), part) if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part]


def load_edgelist_folder(path: str | os.PathLike) -> list[nx.Graph]:
    """One graph per file of a folder, in natural name order (``g2`` before ``g10``).

    Each line is ``u v`` (further columns, e.g. weights, are ignored); ``#`` starts a comment. Node
    labels may be any tokens; isolated nodes cannot be expressed in this format. Edges are undirected.
    Hidden files are skipped. The folder may hold only edge-list files (no suffix, or one of
    :data:`EDGE_LIST_SUFFIXES`): any other file (a README, a run's ``config.json``) is refused by name
    rather than read as a graph.
    """
    path = Path(path)
    entries = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
    others = sorted(p.name for p in entries if p.suffix.lower() not in EDGE_LIST_SUFFIXES)
    if others:
        raise ValueError(f"{path}: the folder holds files that are not edge lists: {', '.join(others[:5])}"
                         f"{' …' if len(others) > 5 else ''} (edge-list files have no suffix or one of "
                         f"{', '.join(s for s in EDGE_LIST_SUFFIXES if s)}); move them out of the folder")
    files = sorted(entries, key=lambda p: natural_key(p.name))
    if not files:
        raise ValueError(f"{path}: the folder holds no edge-list files")
    graphs = []
    for file in files:
        g = nx.Graph()
        try:
            text = file.read_text(encoding="utf8")
        except UnicodeDecodeError as error:
            raise ValueError(f"{file}: not a text edge list ({error})") from error
        for lineno, line in enumerate(text.splitlines(), start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            tokens = line.split()
            if len(tokens) < 2:
                raise ValueError(f"{file}:{lineno}: expected 'u v', got {line!r}")
            g.add_edge(tokens[0], tokens[1])
        if g.number_of_nodes() == 0:
            raise ValueError(f"{file}: no edges found")
        graphs.append(g)
    return validate_graphs(graphs, source=str(path), names=[file.name for file in files])


def load_graphs(path: str | os.PathLike, *, trust_pickle: bool = False) -> list[nx.Graph]:
    """Load graphs from a ``.json`` file, a ``.pkl``/``.pickle`` file (restricted unpickling unless
    ``trust_pickle``, see :func:`load_pickle_graphs`) or a folder of edge lists."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder")
    if path.is_dir():
        return load_edgelist_folder(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return load_json_graphs(path)
    if suffix in (".pkl", ".pickle"):
        return load_pickle_graphs(path, trust_pickle=trust_pickle)
    raise ValueError(f"{path}: unknown graph file type {suffix!r}; use .json, .pkl/.pickle or a folder of edge lists")


def save_json_graphs(graphs: Sequence[nx.Graph], path: str | os.PathLike) -> None:
    """Write graphs in the JSON edge-list format read by :func:`load_json_graphs`."""
    records = []
    for g in validate_graphs(list(graphs)):
        edges = sorted((min(u, v), max(u, v)) for u, v in g.edges())
        records.append({"num_nodes": g.number_of_nodes(), "edges": [list(e) for e in edges]})
    Path(path).write_text(json.dumps(records))


# -- split and published data ----------------------------------------------------------------
def split_graphs(graphs: Sequence[nx.Graph], test_fraction: float = TEST_FRACTION) -> tuple[list[nx.Graph], list[nx.Graph]]:
    """The published split: ``(train, test)`` with the first ``int(test_fraction · len)`` graphs as test.

    No shuffling. Raises ``ValueError`` when either part would be empty.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    num_test = int(test_fraction * len(graphs))
    if num_test < 1 or num_test >= len(graphs):
        needed = next(n for n in range(2, 10**6) if 1 <= int(test_fraction * n) < n)
        raise ValueError(f"{len(graphs)} graphs are too few to split into training and test graphs (the first "
                         f"{test_fraction:.0%} are the test set, here {num_test} graphs): give at least {needed}")
    graphs = list(graphs)
    return graphs[num_test:], graphs[:num_test]


def published_data_dir() -> Path | None:
    """``../shared/data/graphs`` next to the repository checkout, or None where it does not exist
    (a user's own clone, an installed package)."""
    candidate = Path(__file__).resolve().parents[3] / "shared" / "data" / "graphs"
    return candidate if candidate.is_dir() else None


def published_graphs_path(name: str) -> Path | None:
    """Path of the published JSON for dataset ``name`` (e.g. ``community_small``, ``enzymes``), or
    None if absent. Each set is split the same way (:func:`split_graphs`: the first 20 % are the test
    set, e.g. 117 of ENZYMES' 587 graphs), as ``../shared/data/graphs/README.md`` says."""
    if name not in available_datasets():
        raise UnknownNameError(f"unknown graph dataset {name!r}; choose one of {available_datasets()}")
    directory = published_data_dir()
    if directory is None:
        return None
    path = directory / f"{name}.json"
    return path if path.is_file() else None
