"""The names of the poolings a text encoder computes, without importing torch (the CLI's
``--pooling`` choices are built from them when ``workbench --help`` runs)."""
from __future__ import annotations

#: how token vectors become one text vector (models.dense.DenseEncoder computes each)
POOLINGS = ("cls", "last", "masked_mean", "mean")
