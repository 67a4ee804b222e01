"""Where dataset names come from: one registry of dataset sources, which plugins extend.

A :class:`DatasetSource` gives the dataset of the names it knows. :class:`DatasetSources` asks
its sources in order and the first that knows a name gives its dataset; an unknown name is one
line listing every known name. :data:`workbench.data.datasets.SOURCES` holds, in this order, the
built-in datasets, ``irds:<id>``, the datasets declared in TOML files, then one source per entry
point of the group ``workbench.datasets``, so ``pip install`` of a plugin distribution adds
datasets::

    # pyproject.toml of a plugin distribution
    [project.entry-points."workbench.datasets"]
    robust04 = "my_package.datasets:robust04"   # the dataset named robust04
    "mine:" = "my_package.datasets:mine"        # a family: every name mine:<anything>

The entry point's object is a factory ``factory(name, data_dir) -> Dataset`` (``name`` as asked,
``data_dir`` the ``--data-dir`` given, or None), imported only when one of its names is asked
for: listing names never imports a plugin. A plugin cannot shadow an earlier source's name.

(:class:`workbench.core.registry.Registry` names components with options, ``name:options``, and
keeps what it loaded; a dataset name may hold a colon, and the declared names change with the
working directory and ``--dataset-file``, so datasets have this small registry of their own.)
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ..core.errors import WorkbenchError, first_line
from .dataset import Dataset

ENTRY_POINT_GROUP = "workbench.datasets"

Finder = Callable[[str, str | Path | None], Dataset | None]


def _no_names() -> list[str]:
    return []


@dataclass(frozen=True)
class DatasetSource:
    """One way datasets are found by name.

    ``find(name, data_dir)`` gives the dataset of ``name``, or None when the name is not this
    source's; ``names()`` the names it knows (listed when a name is unknown); ``pattern`` an
    open-ended spelling it also takes (``irds:<ir_datasets id>``), listed after the names."""

    label: str
    find: Finder
    names: Callable[[], Iterable[str]] = _no_names
    pattern: str = ""


class DatasetSources:
    """The sources of dataset names, asked in order; plugins from the entry point ``group``."""

    def __init__(self, group: str = ENTRY_POINT_GROUP):
        self.group = group
        self._sources: list[DatasetSource] = []
        self._factories: dict[tuple[str, str], Callable[..., Any]] = {}  # loaded entry points

    def add(self, source: DatasetSource) -> DatasetSource:
        """Add a source after those already there (its names never shadow theirs)."""
        if any(known.label == source.label for known in self._sources):
            raise ValueError(f"dataset source {source.label!r} added twice")
        self._sources.append(source)
        return source

    def sources(self) -> list[DatasetSource]:
        """Every source in the order they are asked: those added, then one per plugin entry point."""
        return list(self._in_order())

    def _in_order(self) -> Iterator[DatasetSource]:
        yield from self._sources
        # read only when the sources added do not know a name (or for listing)
        for point in metadata.entry_points(group=self.group):
            yield self._plugin_source(point)

    def find(self, name: str, data_dir: str | Path | None = None) -> Dataset | None:
        """The dataset of ``name`` from the first source that knows it, or None."""
        for source in self._in_order():
            dataset = source.find(name, data_dir)
            if dataset is not None:
                return dataset
        return None

    def get(self, name: str, data_dir: str | Path | None = None) -> Dataset:
        """The dataset of ``name``; an unknown name is one line listing the known ones."""
        dataset = self.find(name, data_dir)
        if dataset is None:
            patterns = " or ".join(p for p in (s.pattern for s in self.sources()) if p)
            raise WorkbenchError(f"unknown dataset {name!r}; known datasets: {', '.join(self.names())}"
                                 + (f", or {patterns}" if patterns else "")
                                 + "; declare your own with `workbench dataset add` or --dataset-file")
        return dataset

    def names(self) -> list[str]:
        """Every known name, in the sources' order (a name an earlier source knows is listed once)."""
        return list(dict.fromkeys(name for source in self.sources() for name in source.names()))

    # -- plugins
    def _plugin_source(self, point: metadata.EntryPoint) -> DatasetSource:
        family = point.name.endswith(":")
        dist = getattr(point, "dist", None)

        def find(name: str, data_dir: str | Path | None) -> Dataset | None:
            ours = name.startswith(point.name) and len(name) > len(point.name) if family else name == point.name
            return self._make(point, name, data_dir) if ours else None

        return DatasetSource(f"plugin {dist.name}" if dist is not None else f"plugin {point.value}", find,
                             _no_names if family else (lambda: [point.name]),
                             f"{point.name}<name>" if family else "")

    def _make(self, point: metadata.EntryPoint, name: str, data_dir: str | Path | None) -> Dataset:
        what = f"dataset plugin {point.name!r} ({point.value}, entry point group {self.group})"
        key = (point.name, point.value)
        if key not in self._factories:
            try:
                self._factories[key] = point.load()
            except Exception as error:  # noqa: BLE001 - a broken plugin must not be a traceback
                raise WorkbenchError(f"{what} failed to load: {type(error).__name__}: "
                                     f"{first_line(error, 200)}") from None
        factory = self._factories[key]
        if not callable(factory):
            raise WorkbenchError(f"{what} is not a factory(name, data_dir) -> Dataset")
        try:
            dataset = factory(name, data_dir)
        except WorkbenchError:
            raise
        except Exception as error:  # noqa: BLE001
            raise WorkbenchError(f"{what} failed to make {name!r}: {type(error).__name__}: "
                                 f"{first_line(error, 200)}") from None
        if not isinstance(dataset, Dataset):
            raise WorkbenchError(f"{what} gave a {type(dataset).__name__} for {name!r}, not a Dataset")
        return dataset
