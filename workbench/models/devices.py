"""Where a model runs: devices (``auto``, ``cpu``, ``cuda[:N]``, ``mps``) and CPU threads."""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch

from ..core.errors import WorkbenchError


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()


def resolve_device(requested: str | None = None, context_device: str | None = None, *,
                   auto_mps: bool = False) -> torch.device:
    """``requested`` (an option) else ``context_device``; ``auto`` picks CUDA when available
    (then Apple's MPS when ``auto_mps``), else the CPU."""
    name = (requested or context_device or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if auto_mps and _mps_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps_available():
            raise WorkbenchError("device 'mps' requested but MPS is not available; use device=cpu or device=auto")
        return torch.device("mps")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise WorkbenchError(f"device {name!r} requested but CUDA is not available "
                                 "(this torch build or machine has no GPU); use device=cpu or device=auto")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise WorkbenchError(f"device {name!r} requested but only {torch.cuda.device_count()} GPU(s) exist")
        return device
    raise WorkbenchError(f"unknown device {name!r}: expected auto, cpu, cuda, cuda:N or mps")


def available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def set_torch_threads(threads: float) -> int:
    """Set torch's intra-op thread count (at least one); returns the count it had before.

    The one place the workbench sets it: the CLI's ``threads=N``, a Ray worker's CPU share and
    the capacity plan's per-worker measurement all go through here.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    return previous


@contextlib.contextmanager
def torch_threads(threads: float) -> Iterator[None]:
    """torch uses ``threads`` intra-op threads inside the block, its previous count after."""
    previous = set_torch_threads(threads)
    try:
        yield
    finally:
        set_torch_threads(previous)


def configure_threads(threads: int | None) -> int:
    """Set torch's intra-op threads when asked; never more than the CPUs this process may use.

    torch defaults to one thread per physical core, which is right for a dedicated machine;
    on a shared one pass ``threads=N``. Returns the number of threads torch will use.
    """
    if threads is not None:
        set_torch_threads(threads)
    elif torch.get_num_threads() > available_cpus():
        set_torch_threads(available_cpus())
    return torch.get_num_threads()
