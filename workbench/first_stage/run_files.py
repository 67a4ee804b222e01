"""Existing runs as first stages: the official full-collection runs shipped with a dataset
(``official-bm25``, ``official-tasb``, ...) and any TREC run file (``run:<path>``).

Only the dataset's topics are kept from the file; a file with none of them is an error.
Reranking the official runs against the complete NIST qrels is comparable with published
reranking results (see the data README).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..core.errors import WorkbenchError
from ..core.files import sha256_file
from ..data.trec import read_run
from .protocol import FirstStage, StageContext

OFFICIAL = "official full-collection run"
USER = "user run file"


class RunFile(FirstStage):
    """The queries of a TREC run file that are among the topics searched."""

    kind = "run"

    def __init__(self, path: str | Path, source: str = USER):
        self.path = Path(path)
        if not self.path.is_file():
            raise WorkbenchError("run file not found", self.path)
        self.source = source
        self.candidates = source
        self._sha256: str | None = None

    def config(self) -> dict[str, Any]:
        if self._sha256 is None:
            self._sha256 = sha256_file(self.path)
        return {"type": "file", "source": self.source, "path": str(self.path), "sha256": self._sha256}

    def run_config(self, topics_sha256: str) -> dict[str, Any]:
        # the file's bytes decide the run; the stored run lives under its dataset's directory
        return self.config()

    def search(self, topics: pd.DataFrame) -> pd.DataFrame:
        run = read_run(self.path)
        run = run[run["qid"].isin(set(topics["qid"]))]
        if run.empty:
            raise WorkbenchError("run has no queries of the topics searched (is it for this dataset?)", self.path)
        return run.reset_index(drop=True)


def make_official(context: StageContext, *, run: str | None) -> RunFile:
    """``official-<name>``: an official full-collection run shipped with the dataset."""
    if context.dataset is None:
        raise WorkbenchError("official runs belong to a dataset: the first stage needs one")
    if not run:
        raise WorkbenchError("official-<name> needs a run name, e.g. official-bm25")
    return RunFile(context.dataset.official_run_path(run), source=OFFICIAL)


def make_run_file(context: StageContext, *, path: str | None) -> RunFile:
    """``run:<path>``: any TREC run file as candidates."""
    if not path:
        raise WorkbenchError("run:<path> needs the path of a TREC run file")
    return RunFile(path, source=USER)
