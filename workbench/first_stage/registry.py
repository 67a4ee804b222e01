"""The first-stage registry: built-ins (every module of this package registers its own) and
plugins from the ``workbench.first_stages`` entry point group.

A spec is ``name[:key=value,...]`` (``bm25-mini:k1=0.82,b=0.68``); a name ending in ``-`` is a
family whose suffix is its positional option (``official-bm25``), and ``run:<path>`` takes the
whole rest as a path.
"""
from __future__ import annotations

from typing import Any, Callable

from ..core.registry import Registry
from .protocol import FirstStage, StageContext

#: first stages by name; ``FIRST_STAGES.describe()`` is the help of ``workbench first-stages``
FIRST_STAGES = Registry("first stage", group="workbench.first_stages", package="workbench.first_stage")


def register(name: str, *, options=(), help: str = "", **presets: Any) -> Callable:
    """Decorator: register ``factory(context, **options) -> FirstStage`` under ``name``."""
    return FIRST_STAGES.register(name, options=options, help=help, **presets)


def get_first_stage(spec: str, context: StageContext, **options: Any) -> FirstStage:
    """Build a registered first stage by spec (``bm25-mini``, ``official-bm25``, ``run:<path>``, ...)."""
    return FIRST_STAGES.build(spec, context, **options)
