"""The loss ablation with power (``make ablate`` / ``workbench ablate``): train every configuration of
a directory on its folds, retrain the hybrid and the strongest other loss with more seeds, evaluate
every fold model on its held-out year and on the pooled years, and write the verdict.

Steps, each resumable (a finished fold is not trained again, a stored run is not recomputed):

1. train each configuration (seed as configured, 0) on its cross-year folds;
2. pick the **strongest other loss** by the *validation* NDCG@10 of training (held-out training
   queries, never the evaluation years: choosing by the evaluation queries would bias the seed
   study towards a lucky run), among the losses that are not the hybrid's variants;
3. train the hybrid and that loss with seeds 1 .. n-1 (``<name>-s<seed>``);
4. evaluate reranking of the official BM25 top-100 on DL19, DL20 and the pooled DL19+DL20 queries,
   per query-type slice, three times, each time into its own leaderboard under ``runs/ablation/``
   so that each Holm family is the ablation family and nothing else: against the pointwise model,
   against the off-the-shelf model, against the hybrid (the verdict's direct test); the seed
   replicas into a fourth, for their spread only;
5. write the table, the seed spread and the verdict (:mod:`workbench.report.ablation`).
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.errors import WorkbenchError
from ..models.ranker import models_root
from .config import TrainConfig

log = logging.getLogger(__name__)

CANDIDATES = "official-bm25"
OFF_THE_SHELF = "official-bm25+dense-minilm"
DATASETS = ("dl19", "dl20")
POOL = {"dl19+dl20": ["dl19", "dl20"]}
#: the leaderboards of step 4, by the baseline they compare with
BOARDS = {"pointwise": "vs-pointwise.csv", "off-the-shelf": "vs-off-the-shelf.csv", "hybrid": "vs-hybrid.csv",
          "seeds": "seeds.csv"}


@dataclass
class Ablation:
    """The configurations of one ablation (by short name: the file's stem) and its settings."""

    configs: dict[str, TrainConfig]
    seeds: int = 3
    hybrid: str = "hybrid"
    baseline: str = "pointwise"
    #: the hybrid's variants: not candidates for "the strongest other loss"
    variants: tuple[str, ...] = ("hybrid-notanh",)
    models: Path = field(default_factory=models_root)
    #: the model before fine-tuning, as a system over the same candidates
    off_the_shelf: str = OFF_THE_SHELF

    @classmethod
    def from_directory(cls, directory: str | Path, **settings: Any) -> "Ablation":
        directory = Path(directory)
        files = sorted(directory.glob("*.toml"))
        if not files:
            raise WorkbenchError("no *.toml training configurations here", directory)
        ablation = cls({path.stem: TrainConfig.from_file(path) for path in files}, **settings)
        for needed in (ablation.hybrid, ablation.baseline):
            if needed not in ablation.configs:
                raise WorkbenchError(f"the ablation needs a {needed}.toml configuration", directory)
        if ablation.seeds < 1:
            raise WorkbenchError("--seeds must be at least 1")
        return ablation

    def seeded(self, short: str, seed: int) -> TrainConfig:
        """``short``'s configuration with another seed (seed 0 / the configured one: itself)."""
        config = self.configs[short]
        if seed == config.seed:
            return config
        return dataclasses.replace(config, name=f"{config.name}-s{seed}", seed=seed)

    def system(self, config: TrainConfig) -> str:
        return f"{CANDIDATES}+finetuned:{config.name}"

    def validation_ndcg(self, config: TrainConfig) -> float:
        """Mean over folds of the best validation NDCG@10 a finished training recorded."""
        path = self.models / config.name / "summary.json"
        if not path.is_file():
            raise WorkbenchError(f"{config.name} is not trained yet (no summary.json)", path)
        folds = json.loads(path.read_text(encoding="utf-8"))
        return float(sum(f["best_val_ndcg@10"] for f in folds) / len(folds))

    def strongest_other(self) -> str:
        """The loss (not the hybrid or its variants) with the best mean validation NDCG@10."""
        others = [s for s in self.configs if s != self.hybrid and s not in self.variants]
        if not others:
            raise WorkbenchError("the ablation has no loss besides the hybrid")
        return max(others, key=lambda s: (self.validation_ndcg(self.configs[s]), s))

    def replicas(self, strongest: str) -> dict[str, list[TrainConfig]]:
        """Every seed's configuration of the hybrid and the strongest other loss."""
        return {short: [self.seeded(short, self.configs[short].seed + k) for k in range(self.seeds)]
                for short in dict.fromkeys([self.hybrid, strongest])}


def train_all(ablation: Ablation, data_dir: str | Path | None, progress: bool = True) -> str:
    """Steps 1-3; returns the strongest other loss."""
    from .run import train_config

    for short, config in ablation.configs.items():
        log.info("ablation: training %s", config.name)
        train_config(config, data_dir, ablation.models, progress=progress)
    strongest = ablation.strongest_other()
    log.info("ablation: strongest other loss by validation NDCG@10: %s", strongest)
    for configs in ablation.replicas(strongest).values():
        for config in configs[1:]:
            log.info("ablation: training %s (seed %d)", config.name, config.seed)
            train_config(config, data_dir, ablation.models, progress=progress)
    return strongest


def evaluate_all(ablation: Ablation, strongest: str, data_dir: str | Path | None, runs_dir: str | Path,
                 boards_dir: str | Path, device: str = "cpu", progress: bool = True) -> dict[str, Path]:
    """Step 4: the four leaderboards (paths by :data:`BOARDS` key)."""
    from ..experiment import Workbench

    boards_dir = Path(boards_dir)
    boards_dir.mkdir(parents=True, exist_ok=True)
    family = [ablation.system(config) for config in ablation.configs.values()]
    replicas = [ablation.system(c) for configs in ablation.replicas(strongest).values() for c in configs]
    baselines = {"pointwise": ablation.system(ablation.configs[ablation.baseline]),
                 "off-the-shelf": ablation.off_the_shelf,
                 "hybrid": ablation.system(ablation.configs[ablation.hybrid])}
    paths = {}
    for key, baseline in [*baselines.items(), ("seeds", baselines["pointwise"])]:
        path = paths[key] = boards_dir / BOARDS[key]
        systems = replicas if key == "seeds" else family
        bench = Workbench(data_dir=data_dir, runs_dir=runs_dir, leaderboard=path, device=device, progress=progress,
                          metrics=["mrr@10", "ndcg@5", "ndcg@10"])
        log.info("ablation: evaluating %d systems against %s", len(systems), baseline)
        bench.run_experiment(list(DATASETS), list(dict.fromkeys([baseline, *systems])), baseline=baseline,
                             pools=dict(POOL))
    return paths


def read_boards(paths: dict[str, Path]) -> dict[str, pd.DataFrame]:
    from ..report.leaderboard import read_leaderboard

    return {key: read_leaderboard(path) for key, path in paths.items()}


def training_summary(ablation: Ablation, strongest: str) -> list[dict[str, Any]]:
    """Per trained configuration and fold: best epoch, validation NDCG@10 (before and after), seconds, pairs/s."""
    names = [c.name for c in ablation.configs.values()]
    names += [c.name for configs in ablation.replicas(strongest).values() for c in configs[1:]]
    out = []
    for name in names:
        path = ablation.models / name / "summary.json"
        if not path.is_file():
            continue
        for fold in json.loads(path.read_text(encoding="utf-8")):
            out.append({"config": name, **{k: fold.get(k) for k in (
                "fold", "best_epoch", "baseline_val_ndcg@10", "best_val_ndcg@10", "epochs_run", "steps", "seconds",
                "pairs_per_s")}})
    return out


def verdict_sentences(calls: list[dict[str, Any]], parts: tuple[str, ...] = ("pairwise", "listwise")) -> list[str]:
    """One sentence per hypothesis cell: how the hybrid compares with its parts (pairwise, listwise)."""
    out = []
    labels = {("qa", "mrr@10"): "Q&A queries, MRR@10", ("qa", "ndcg@5"): "Q&A queries, NDCG@5",
              ("exploratory", "ndcg@10"): "exploratory queries, NDCG@10", ("all", "ndcg@10"): "all queries, NDCG@10"}
    for (slice_name, metric), label in labels.items():
        cells = [c for c in calls if c["slice"] == slice_name and c["metric"] == metric and c["other"] in parts]
        if not cells:
            continue
        kinds = {c["call"] for c in cells}
        if kinds == {"better"} or kinds == {"worse"}:
            summary = f"the hybrid is **{next(iter(kinds))}** than its parts"
        elif kinds == {"cannot tell"}:
            summary = "**cannot tell at this power** whether the hybrid beats its parts"
        else:
            summary = "**mixed**: " + ", ".join(f"{c['call']} against {c['other']}" for c in cells)
        details = "; ".join(f"vs {c['other']} {c['difference']:+.4f} ({'significant' if c['significant'] else 'n.s.'}, "
                            f"MDE {c['mde']:.3f}, seed spread {c['noise']:.3f})" for c in cells)
        out.append(f"- **{label}**: {summary} ({details}).")
    return out


def write_ablation_report(ablation: Ablation, strongest: str, boards: dict[str, pd.DataFrame], out: str | Path,
                 results_dir: str | Path | None = None, header: str = "") -> list[dict[str, Any]]:
    """Step 5: ``out`` (Markdown) and, in ``results_dir``, the small result files (training summary,
    verdict, the four leaderboards' ablation rows) to commit."""
    from ..core.files import atomic_write
    from ..report.ablation import power_markdown

    systems = {short: ablation.system(config) for short, config in ablation.configs.items()}
    replicas = {short: [ablation.system(c) for c in configs]
                for short, configs in ablation.replicas(strongest).items()}
    body, calls = power_markdown(boards, systems, replicas, ablation.hybrid, ablation.baseline,
                                 ablation.off_the_shelf, strongest)
    summary = training_summary(ablation, strongest)
    table = ["## Training", "", "| configuration | fold | best epoch | val NDCG@10 before | after | steps | seconds "
             "| pairs/s |", "|---|---|---|---|---|---|---|---|"]
    for row in summary:
        before = row.get("baseline_val_ndcg@10")
        table.append(f"| {row['config']} | {row['fold']} | {row['best_epoch']} | "
                     f"{'' if before is None else f'{before:.4f}'} | {row['best_val_ndcg@10']:.4f} | {row['steps']} | "
                     f"{row['seconds']} | {row['pairs_per_s']} |")
    seconds = sum(float(row["seconds"] or 0) for row in summary)
    table += ["", f"Training time, all configurations and folds: {seconds / 60:.1f} minutes "
              f"({len(summary)} fold trainings, validation included).", ""]
    text = "\n".join([header.rstrip(), "", "## Verdict", "", *verdict_sentences(calls), "", body, *table])
    with atomic_write(out) as handle:
        handle.write(text.rstrip() + "\n")
    if results_dir:
        results = Path(results_dir)
        results.mkdir(parents=True, exist_ok=True)
        with atomic_write(results / "training.json") as handle:
            json.dump(summary, handle, indent=1)
        with atomic_write(results / "verdict.json") as handle:
            json.dump({"strongest_other": strongest, "calls": calls}, handle, indent=1)
        keep = ["dataset", "slice", "system", "baseline", "n_queries"]
        for key, board in boards.items():
            columns = keep + [c for c in board.columns if any(c == m or c.endswith("_" + m) for m in
                                                              ("mrr@10", "ndcg@5", "ndcg@10")) and c not in keep]
            with atomic_write(results / BOARDS[key]) as handle:
                board[[c for c in columns if c in board.columns]].to_csv(handle, index=False, float_format="%.4f")
    return calls
