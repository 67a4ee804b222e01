"""Importing Ray without taking the JVM's signals: Ray's C++ core installs a SIGSEGV handler over
the one of a JVM (Pyserini) already running in the process, so :func:`require_ray` first tells Ray
to leave signals alone (:func:`leave_signals_to_the_jvm`), here and in the workers it starts, and
then imports ``ray`` or says in one line how to install it.
"""
from __future__ import annotations

import os
import sys
from typing import Any

from ...core.errors import WorkbenchError

#: Ray's C++ core installs a SIGSEGV handler when it starts, over the JVM's. HotSpot raises SIGSEGV
#: on purpose (implicit null checks, safepoints) and handles it itself; with Ray's handler on top, the
#: first such signal after ``ray.init`` kills a process whose JVM (Pyserini) is already running:
#: "Fatal Python error: Segmentation fault" in a Lucene search. Ray reads this variable to leave
#: signals alone (driver and workers, which inherit it); it reads it when ``ray`` is imported.
RAY_SIGNAL_HANDLER_OFF = {"RAY_DISABLE_FAILURE_SIGNAL_HANDLER": "1"}


def leave_signals_to_the_jvm() -> None:
    """Keep Ray's failure signal handler out of this process and its workers (see above); also
    when ``ray`` was imported already, as long as ``ray.init`` has not run."""
    os.environ.update(RAY_SIGNAL_HANDLER_OFF)
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = True


def require_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    leave_signals_to_the_jvm()
    try:
        import ray
    except ImportError:
        raise WorkbenchError("--engine ray needs Ray: pip install -e '.[ray]' (make setup installs it)") from None
    return ray
