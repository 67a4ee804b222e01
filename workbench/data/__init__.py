"""Data: TREC formats (runs, qrels, topics as DataFrames), the passage collection, datasets by
name (built in, declared in TOML, ir_datasets ids, plugins: one registry of sources), and
materialisation of the data directory from ir_datasets."""
from .collection import Collection
from .datasets import DATASETS, Dataset, DatasetSpec, get_dataset, resolve_data_dir
from .trec import read_qrels, read_run, read_topics, sort_run, truncate_run, write_run

__all__ = ["DATASETS", "Collection", "Dataset", "DatasetSpec", "get_dataset", "read_qrels", "read_run",
           "read_topics", "resolve_data_dir", "sort_run", "truncate_run", "write_run"]
