"""Benchmark: the same experiment with ``--engine local`` and ``--engine ray``, side by side.

Each side is one ``workbench eval`` process with a cold score cache and a cold vector cache of
its own (the Lucene index, ONNX exports and Java are shared and warm: they are not what is
timed), and its own runs directory. Reported per side: the whole command's wall time (Ray's is
including starting the local cluster and its actors) and the reranking time the manifests record
(``wall_time_s`` of every reranked system), and their ratio Ray / local. Then the runs are
compared: the sha256 of every run file and the leaderboard rows (metrics, CIs, deltas,
p-values; not timings) must be identical.

    python bench/bench_ray.py                                   # dense-minilm over official BM25 top-100, DL19+DL20
    python bench/bench_ray.py --systems default-neural --json bench/results/ray-identity.json

The sides take turns (``--rounds``; local first in odd rounds, Ray first in even ones), so
load from other processes on a shared machine hits them alike.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from peak import cpu_name  # noqa: E402

#: cache parts both sides share (built once, not timed): index, ONNX exports, Java, file hashes, and
#: backend=auto's measured choice of exact path (settled once before the rounds: two cold caches
#: could pick different exact paths, whose last bits differ, and the sides would not be comparable)
WARM_PARTS = ("indexes", "onnx", "java", "file-hashes", "backend-choice")

SETTLE = """
import sys
from workbench.engines.ray import settle_exact_path
from workbench.experiment.workbench import Workbench
bench = Workbench(progress=False)
for system in sys.argv[2:]:
    if "+" not in system:
        continue
    spec = system.split("+", 1)[1]
    dataset = bench.session.dataset(sys.argv[1])
    print(system, settle_exact_path(bench.session.reranker(spec, dataset), dataset))
"""


def settle_exact_paths(systems: str, dataset: str, warm: Path) -> str:
    """backend=auto's choice for each reranker, measured once in the shared warm cache (not timed)."""
    env = {**os.environ, "WORKBENCH_CACHE": str(warm), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", SETTLE, dataset, *systems.split(",")], env=env, cwd=REPO,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"settling backend=auto's choices failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip()
#: leaderboard columns that describe cost or where the run went, not its numbers
COST_COLUMNS = ("wall_time_s", "queries_per_s", "pairs_scored", "cache_hits", "run_path")


def run_side(engine: str, systems: str, datasets: str, depth: int, root: Path, warm: Path,
             workers: int | None) -> dict:
    cache = root / f"cache-{engine}"
    cache.mkdir(parents=True)
    for part in WARM_PARTS:
        (warm / part).mkdir(parents=True, exist_ok=True)
        (cache / part).symlink_to(warm / part)
    runs = root / f"runs-{engine}"
    command = [sys.executable, "-m", "workbench.cli", "eval", "--datasets", datasets, "--systems", systems,
               "--depth", str(depth), "--runs-dir", str(runs), "--engine", engine, "--quiet"]
    if engine == "ray" and workers:
        command += ["--ray-workers", str(workers)]
    env = {**os.environ, "WORKBENCH_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{engine} side failed:\n{result.stderr[-3000:]}")
    manifests = [json.loads(p.read_text()) for p in sorted(runs.glob("*/*.manifest.json"))]
    rerank_s = sum(float(m.get("rerank_s") or 0) for m in manifests)
    first_stage_s = sum(float(m.get("wall_time_s") or 0) + float(m.get("index_time_s") or 0)
                        for m in manifests if "rerank_s" not in m and m.get("config", {}).get("type") != "fusion")
    return {"engine": engine, "command_s": round(wall, 2), "rerank_s": round(rerank_s, 2),
            "first_stage_s": round(first_stage_s, 2), "runs": runs,
            "stages": {f"{m['dataset']} {m['system']}": m.get("engine_stages") for m in manifests}}


def overhead(stages: dict) -> dict:
    """Ray's cost beyond the work, from the manifests' stage reports: per stage, the wall time
    minus the ideal parallel time (the workers' busy seconds / workers): actor start-up (model
    loading), scheduling, transfers, and the wait for the last row (load imbalance)."""
    rows = []
    for name, reports in stages.items():
        for report in reports or []:
            busy = sum(worker["busy_s"] for worker in report["per_worker"].values())
            ideal = busy / max(1, report["workers"])
            rows.append({"run": name, "stage": report["stage"], "items": report["items"],
                         "workers": report["workers"], "wall_s": report["wall_s"], "ideal_s": round(ideal, 2),
                         "overhead_s": round(report["wall_s"] - ideal, 2),
                         # of which: the slowest actor's start (model load) and the busiest actor's excess
                         "actor_start_s": round(max(w.get("init_s", 0.0) for w in report["per_worker"].values()), 2),
                         "imbalance_s": round(max(w["busy_s"] for w in report["per_worker"].values()) - ideal, 2),
                         "per_worker_rate": round(report["items"] / busy, 2) if busy else None})
    return {"stages": rows, "overhead_s_per_stage": round(sum(r["overhead_s"] for r in rows) / len(rows), 2)
            if rows else None}


def compare_sides(local: dict, ray: dict) -> dict:
    import pandas as pd

    def hashes(runs: Path) -> dict:
        return {str(p.relative_to(runs)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(runs.glob("*/*.trec"))}

    a, b = hashes(local["runs"]), hashes(ray["runs"])
    boards = [pd.read_csv(side["runs"] / "leaderboard.csv").drop(columns=list(COST_COLUMNS), errors="ignore")
              for side in (local, ray)]
    boards = [board.sort_values(["dataset", "system", "slice"]).reset_index(drop=True) for board in boards]
    return {"runs": len(a), "identical_runs": sum(a[name] == b.get(name) for name in a),
            "different": sorted(name for name in a if a[name] != b.get(name)),
            "leaderboard_rows": len(boards[0]), "leaderboard_identical": boards[0].equals(boards[1])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", default="official-bm25+dense-minilm",
                        help="systems (default: official-bm25+dense-minilm; 'default-neural': make eval's neural systems)")
    parser.add_argument("--datasets", default="dl19,dl20")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="Ray workers (default: one per CPU)")
    parser.add_argument("--warm-cache", default=str(REPO / ".cache" / "workbench"),
                        help="where the shared, warm parts live (default: the project's cache)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    from workbench.experiment.defaults import NEURAL_SYSTEMS

    systems = ",".join(NEURAL_SYSTEMS) if args.systems == "default-neural" else args.systems
    settled = settle_exact_paths(systems, args.datasets.split(",")[0], Path(args.warm_cache))
    print(f"backend=auto's exact paths (settled once, shared by both sides): {settled or 'none to settle'}",
          flush=True)
    results = []
    for round_number in range(args.rounds):
        order = ("local", "ray") if round_number % 2 == 0 else ("ray", "local")
        root = Path(tempfile.mkdtemp(prefix="bench-ray-"))
        try:
            sides = {engine: run_side(engine, systems, args.datasets, args.depth, root, Path(args.warm_cache),
                                      args.workers) for engine in order}
            same = compare_sides(sides["local"], sides["ray"])
            row = {"round": round_number + 1, "order": "/".join(order),
                   **{f"{engine}_{key}": sides[engine][key] for engine in ("local", "ray")
                      for key in ("command_s", "rerank_s", "first_stage_s")},
                   "ray_stages": sides["ray"]["stages"], **same}
            row["ratio_command"] = round(row["ray_command_s"] / row["local_command_s"], 3)
            row["ray_overhead"] = overhead(sides["ray"]["stages"])
            # start-up paid once per experiment: how many stages started the pool, and the models
            # workers loaded (stages after the first that built nothing found their model loaded)
            reports = [report for reports in sides["ray"]["stages"].values() for report in reports or []]
            row["ray_stages_n"] = len(reports)
            row["pool_starts"] = sum(bool(report.get("pool", {}).get("started")) for report in reports)
            row["pool_start_s"] = round(sum(report.get("pool", {}).get("start_s", 0.0) for report in reports), 2)
            row["model_loads"] = sum(worker.get("init_s", 0.0) > 0 for report in reports
                                     for worker in report["per_worker"].values())
            if row["local_rerank_s"]:
                row["ratio_rerank"] = round(row["ray_rerank_s"] / row["local_rerank_s"], 3)
            results.append(row)
            print(json.dumps({k: v for k, v in row.items() if k not in ("ray_stages", "ray_overhead")},
                             default=str), flush=True)
            for stage in row["ray_overhead"]["stages"]:
                print("   ", json.dumps(stage), flush=True)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    summary = {"systems": systems, "datasets": args.datasets, "depth": args.depth, "cpus": os.cpu_count(),
               "exact_paths": settled, "cpu": cpu_name(),
               "machine": platform.platform(), "results": results}
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1, default=str) + "\n")
    print("| round | order | local command s | Ray command s | ratio | local rerank s | Ray rerank s | ratio | "
          "runs identical | leaderboard identical | Ray stages | pool starts (s) | model loads |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['round']} | {r['order']} | {r['local_command_s']} | {r['ray_command_s']} | {r['ratio_command']} | "
              f"{r['local_rerank_s']} | {r['ray_rerank_s']} | {r.get('ratio_rerank', '')} | "
              f"{r['identical_runs']}/{r['runs']} | {r['leaderboard_identical']} | {r['ray_stages_n']} | "
              f"{r['pool_starts']} ({r['pool_start_s']}) | {r['model_loads']} |")
    return 0 if all(r["identical_runs"] == r["runs"] and r["leaderboard_identical"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
