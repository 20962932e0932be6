"""No file-reading entry point runs code from the file it reads.

Each test writes a crafted file whose loading would create ``MARKER`` (a payload object whose
``__reduce__`` calls ``exec`` or ``os.system``), calls one entry point on it, and checks that the
entry point fails with an error naming the file and that ``MARKER`` was never created. Benign files in
the real formats still load with the defaults, and ``trust_pickle=True`` is the only way to load other
pickles. Everything happens in ``tmp_path`` (also the working directory), so a payload that does run
cannot touch anything else.
"""

import fractions
import functools
import importlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch

import mer
from mer.data import load_dataset, load_gcnet, load_mmsa
from spectraldiff.safe_pickle import (
    CorruptPickleError,
    UnsafePickleError,
    allowed_globals,
    load_pickle,
)

REPO = Path(__file__).resolve().parents[1]
MARKER = "MARKER"


class ExecPayload:
    """Unpickling this runs ``exec``, which creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


class SystemPayload:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


PAYLOADS = {"exec": (ExecPayload, "builtins.exec"), "system": (SystemPayload, f"{os.name}.system")}


@pytest.fixture
def marker(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path / MARKER


def _dump(path, obj, protocol=pickle.DEFAULT_PROTOCOL):
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=protocol)
    return path


def _mmsa(payload=None, n=2):
    """A tiny aligned MMSA dict; ``payload`` hidden inside the object array of ids of 'train'."""
    rng = np.random.default_rng(0)
    data = {}
    for s, video in (("train", "vA"), ("valid", "vB"), ("test", "vC")):
        bert = np.zeros((n, 3, 4), dtype=np.float32)
        bert[:, 1, :2] = 1
        data[s] = {
            "id": np.array([f"{video}$_$%d" % j for j in range(n)], dtype=object),
            "text": rng.normal(size=(n, 4, 3)).astype(np.float32),
            "text_bert": bert,
            "audio": rng.normal(size=(n, 4, 2)).astype(np.float32),
            "vision": rng.normal(size=(n, 4, 2)).astype(np.float32),
            "regression_labels": rng.uniform(-3, 3, size=n).astype(np.float32),
        }
    if payload is not None:
        data["train"]["id"] = np.array([payload, "vA$_$1"], dtype=object)
    return data


def _gcnet(tmp_path, payload=None):
    """A tiny GCNet label list and per-modality .npy folders; ``payload`` as a label."""
    video_ids = {"c1": ["u1", "u2"], "c2": ["u3"], "c3": ["u4"]}
    labels = {"c1": [0.5, 1.0], "c2": [0.0], "c3": [-1.0]}
    if payload is not None:
        labels["c1"] = [payload, 1.0]
    speakers = {v: [0] * len(u) for v, u in video_ids.items()}
    content = [video_ids, labels, speakers, {}, ["c1"], ["c2"], ["c3"]]
    dirs = {}
    for m in ("t", "a"):
        folder = tmp_path / m
        folder.mkdir(exist_ok=True)
        dirs[m] = str(folder)
        for uids in video_ids.values():
            for uid in uids:
                np.save(folder / f"{uid}.npy", np.ones(3, dtype=np.float32))
    return content, dirs


def _names_file(error, path):
    return os.fspath(path) in str(error) or Path(path).name in str(error)


# -------------------------------------------------------------------------------- load_pickle
@pytest.mark.parametrize("allow", ["data", "graphs"])
@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_load_pickle_refuses_code_naming_file_and_global(tmp_path, marker, allow, payload):
    cls, refused = PAYLOADS[payload]
    for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
        path = _dump(tmp_path / f"evil{protocol}.pkl", {"x": [cls(marker)]}, protocol)
        with pytest.raises(UnsafePickleError) as err:
            load_pickle(path, allow=allow)
        assert not marker.exists()
        assert str(path) in str(err.value) and refused in str(err.value)
        assert "trust_pickle=True" in str(err.value) and "--trust-pickle" in str(err.value)


def test_unsafe_and_corrupt_errors_are_value_errors_for_the_cli():
    # The CLIs report ValueError as a one-line user error with exit code 2.
    for error in (UnsafePickleError, CorruptPickleError):
        assert issubclass(error, ValueError) and issubclass(error, pickle.UnpicklingError)


def test_trust_pickle_loads_other_objects_that_the_default_refuses(tmp_path, marker):
    path = _dump(tmp_path / "fraction.pkl", {"ratio": fractions.Fraction(2, 3)})
    with pytest.raises(UnsafePickleError, match=r"fractions\.Fraction"):
        load_pickle(path)
    assert load_pickle(path, trust_pickle=True) == {"ratio": fractions.Fraction(2, 3)}


def test_data_mode_refuses_graphs_that_graph_mode_loads(tmp_path, marker):
    path = _dump(tmp_path / "graphs.pkl", [nx.path_graph(3)])
    with pytest.raises(UnsafePickleError, match=r"networkx\.classes\.graph\.Graph"):
        load_pickle(path)
    assert nx.utils.graphs_equal(load_pickle(path, allow="graphs")[0], nx.path_graph(3))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_data_mode_round_trips_containers_scalars_and_numpy(tmp_path, protocol):
    import collections

    value = {
        "float32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "strided": np.arange(12.0).reshape(3, 4)[:, ::2],
        "ids": np.array(["v$_$1", "v$_$2"], dtype=object),
        "unicode": np.array(["é", "ab"]),
        "record": np.zeros(2, dtype=[("x", "f4"), ("y", "i8")]),
        "scalars": [np.float32(1.5), np.int64(-3), np.bool_(True)],
        "dtype": np.dtype("<f8"),
        "plain": (1, 2.5, 1j, 2**80, None, True, "s", b"b", bytearray(b"ba"), slice(1, 2)),
        "sets": [{1, 2}, frozenset({"a"})],
        "ordered": collections.OrderedDict(a=1),
        "default": collections.defaultdict(list, a=[1]),
    }
    out = load_pickle(_dump(tmp_path / "data.pkl", value, protocol))
    assert out.keys() == value.keys()
    for key, expected in value.items():
        if isinstance(expected, np.ndarray):
            assert out[key].dtype == expected.dtype and np.array_equal(out[key], expected)
        else:
            assert out[key] == expected and type(out[key]) is type(expected)
    assert out["default"].default_factory is list


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_graph_mode_round_trips_every_networkx_graph_class_with_cached_views(tmp_path, protocol):
    graphs = []
    for cls in (nx.Graph, nx.DiGraph, nx.MultiGraph, nx.MultiDiGraph):
        g = cls(name="g")
        g.add_edge(0, 1, weight=np.float64(0.5))
        g.add_node(2, feature=np.ones(3, dtype=np.float32), label=np.int64(4))
        for attr in dir(cls):  # nodes, edges, adj, degree, ...: cached views travel in the pickle
            if isinstance(getattr(cls, attr, None), functools.cached_property):
                getattr(g, attr)
        graphs.append(g)
    out = load_pickle(_dump(tmp_path / "graphs.pkl", graphs, protocol), allow="graphs")
    for got, expected in zip(out, graphs, strict=True):
        assert type(got) is type(expected) and got.graph == expected.graph
        assert list(got.nodes) == list(expected.nodes)
        assert list(got.edges(data=True)) == list(expected.edges(data=True))
        assert got.nodes[2]["label"] == 4 and np.array_equal(got.nodes[2]["feature"], np.ones(3))
        assert dict(got.degree) == dict(expected.degree)


def test_graph_mode_reads_frozen_graphs_and_they_stay_frozen(tmp_path):
    frozen = nx.freeze(nx.path_graph(3))
    (out,) = load_pickle(_dump(tmp_path / "frozen.pkl", [frozen], pickle.HIGHEST_PROTOCOL), allow="graphs")
    assert nx.is_frozen(out) and list(out.edges) == [(0, 1), (1, 2)]
    with pytest.raises(nx.NetworkXError, match="Frozen graph can't be modified"):
        out.add_edge(0, 2)


def test_allowed_globals_hold_only_data_constructors():
    data, graphs = set(allowed_globals("data")), set(allowed_globals("graphs"))
    assert data < graphs
    assert {"numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct", "numpy.ndarray",
            "numpy.dtype", "builtins.dict", "builtins.set"} <= data
    assert {"networkx.classes.graph.Graph", "networkx.classes.multidigraph.MultiDiGraph"} <= graphs
    dangerous = {"builtins.eval", "builtins.exec", "builtins.getattr", "builtins.open", "builtins.__import__",
                 "os.system", "posix.system", "subprocess.Popen", "numpy.load", "torch.load"}
    assert not dangerous & graphs


@pytest.mark.parametrize("module,name", [("builtins", "getattr"), ("__builtin__", "eval"),
                                         ("numpy", "load"), ("numpy.ndarray", "__reduce__")])
def test_hand_written_globals_are_refused(tmp_path, module, name):
    path = tmp_path / "global.pkl"
    path.write_bytes(f"c{module}\n{name}\n.".encode())  # protocol 0 GLOBAL then STOP
    with pytest.raises(UnsafePickleError, match="refused to unpickle"):
        load_pickle(path, allow="graphs")


def test_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.pkl"):
        load_pickle(tmp_path / "absent.pkl")


@pytest.mark.parametrize("trust", [False, True])
@pytest.mark.parametrize("damage", ["truncated", "empty", "junk"])
def test_corrupt_pickle_error_names_the_file(tmp_path, damage, trust):
    good = pickle.dumps({"a": np.arange(50.0)}, protocol=4)
    data = {"truncated": good[: len(good) // 2], "empty": b"", "junk": b"\x00not a pickle at all"}[damage]
    path = tmp_path / f"{damage}.pkl"
    path.write_bytes(data)
    with pytest.raises(CorruptPickleError) as err:
        load_pickle(path, trust_pickle=trust)
    assert str(path) in str(err.value) and "truncated or corrupt" in str(err.value)


def test_unknown_allow_lists_the_choices(tmp_path):
    with pytest.raises(ValueError, match=r"allow must be one of \['data', 'graphs'\]"):
        load_pickle(tmp_path / "x.pkl", allow="everything")


# -------------------------------------------------------------------------------- MMSA / GCNet
@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_mmsa_loader_refuses_code(tmp_path, marker, payload):
    cls, refused = PAYLOADS[payload]
    path = _dump(tmp_path / "aligned_50.pkl", _mmsa(cls(marker)))
    for load in (lambda: load_mmsa(path), lambda: load_dataset("mmsa", path=path),
                 lambda: mer.data.load_data(mer.data.DataConfig("mmsa", {"path": str(path)}))):
        with pytest.raises(UnsafePickleError) as err:
            load()
        assert not marker.exists()
        assert str(path) in str(err.value) and refused in str(err.value)


def test_mmsa_benign_file_loads_by_default_and_trusted(tmp_path):
    path = _dump(tmp_path / "aligned_50.pkl", _mmsa())
    default, trusted = load_mmsa(path), load_mmsa(path, trust_pickle=True)
    assert [c.conversation_id for c in default] == ["vA", "vB", "vC"]
    np.testing.assert_array_equal(default[0].features["a"], trusted[0].features["a"])


def test_mmsa_corrupt_file_names_it(tmp_path):
    path = tmp_path / "aligned_50.pkl"
    path.write_bytes(pickle.dumps(_mmsa())[:100])
    with pytest.raises(ValueError, match="aligned_50.pkl: not a readable pickle"):
        load_mmsa(path)


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_gcnet_loader_refuses_code(tmp_path, marker, payload):
    cls, refused = PAYLOADS[payload]
    content, dirs = _gcnet(tmp_path, cls(marker))
    path = _dump(tmp_path / "labels.pkl", content, protocol=2)
    for load in (lambda: load_gcnet(path, dirs),
                 lambda: load_dataset("gcnet", label_pickle=path, feature_dirs=dirs)):
        with pytest.raises(UnsafePickleError) as err:
            load()
        assert not marker.exists()
        assert str(path) in str(err.value) and refused in str(err.value)


def test_gcnet_benign_python2_style_pickle_loads(tmp_path):
    content, dirs = _gcnet(tmp_path)
    content[4] = {"c1"}  # Python 2 era files keep split lists as sets (__builtin__.set in protocol 2)
    path = _dump(tmp_path / "labels.pkl", content, protocol=2)
    ds = load_gcnet(path, dirs)
    assert [c.conversation_id for c in ds] == ["c1", "c2", "c3"]
    assert [c.conversation_id for c in load_gcnet(path, dirs, trust_pickle=True)] == ["c1", "c2", "c3"]


def test_gcnet_corrupt_label_pickle_names_it(tmp_path):
    content, dirs = _gcnet(tmp_path)
    path = tmp_path / "labels.pkl"
    path.write_bytes(pickle.dumps(content)[:40])
    with pytest.raises(ValueError, match="labels.pkl: not a readable pickle"):
        load_gcnet(path, dirs)


@pytest.mark.parametrize("damage", ["truncated", "empty", "object_array", "pickle"])
def test_gcnet_bad_npy_names_the_file_and_runs_nothing(tmp_path, marker, damage):
    content, dirs = _gcnet(tmp_path)
    path = _dump(tmp_path / "labels.pkl", content)
    npy = Path(dirs["a"]) / "u2.npy"
    if damage == "truncated":
        np.save(npy, np.arange(100.0))
        npy.write_bytes(npy.read_bytes()[:150])
    elif damage == "empty":
        npy.write_bytes(b"")
    elif damage == "object_array":
        np.save(npy, np.array([ExecPayload(marker)], dtype=object), allow_pickle=True)
    else:
        npy.write_bytes(pickle.dumps(ExecPayload(marker)))
    with pytest.raises(ValueError, match=r"utterance 'u2': .*u2\.npy is not a readable \.npy"):
        load_gcnet(path, dirs)
    assert not marker.exists()


# -------------------------------------------------------------------------------- graph loader
def _graph_loader():
    try:
        return importlib.import_module("spectraldiff.generation.datasets").load_graphs
    except ModuleNotFoundError:
        return importlib.import_module("spectraldiff.graph_datasets").load_graphs


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_graph_loader_refuses_code(tmp_path, marker, payload):
    cls, refused = PAYLOADS[payload]
    path = _dump(tmp_path / "graphs.pkl", [nx.path_graph(3), cls(marker)])
    with pytest.raises(ValueError) as err:
        _graph_loader()(path)
    assert not marker.exists()
    assert str(path) in str(err.value) and refused in str(err.value)


def test_graph_loader_reads_a_benign_list_of_networkx_graphs(tmp_path):
    graphs = [nx.path_graph(4), nx.cycle_graph(5)]
    for g in graphs:
        g.nodes, g.edges, g.degree  # cached views are part of ordinary pickles
    out = _graph_loader()(_dump(tmp_path / "graphs.pkl", graphs))
    assert [(g.number_of_nodes(), g.number_of_edges()) for g in out] == [(4, 3), (5, 5)]


def _run(*args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_generate_cli_refuses_a_code_carrying_graph_pickle(tmp_path, marker):
    path = _dump(tmp_path / "graphs.pkl", [nx.path_graph(3), ExecPayload(marker)])
    done = _run("-m", "spectraldiff", "generate", "--graphs", str(path), "--out", str(tmp_path / "out"),
                "--epochs", "1", "--steps", "2", cwd=tmp_path)
    assert not marker.exists()
    assert done.returncode != 0 and str(path) in done.stderr


def test_mer_train_cli_refuses_a_code_carrying_feature_pickle(tmp_path, marker):
    path = _dump(tmp_path / "aligned_50.pkl", _mmsa(ExecPayload(marker)))
    done = _run("-m", "mer", "train", "--data", str(path), "--out", str(tmp_path / "run"), "--epochs", "1",
                cwd=tmp_path)
    assert not marker.exists()
    assert done.returncode == 2, done.stderr
    assert str(path) in done.stderr and "builtins.exec" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


# -------------------------------------------------------------------------------- checkpoints
def _crafted_checkpoint(path, marker):
    """A file shaped like a mer checkpoint whose unpickling runs the payload."""
    torch.save({"format": 1, "config": {}, "dataset_info": {}, "model": {"w": torch.zeros(2)},
                "payload": ExecPayload(marker)}, path)
    return path


def _checkpoint_error_names(error, path):
    assert isinstance(error, (ValueError, pickle.UnpicklingError)), repr(error)
    assert _names_file(error, path), str(error)


def test_trained_model_load_runs_no_code_from_best_pt(tmp_path, marker):
    run = tmp_path / "run"
    run.mkdir()
    best = _crafted_checkpoint(run / "best.pt", marker)
    for target in (best, run):
        with pytest.raises(Exception) as err:
            mer.TrainedModel.load(target)
        assert not marker.exists()
        _checkpoint_error_names(err.value, best)


def test_training_resume_runs_no_code_from_last_pt(tmp_path, marker):
    run = tmp_path / "run"
    run.mkdir()
    last = _crafted_checkpoint(run / "last.pt", marker)
    dataset = mer.data.synthetic_conversations(seed=0, num_conversations=12)
    with pytest.raises(Exception) as err:
        mer.train(dataset, "zero", epochs=1, out_dir=run)
    assert not marker.exists()
    _checkpoint_error_names(err.value, last)


def test_evaluate_cli_runs_no_code_from_best_pt(tmp_path, marker):
    run = tmp_path / "run"
    run.mkdir()
    _crafted_checkpoint(run / "best.pt", marker)
    done = _run("-m", "mer", "evaluate", str(run), cwd=tmp_path)
    assert not marker.exists()
    assert done.returncode == 2, done.stderr
    assert "best.pt" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


# -------------------------------------------------------------------------------- configs
def _yaml_with_python_tag(tmp_path, marker):
    path = tmp_path / "run.yaml"
    path.write_text(f"seed: !!python/object/apply:exec [\"open('{marker}', 'w').close()\"]\n")
    return path


def test_yaml_config_python_tags_are_not_executed(tmp_path, marker):
    with pytest.raises(Exception):
        mer.RunConfig.from_file(_yaml_with_python_tag(tmp_path, marker))
    assert not marker.exists()


def test_yaml_config_python_tag_error_names_the_file(tmp_path, marker):
    path = _yaml_with_python_tag(tmp_path, marker)
    with pytest.raises(ValueError) as err:
        mer.RunConfig.from_file(path)
    assert _names_file(err.value, path), str(err.value)
