"""Learned first stages as systems: dense (faiss) and SPLADE retrieval over a small collection."""
from __future__ import annotations

import pytest

from workbench.core.errors import WorkbenchError
from workbench.experiment import Workbench

PASSAGES = [
    "Goldfish keep growing throughout their lives and can reach 30 cm in a pond.",
    "The melting point of ice is zero degrees Celsius at standard pressure.",
    "Wi-Fi and Bluetooth are both wireless technologies but differ in range and power use.",
    "The Manhattan Project produced the first nuclear weapons during World War II.",
    "Tomato soup is made from tomatoes, stock, onions and a little cream.",
    "Flea life cycle: egg, larva, pupa and adult, which takes a few weeks to months.",
] + [f"Filler passage number {i} about gardening, weather and local news." for i in range(20)]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-data")
    (root / "topics").mkdir()
    (root / "qrels").mkdir()
    (root / "collection.tsv").write_text("".join(f"p{i}\t{text}\n" for i, text in enumerate(PASSAGES)))
    (root / "topics" / "dl19-passage.tsv").write_text(
        "1\tdo goldfish grow\n2\twhat is the melting point of ice\n3\tlife cycle of a flea\n")
    (root / "qrels" / "dl19-passage.txt").write_text("1 0 p0 3\n2 0 p1 3\n3 0 p5 2\n3 0 p7 0\n")
    return root


@pytest.fixture(scope="module")
def bench(tiny_data, tmp_path_factory, session_cache):
    runs = tmp_path_factory.mktemp("tiny-runs")
    return Workbench(data_dir=tiny_data, runs_dir=runs, leaderboard=runs / "leaderboard.csv", progress=False)


@pytest.mark.parametrize("system", ["dense-mini", "splade-mini"])
def test_learned_first_stage_finds_the_relevant_passages(bench, system):
    stored = bench.produce(system, "dl19")
    top = stored.run[stored.run["rank"] == 1].set_index("qid")["docno"].to_dict()
    assert top == {"1": "p0", "2": "p1", "3": "p5"}
    assert "not comparable" in stored.manifest["candidates"]
    evaluation = bench.evaluate(stored, "dl19")
    assert evaluation.means["mrr@10"] == 1.0
    assert bench.produce(system, "dl19").reused


def test_dense_hnsw_and_bad_options(bench):
    stored = bench.produce("dense-mini:index=hnsw,k=5", "dl19")
    assert stored.run.groupby("qid").size().max() == 5
    assert stored.manifest["config"]["index"] == "hnsw"
    with pytest.raises(WorkbenchError, match="unknown option 'colour' for the dense-mini first stage; known: encoder, precision, backend, index, k"):
        bench.produce("dense-mini:colour=blue", "dl19")
    with pytest.raises(WorkbenchError, match="not an encoder-based reranker"):
        bench.produce("dense-mini:encoder=tfidf", "dl19")
