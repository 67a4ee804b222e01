"""What a training run leaves on disk, and how it is written so that an interrupted run resumes
cleanly: the checkpoint (weights, optimizer, scheduler, trainer state and RNG, keyed by the
configuration) swapped in whole through a temporary directory, the step and epoch logs
(``steps.csv``, ``epochs.jsonl``) with the rows after a resumed checkpoint dropped, and the fold's
model published whole with the training and validation queries the leakage guard reads.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..core.errors import WorkbenchError
from ..core.files import atomic_write
from ..data.leakage import write_training_queries
from .data import Fold

#: the checkpoint directory under a fold's output directory, and its file
CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_FILE = "trainer.pt"


def append_csv_row(path: Path, row: dict[str, Any]) -> None:
    """Append ``row`` to a CSV log (the header first when the file is new)."""
    new = not path.is_file()
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def append_json_line(path: Path, row: dict[str, Any]) -> None:
    """Append ``row`` to a JSON-lines log."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")


def truncate_logs(out: Path, global_step: int, epochs_done: int) -> None:
    """On resume, drop the log rows (``steps.csv``, ``epochs.jsonl``) written after the checkpoint
    being resumed: they will be written again."""
    path = out / "steps.csv"
    if path.is_file():
        frame = pd.read_csv(path)
        with atomic_write(path) as handle:
            frame[frame["step"] <= global_step].to_csv(handle, index=False)
    path = out / "epochs.jsonl"
    if path.is_file():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        with atomic_write(path) as handle:
            handle.writelines(json.dumps(row) + "\n" for row in rows if row["epoch"] < epochs_done)


def write_checkpoint(out: Path, saved: dict[str, Any]) -> None:
    """``saved`` as ``out/checkpoint/``, written to a temp dir then renamed (the old one replaced whole)."""
    target = out / CHECKPOINT_DIR
    work = out / ".checkpoint.tmp"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    torch.save(saved, work / CHECKPOINT_FILE)
    old = out / ".checkpoint.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(work, target)
    shutil.rmtree(old, ignore_errors=True)


def read_checkpoint(out: Path, device: torch.device, key: Any) -> dict[str, Any] | None:
    """The checkpoint under ``out`` (loaded onto ``device``), None when there is none; refused
    when it was written for another configuration than ``key``."""
    path = out / CHECKPOINT_DIR / CHECKPOINT_FILE
    if not path.is_file():
        return None
    saved = torch.load(path, map_location=device, weights_only=False)
    if saved.get("config") != key:
        raise WorkbenchError("a checkpoint of another configuration is in the way; delete it or use another "
                             "output directory", out / CHECKPOINT_DIR)
    return saved


def publish_model(work: Path, target: Path, fold: Fold) -> Path:
    """Record the fold's training and validation queries in the model saved at ``work`` (the leakage
    guard reads them), then swap it in as ``target`` whole."""
    write_training_queries(work, fold.queries(), {"fold": fold.name, "train_qids": fold.train_qids(),
                                                  "validation_qids": [x.qid for x in fold.validation]})
    shutil.rmtree(target, ignore_errors=True)
    os.replace(work, target)
    return target
