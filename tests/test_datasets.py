"""Named datasets in a configurable data directory."""
from __future__ import annotations

import pytest

from workbench.data.datasets import DATASETS, get_dataset, resolve_data_dir
from workbench.core.errors import WorkbenchError


def test_unknown_dataset_lists_known_ones(data_dir):
    with pytest.raises(WorkbenchError, match="unknown dataset 'dl21'; known datasets: dl19, dl20, dev600, dev-small"):
        get_dataset("dl21", data_dir)


def test_missing_data_directory_says_how_to_get_data(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    with pytest.raises(WorkbenchError) as error:
        resolve_data_dir(missing)
    message = str(error.value)
    assert message.startswith(str(missing)) and "WORKBENCH_DATA" in message and "make data" in message
    monkeypatch.setenv("WORKBENCH_DATA", str(missing))
    with pytest.raises(WorkbenchError, match="data directory does not exist"):
        get_dataset("dl19")


def test_no_data_directory_anywhere(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WorkbenchError, match="no data directory found; set WORKBENCH_DATA"):
        resolve_data_dir()


def test_environment_variable_locates_data(data_dir, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DATA", str(data_dir))
    assert get_dataset("dl19").data_dir == data_dir


@pytest.mark.parametrize("name, topics, judged, level", [
    ("dl19", 43, 43, 2), ("dl20", 200, 54, 2), ("dev600", 600, 600, 1), ("dev-small", 6980, 6980, 1)])
def test_dataset_counts_and_relevance_levels(data_dir, name, topics, judged, level):
    dataset = get_dataset(name, data_dir)
    assert len(dataset.topics) == topics
    assert len(dataset.judged_topics) == judged
    assert dataset.n_unjudged == topics - judged
    assert dataset.relevance_level == level


def test_official_runs(data_dir):
    dl19 = get_dataset("dl19", data_dir)
    assert dl19.official_run_path("bm25").name == "bm25.dl19.trec"
    assert get_dataset("dev600", data_dir).official_run_path("bm25").name == "bm25-top20.dev600.trec"
    with pytest.raises(WorkbenchError, match="has no official run 'bm42'"):
        dl19.official_run_path("bm42")
    assert set(DATASETS) == {"dl19", "dl20", "dev600", "dev-small"}
