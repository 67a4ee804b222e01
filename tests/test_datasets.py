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


# --- the registry of dataset sources: plugins ---------------------------------------------------

PLUGIN_SOURCE = '''
"""A third-party distribution that ships datasets for workbench."""
from pathlib import Path

from workbench.data.dataset import Dataset, DatasetSpec

HERE = Path(__file__).parent


def tiny(name, data_dir):
    return Dataset(DatasetSpec(name, "topics.tsv", "qrels.txt", 1, "a plugin's dataset"), HERE)


def family(name, data_dir):
    return Dataset(DatasetSpec(name, "topics.tsv", "qrels.txt", 2, f"{name}, one of a family"), HERE)


def not_a_dataset(name, data_dir):
    return {"name": name}
'''

ENTRY_POINTS = '''
[workbench.datasets]
tiny-plugin = my_dataset_plugin:tiny
mine: = my_dataset_plugin:family
dl19 = my_dataset_plugin:tiny
broken-set = my_dataset_plugin_missing:make
odd-set = my_dataset_plugin:not_a_dataset
'''


@pytest.fixture
def dataset_plugin(tmp_path, monkeypatch):
    """A plugin distribution on sys.path: a package and a .dist-info with entry_points.txt (what
    ``pip install`` leaves behind)."""
    package = tmp_path / "site" / "my_dataset_plugin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(PLUGIN_SOURCE, encoding="utf-8")
    (package / "topics.tsv").write_text("q1\tcat\nq2\tdog\n", encoding="utf-8")
    (package / "qrels.txt").write_text("q1 0 d1 2\nq2 0 d2 1\n", encoding="utf-8")
    info = tmp_path / "site" / "my_dataset_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-dataset-plugin\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(ENTRY_POINTS, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return package


def test_a_plugin_dataset_is_found_by_name(dataset_plugin, data_dir):
    from workbench.data.datasets import SOURCES, known_dataset_names

    tiny = get_dataset("tiny-plugin")
    assert tiny.name == "tiny-plugin" and tiny.description == "a plugin's dataset"
    assert list(tiny.judged_topics["qid"]) == ["q1", "q2"]
    member = get_dataset("mine:robust")  # a family: every name after its prefix
    assert member.name == "mine:robust" and member.relevance_level == 2
    # a plugin never shadows a built-in name; listing names imports no plugin
    assert get_dataset("dl19", data_dir).description.startswith("TREC DL 2019")
    names = known_dataset_names()
    assert names[:4] == ["dl19", "dl20", "dev600", "dev-small"] and names.count("dl19") == 1
    assert "tiny-plugin" in names and "broken-set" in names
    assert [s.label for s in SOURCES.sources()][:3] == ["built in", "ir_datasets", "declared"]
    assert "plugin my-dataset-plugin" in {s.label for s in SOURCES.sources()}


def test_unknown_and_broken_plugin_datasets_are_one_line(dataset_plugin):
    with pytest.raises(WorkbenchError) as error:
        get_dataset("nope")
    message = str(error.value)
    assert message.startswith("unknown dataset 'nope'; known datasets: dl19, dl20, dev600, dev-small")
    assert "tiny-plugin" in message and "or irds:<ir_datasets id> or mine:<name>;" in message
    with pytest.raises(WorkbenchError, match=r"dataset plugin 'broken-set' \(my_dataset_plugin_missing:make, entry "
                                             r"point group workbench.datasets\) failed to load: ModuleNotFoundError"):
        get_dataset("broken-set")
    with pytest.raises(WorkbenchError, match="gave a dict for 'odd-set', not a Dataset"):
        get_dataset("odd-set")
    with pytest.raises(WorkbenchError, match="unknown dataset 'mine:'"):
        get_dataset("mine:")  # a family's prefix alone names nothing
