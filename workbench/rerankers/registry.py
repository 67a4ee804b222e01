"""The reranker registry: built-ins (declared in :mod:`.catalogue`, each module imported when its
reranker is built) and plugins from the ``workbench.rerankers`` entry point group.

A spec is ``name``, ``name:<positional>`` or ``name:<positional>,key=value,...`` (the
positional value is usually the model: ``cross-encoder:/path/to/model,precision=bf16``); its
options are parsed and validated against the reranker's declaration.
"""
from __future__ import annotations

from typing import Any, Callable

from ..core.errors import WorkbenchError
from ..core.registry import Registry
from .protocol import RerankContext, Reranker

#: rerankers by name; ``REGISTRY.describe()`` is the help of ``workbench rerankers``
REGISTRY = Registry("reranker", group="workbench.rerankers", package="workbench.rerankers",
                    catalogue="workbench.rerankers.catalogue")


#: decorator: register ``factory(context, **options) -> Reranker`` under ``name`` with its declared
#: ``options`` (:class:`~workbench.core.options.Option`) and ``help``; ``presets`` override their
#: defaults, which makes a named preset of a factory (``dense-minilm``)
register = REGISTRY.register


def parse_reranker_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``name`` / ``name:model`` / ``name:model,key=value,...`` into a name and the raw
    options given (the positional value as ``model``), without looking the name up."""
    name, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    if rest:
        for position, part in enumerate(rest.split(",")):
            key, eq, value = part.partition("=")
            if eq:
                options[key.strip()] = value.strip()
            elif position == 0:
                options["model"] = part.strip()
            else:
                raise WorkbenchError(f"bad reranker option {part!r} in {spec!r}: expected key=value")
    return name.strip(), options


def get_reranker(spec: str, context: RerankContext | None = None, **options: Any) -> Reranker:
    """Build a registered reranker by spec (``tfidf``, ``cross-encoder:<hub id or path>``, ...);
    keyword ``options`` override the spec's."""
    return REGISTRY.build(spec, context or RerankContext(), **options)
