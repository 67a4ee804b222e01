"""Benchmark: how long the commands take to start, phase by phase, each in fresh processes.

Phases (median of ``--repeats`` fresh processes each):

* ``import ranx``, ``import pyserini.search.lucene`` (what BM25 once paid for), ``import torch``;
* the JVM: Pyserini's class path and Anserini's searcher class loaded (``pyserini.pyclass``);
* the bare-ranx floor: ``import ranx``, ``Qrels.from_file``/``Run.from_file``, ``evaluate`` of the
  never-seen run (ranx's kernels already in numba's on-disk cache, as after any first use);
* ``workbench evaluate --dataset dl19 --run <the same run> --metrics nDCG@10,RR(rel=2)@10,Judged@10``;
* ``workbench eval --datasets dl19 --systems bm25`` on a fresh runs directory (index built and the
  run's evaluation cached by a first, untimed call), and the same with ``+tfidf``;
* ``workbench --help``;
* which heavy modules each workbench command imported (``-X importtime``).

``--repo PATH`` times another checkout's ``.venv/bin/workbench`` (the same phases, the same run and
qrels): a before/after comparison in one bench run. Results go to ``bench/results/startup.json``
(``--json``) with the CPU named.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HEAVY = ("torch", "transformers", "pyserini.encode", "pyserini.search", "sklearn", "statsmodels", "jnius", "ranx")
METRICS = "nDCG@10,RR(rel=2)@10,Judged@10"

BARE_RANX = """
import sys
from ranx import Qrels, Run, evaluate
qrels = Qrels.from_file(sys.argv[1], kind="trec")
run = Run.from_file(sys.argv[2], kind="trec")
print(evaluate(qrels, run, ["ndcg@10", "mrr@10-l2"]))
"""

JVM = """
from workbench.first_stage.java import ensure_java
ensure_java()
from pyserini.pyclass import autoclass
autoclass("io.anserini.search.SimpleSearcher")
"""


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown"


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def median_of(repeats: int, command: list[str], env: dict[str, str], cwd: Path,
              before_each=None) -> float:
    times = []
    for _ in range(repeats):
        if before_each is not None:
            before_each()
        times.append(timed(command, env, cwd))
    return round(statistics.median(times), 3)


def imported(command: list[str], env: dict[str, str], cwd: Path) -> list[str]:
    """The heavy modules a command imports (read from -X importtime)."""
    python, *rest = command
    result = subprocess.run([python, "-X", "importtime", *rest], env=env, cwd=cwd, capture_output=True, text=True)
    names = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    return sorted(name for name in HEAVY if name in names)


def checkout_phases(repo: Path, data_dir: Path, cache: Path, repeats: int, run_file: Path) -> dict:
    python = str(repo / ".venv" / "bin" / "python")
    env = {**os.environ, "WORKBENCH_DATA": str(data_dir), "WORKBENCH_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    cli = [python, "-m", "workbench.cli"]
    runs_dir = Path(tempfile.mkdtemp(prefix="bench-startup-runs-"))

    def fresh_runs() -> None:
        shutil.rmtree(runs_dir, ignore_errors=True)

    evaluate = [*cli, "evaluate", "--dataset", "dl19", "--run", str(run_file), "--metrics", METRICS]
    def eval_command(systems: str) -> list[str]:
        return [*cli, "eval", "--datasets", "dl19", "--systems", systems, "--runs-dir", str(runs_dir),
                "--leaderboard", str(runs_dir / "board.csv"), "--quiet"]

    bm25, tfidf = eval_command("bm25"), eval_command("bm25,bm25+tfidf")
    for command in (bm25, tfidf):  # the index, the score cache and the evaluations: built once, untimed
        fresh_runs()
        timed(command, env, repo)
    phases = {
        "workbench --help": median_of(repeats, [*cli, "--help"], env, repo),
        "workbench evaluate (never-seen DL19 run)": median_of(repeats, evaluate, env, repo),
        "workbench eval bm25 (fresh runs dir)": median_of(repeats, bm25, env, repo, fresh_runs),
        "workbench eval bm25,bm25+tfidf (fresh runs dir)": median_of(repeats, tfidf, env, repo, fresh_runs),
    }
    modules = {"workbench --help": imported([*cli, "--help"], env, repo),
               "workbench evaluate": imported(evaluate, env, repo)}
    fresh_runs()
    modules["workbench eval bm25"] = imported(bm25, env, repo)
    fresh_runs()
    modules["workbench eval bm25,bm25+tfidf"] = imported(tfidf, env, repo)
    shutil.rmtree(runs_dir, ignore_errors=True)
    return {"repo": str(repo), "seconds": phases, "heavy_modules_imported": modules}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--repo", action="append", default=[], help="another checkout to time beside this one")
    parser.add_argument("--data-dir", default=os.environ.get("WORKBENCH_DATA", str(REPO.parent / "shared" / "data"
                                                                                     / "msmarco-passage-mini")))
    parser.add_argument("--json", default=str(HERE / "results" / "startup.json"))
    args = parser.parse_args()
    data_dir = Path(args.data_dir)
    run_file = data_dir / "runs" / "bm25.dl19.trec"
    qrels_file = data_dir / "qrels" / "dl19-passage.txt"
    python = sys.executable
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as scratch:
        never_seen = Path(scratch) / "never-seen.trec"  # a run no cache has seen: its own tag
        never_seen.write_text("".join(line.rsplit(" ", 1)[0] + " never-seen\n"
                                      for line in run_file.read_text().splitlines() if line.strip()))
        timed([python, "-c", BARE_RANX, str(qrels_file), str(never_seen)], env, REPO)  # numba's cache, once
        shared = {
            "import ranx": median_of(args.repeats, [python, "-c", "import ranx"], env, REPO),
            "import pyserini.search.lucene": median_of(args.repeats, [python, "-c", "import os; os.environ.setdefault("
                                                       "'OPENAI_API_KEY', 'x'); from workbench.first_stage.java import "
                                                       "ensure_java; ensure_java(); import pyserini.search.lucene"],
                                                       env, REPO),
            "import torch": median_of(args.repeats, [python, "-c", "import torch"], env, REPO),
            "JVM start + Anserini searcher class": median_of(args.repeats, [python, "-c", JVM], env, REPO),
            "bare ranx floor (import, Qrels/Run from files, evaluate)": median_of(
                args.repeats, [python, "-c", BARE_RANX, str(qrels_file), str(never_seen)], env, REPO),
        }
        checkouts = {}
        for repo in [REPO, *map(Path, args.repo)]:
            cache = Path(scratch) / f"cache-{len(checkouts)}"
            checkouts[str(repo)] = checkout_phases(repo.resolve(), data_dir, cache, args.repeats, never_seen)
    floor = shared["bare ranx floor (import, Qrels/Run from files, evaluate)"]
    result = {"benchmark": "startup", "cpu": cpu_name(), "cores": os.cpu_count(), "repeats": args.repeats,
              "shared_phases_s": shared, "checkouts": checkouts,
              "evaluate_above_floor_s": {repo: round(c["seconds"]["workbench evaluate (never-seen DL19 run)"] - floor, 3)
                                         for repo, c in checkouts.items()}}
    print(json.dumps(result, indent=2))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
