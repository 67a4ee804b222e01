"""The default experiment (``make eval``): which datasets and systems, and why."""
from __future__ import annotations

DEFAULT_DATASETS = ["dl19", "dl20"]
# The foundation: BM25 over the mini collection and the official full-collection BM25 run,
# each reranked by TF-IDF.
FOUNDATION_SYSTEMS = ["bm25-mini", "official-bm25", "bm25-mini+tfidf", "official-bm25+tfidf"]
# Neural systems over the official BM25 top-100 (comparable with published reranking
# results), fusion of BM25 with the dense reranker, and a dense first stage over the mini collection.
NEURAL_SYSTEMS = ["official-bm25+dense-minilm", "official-bm25+splade-tiny",
                  "rrf[official-bm25|official-bm25+dense-minilm]", "dense-mini"]
DEFAULT_SYSTEMS = FOUNDATION_SYSTEMS + NEURAL_SYSTEMS
