"""Where the expensive stages run: ``local`` (this process, the default) or ``ray`` (a Ray cluster).

* :mod:`~workbench.engines.ray` — :class:`~workbench.engines.ray.RayEngine`: reranking,
  collection encoding and BM25 on a Ray cluster with the same results as the local path
  (optional extra ``workbench[ray]``; imported only when used, so ``local`` needs no Ray).
* :mod:`~workbench.engines.plan` — capacity planning: measured single-worker throughput turned
  into wall time and cost for N workers (``workbench plan``).
"""
from .plan import CapacityPlan, Throughput, Transfer, Workload, capacity_plan

__all__ = ["CapacityPlan", "Throughput", "Transfer", "Workload", "capacity_plan"]
