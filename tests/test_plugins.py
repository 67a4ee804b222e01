"""Plugins: a distribution that declares entry points adds a reranker and a first stage, which
then work in system names, without touching this repository.

The plugin is made in the test: a package plus a ``.dist-info`` with ``entry_points.txt`` on
``sys.path`` is all ``importlib.metadata`` needs (what ``pip install`` would leave behind).
"""
from __future__ import annotations

import textwrap

import pytest

from helpers_data import make_tiny_data
from workbench.core.errors import WorkbenchError
from workbench.experiment import Workbench
from workbench.first_stage.registry import FIRST_STAGES
from workbench.rerankers.registry import REGISTRY, get_reranker

PLUGIN_SOURCE = '''
"""A third-party reranker and first stage for workbench."""
import numpy as np
import pandas as pd

from workbench.core.options import Option
from workbench.data.trec import sort_run
from workbench.first_stage import FirstStage
from workbench.rerankers import Reranker


class Overlap(Reranker):
    kind = "overlap"

    def __init__(self, lowercase):
        self.lowercase = lowercase

    def score(self, query, passages):
        norm = str.lower if self.lowercase else str
        words = set(norm(query).split())
        return np.array([len(words & set(norm(p).split())) for p in passages], dtype=float)

    def config(self):
        return {"kind": self.kind, "lowercase": self.lowercase}


def make_overlap(context, lowercase):
    """word overlap of query and passage (plugin)"""
    return Overlap(lowercase)


make_overlap.options = (Option("lowercase", bool, True, help="compare lowercased words"),)


class FirstPassages(FirstStage):
    kind = "first-passages"
    candidates = "the first k passages of the collection (plugin; not comparable)"

    def __init__(self, collection, k):
        self.collection, self.k = collection, k

    def config(self):
        return {"type": self.kind, "k": self.k, "collection_sha256": self.collection.fingerprint}

    def search(self, topics):
        docnos = list(self.collection.texts)[: self.k]
        rows = [(qid, docno, float(self.k - i)) for qid in topics["qid"] for i, docno in enumerate(docnos)]
        return sort_run(pd.DataFrame(rows, columns=["qid", "docno", "score"]))


def make_first_passages(context, k):
    """the first k passages of the collection for every query (plugin)"""
    return FirstPassages(context.collection, k)


make_first_passages.options = (Option("k", int, 3, minimum=1, help="passages per query"),)


def broken(context):
    raise RuntimeError("never built")
'''

ENTRY_POINTS = '''
[workbench.rerankers]
overlap = my_workbench_plugin:make_overlap

[workbench.first_stages]
first-passages = my_workbench_plugin:make_first_passages
missing-stage = my_workbench_plugin_missing:make
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "my_workbench_plugin").mkdir(parents=True)
    (site / "my_workbench_plugin" / "__init__.py").write_text(PLUGIN_SOURCE, encoding="utf-8")
    info = site / "my_workbench_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-workbench-plugin\nVersion: 0.1\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text(textwrap.dedent(ENTRY_POINTS), encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    yield site
    for registry, name in ((REGISTRY, "overlap"), (FIRST_STAGES, "first-passages")):
        if name in registry._entries:
            registry.unregister(name)


@pytest.fixture
def tiny_data(tmp_path):
    return make_tiny_data(tmp_path / "data")


def test_a_plugin_reranker_is_found_by_name(plugin):
    reranker = get_reranker("overlap:lowercase=false")
    assert reranker.config() == {"kind": "overlap", "lowercase": False}
    assert list(reranker.score("Paris", ["paris", "Paris is"])) == [0.0, 1.0]
    assert "overlap" in REGISTRY.names()
    assert "word overlap of query and passage (plugin) [plugin my-workbench-plugin]" in REGISTRY.describe()
    with pytest.raises(WorkbenchError, match="unknown option 'case' for the overlap reranker; known: lowercase"):
        get_reranker("overlap:case=1")


def test_plugins_work_in_system_names(plugin, tiny_data, tmp_path):
    bench = Workbench(data_dir=tiny_data, runs_dir=tmp_path / "runs", leaderboard=tmp_path / "board.csv",
                      progress=False)
    reranked = bench.produce("official-bm25+overlap", "dl19")
    assert reranked.run[reranked.run.qid == "1"].docno.iloc[0] in {"p1", "p2"}  # overlap beats BM25's p3
    assert reranked.manifest["model_ids"] == {"kind": "overlap", "lowercase": True}
    stage = bench.produce("first-passages:k=2", "dl19")
    assert stage.manifest["candidates"].startswith("the first k passages")
    assert sorted(stage.run.docno.unique()) == ["p1", "p2"]
    chained = bench.run_system("first-passages:k=4+overlap", "dl19")
    assert chained.evaluation.means["ndcg@10"] > 0
    assert bench.produce("first-passages:k=4+overlap", "dl19").reused


def test_a_broken_plugin_is_one_clear_line(plugin):
    with pytest.raises(WorkbenchError) as caught:
        FIRST_STAGES.build("missing-stage", None)
    message = str(caught.value)
    assert "first stage plugin 'missing-stage'" in message and "failed to load" in message and "\n" not in message


def test_a_builtin_component_is_one_file(tmp_path, monkeypatch):
    """A module dropped into a registry's package registers itself: nothing else is edited."""
    from workbench.core.registry import Registry

    package = tmp_path / "fake_components"
    package.mkdir()
    (package / "__init__.py").write_text("from workbench.core.registry import Registry\n"
                                         "REGISTRY = Registry('widget', group='none', package='fake_components')\n")
    (package / "spinner.py").write_text(
        "from workbench.core.options import Option\nfrom . import REGISTRY\n\n"
        "@REGISTRY.register('spinner', help='spins', options=(Option('speed', int, 1, help='turns'),))\n"
        "def make_spinner(context, speed):\n    return ('spinner', speed)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    registry: Registry = importlib.import_module("fake_components").REGISTRY
    assert registry.build("spinner:speed=3", None) == ("spinner", 3)
    assert registry.names() == ["spinner"]
