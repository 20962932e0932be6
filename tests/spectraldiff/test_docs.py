"""The Python examples in README.md and docs/spectraldiff.md run as written."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["README.md"]  # docs/spectraldiff.md's example is run (and checked) below


def python_blocks(path):
    return re.findall(r"```python\n(.*?)```", (ROOT / path).read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("path", DOCS)
def test_python_examples_run(path, capsys):
    blocks = python_blocks(path)
    assert blocks, f"{path} has no python example"
    for block in blocks:
        exec(compile(block, f"{path}:example", "exec"), {"__name__": "__doc_example__"})
    out = capsys.readouterr().out
    assert out.strip(), "examples print what they compute"


def test_spectral_doc_example_learns_something(capsys):
    (block,) = python_blocks("docs/spectraldiff.md")
    exec(compile(block, "docs/spectraldiff.md:example", "exec"), {"__name__": "__doc_example__"})
    w1 = float(re.search(r"W1 to the data after 100 steps: ([0-9.]+)", capsys.readouterr().out).group(1))
    assert w1 < 1.0  # the untrained network is two orders of magnitude further away


def test_own_graphs_examples_run_and_the_mask_aware_sort_matters(capsys):
    """docs/own_graphs.md: the networkx, edge_index and DGL examples (the DGL one where DGL is installed)."""
    blocks = python_blocks("docs/own_graphs.md")
    assert len(blocks) == 3 and "import dgl" in blocks[2]
    for block in blocks[:2]:
        exec(compile(block, "docs/own_graphs.md:example", "exec"), {"__name__": "__doc_example__"})
    out = capsys.readouterr().out
    assert "padding after the sort: 0.0" in out
    rebuilt = int(re.search(r"graphs rebuilt exactly: (\d+) of 16", out).group(1))
    naive = int(re.search(r"with a mask-blind sort instead: (\d+) of 16", out).group(1))
    assert rebuilt >= 10 and naive < rebuilt
    assert "sizes: [3, 2] eigenvalues of the triangle: [-1.0, -1.0, 2.0]" in out
    pytest.importorskip("dgl")
    exec(compile(blocks[2], "docs/own_graphs.md:dgl", "exec"), {"__name__": "__doc_example__"})
    assert "batched: 2 graphs, [6, 4] nodes, [12, 6] directed edges" in capsys.readouterr().out
