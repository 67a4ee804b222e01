"""One PNG of a training run's curves: loss (and the hybrid's parts) per step, validation
metrics and separation per epoch, learning rates, and parameter drift per group."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..core.errors import WorkbenchError
from ..core.files import atomic_write


def plot_training(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``training.png`` for a fold directory (``steps.csv``, ``epochs.jsonl``); returns its path.
    A directory holding several folds gets one row of panels per fold."""
    from matplotlib.figure import Figure

    run_dir = Path(run_dir)
    folds = [run_dir] if (run_dir / "steps.csv").is_file() else sorted(p.parent for p in run_dir.glob("*/steps.csv"))
    if not folds:
        raise WorkbenchError("no training logs (steps.csv) here or in its fold directories", run_dir)
    figure = Figure(figsize=(18, 3.8 * len(folds)))
    axes = figure.subplots(len(folds), 4, squeeze=False)
    for row, fold in enumerate(folds):
        steps = pd.read_csv(fold / "steps.csv")
        lines = (fold / "epochs.jsonl").read_text(encoding="utf-8").splitlines() if (fold / "epochs.jsonl").is_file() else []
        epochs = pd.DataFrame([json.loads(line) for line in lines if line.strip()])
        ax = axes[row][0]
        window = max(1, len(steps) // 50)
        for column in [c for c in steps.columns if c.startswith("loss")]:
            ax.plot(steps["step"], steps[column].rolling(window, min_periods=1).mean(), label=column)
        if not epochs.empty and "val_loss" in epochs:
            ax.plot(epochs["step"], epochs["val_loss"], "o-", label="val_loss")
        ax.set_title(f"{fold.name}: loss (rolling mean of {window} steps)")
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
        ax = axes[row][1]
        for metric in ("mrr@10", "ndcg@5", "ndcg@10"):
            if not epochs.empty and metric in epochs:
                ax.plot(epochs["epoch"] + 1, epochs[metric], "o-", label=f"val {metric}")
        ax.set_title("validation (held-out training queries)")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
        ax = axes[row][2]
        for column in [c for c in steps.columns if c.startswith("lr_")]:
            ax.plot(steps["step"], steps[column], label=column)
        ax.set_yscale("log")
        ax.set_title("learning rate per group")
        ax.legend(fontsize=7)
        ax = axes[row][3]
        if not epochs.empty:
            for column in [c for c in epochs.columns if c.startswith("drift_")]:
                ax.plot(epochs["epoch"] + 1, epochs[column], "o-", label=column)
            if "separation" in epochs:
                twin = ax.twinx()
                twin.plot(epochs["epoch"] + 1, epochs["separation"], "k--", label="separation")
                twin.set_ylabel("mean pos - mean neg score")
                twin.legend(fontsize=7, loc="lower right")
        ax.set_title("parameter drift ||w-w0||/||w0||")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    target = Path(out) if out else run_dir / "training.png"
    with atomic_write(target, "wb") as handle:
        figure.savefig(handle, format="png", dpi=100)
    return target
