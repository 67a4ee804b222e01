"""Where the expensive stages run: ``local`` (this process, the default) or ``ray`` (a Ray cluster).

* :mod:`~workbench.engines.ray` — :class:`RayEngine`: reranking, collection encoding and BM25
  on a Ray cluster with the same results as the local path (optional extra ``workbench[ray]``).
* :mod:`~workbench.engines.plan` — capacity planning: measured single-worker throughput turned
  into wall time and cost for N workers (``workbench plan``).
"""
