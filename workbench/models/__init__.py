"""Neural model plumbing shared by the rerankers, the learned first stages and training.

* :mod:`~workbench.models.devices` — ``auto``/``cpu``/``cuda[:N]``/``mps``, CPU threads
* :mod:`~workbench.models.batching` — length-sorted batches with dynamic padding
* :mod:`~workbench.models.precision` — the ``precision`` option (fp32 exact; bf16, fp16, int8)
* :mod:`~workbench.models.hub` — local directories, the Hugging Face cache, packaged presets
* :mod:`~workbench.models.identity` — model files' hashes: the keys of caches and stored runs
* :mod:`~workbench.models.onnx` — ONNX Runtime export (fp32, int8) and sessions
* :mod:`~workbench.models.encoder` — :class:`TextEncoder`, the base of the text encoders
* :mod:`~workbench.models.dense` — :class:`DenseEncoder` (pooling, normalisation)
* :mod:`~workbench.models.splade` — :class:`SpladeEncoder` (sparse vocabulary weights)

The submodules are imported directly (``from workbench.models.dense import DenseEncoder``) so
that using one does not import the others.
"""
