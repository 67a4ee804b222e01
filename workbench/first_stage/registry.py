"""The first-stage registry: built-ins (declared in :mod:`.catalogue`, each module imported when its
stage is built) and plugins from the ``workbench.first_stages`` entry point group.

A spec is ``name[:key=value,...]`` (``bm25-mini:k1=0.82,b=0.68``); a name ending in ``-`` is a
family whose suffix is its positional option (``official-bm25``), and ``run:<path>`` takes the
whole rest as a path.
"""
from __future__ import annotations

from typing import Any, Callable

from ..core.registry import Registry
from .protocol import FirstStage, StageContext

#: first stages by name; ``FIRST_STAGES.describe()`` is the help of ``workbench first-stages``
FIRST_STAGES = Registry("first stage", group="workbench.first_stages", package="workbench.first_stage",
                        catalogue="workbench.first_stage.catalogue")


#: decorator: register ``factory(context, **options) -> FirstStage`` under ``name``
register = FIRST_STAGES.register


def get_first_stage(spec: str, context: StageContext, **options: Any) -> FirstStage:
    """Build a registered first stage by spec (``bm25-mini``, ``official-bm25``, ``run:<path>``, ...)."""
    return FIRST_STAGES.build(spec, context, **options)
