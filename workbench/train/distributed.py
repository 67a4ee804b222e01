"""Training over several processes (``torchrun`` / ``accelerate launch``, ``WORLD_SIZE`` > 1): joining
the process group with each rank on its own GPU, summing every parameter's gradient over the ranks
in one all-reduce (as DistributedDataParallel does, with ``grad = None`` kept for parameters no rank
computed), summing a step's logged figures over the ranks, and the barrier that waits for rank 0.
``torch.distributed`` is imported only when a process group is used; one process never touches it.
"""
from __future__ import annotations

import os
from typing import Any

import torch


def join_process_group(device: torch.device) -> tuple[int, int, torch.device]:
    """``(rank, world size, device)`` of this process: under ``torchrun`` / ``accelerate launch``
    (``WORLD_SIZE`` > 1) the process group is joined (nccl on CUDA, gloo on the CPU) and a CUDA
    device becomes the local rank's GPU; ``(0, 1, device)`` in a single process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, device
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def sum_gradients(model: torch.nn.Module) -> None:
    """Sum every parameter's gradient over the ranks (one all-reduce of one flat buffer), as
    DistributedDataParallel does (it averages; the trainer weights each rank's losses by its share of
    the step's lists, so a sum is the whole batch's gradient). A parameter no rank computed a gradient
    for (a pooler the ranker does not read) keeps ``grad = None``, so AdamW skips it as in one process."""
    import torch.distributed as dist

    params = [p for p in model.parameters() if p.requires_grad]
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
                     + [torch.tensor([float(p.grad is not None) for p in params], device=params[0].device)])
    dist.all_reduce(flat)
    offset = 0
    for p in params:
        p.grad = flat[offset:offset + p.numel()].view_as(p).clone()
        offset += p.numel()
    for p, computed in zip(params, flat[offset:].tolist()):
        if not computed:
            p.grad = None


def sum_over_ranks(totals: dict[str, float], world_size: int) -> dict[str, float]:
    """Each figure of ``totals`` summed over the ``world_size`` ranks (a name a rank lacks counts 0)."""
    import torch.distributed as dist

    gathered: list[Any] = [None] * world_size
    dist.all_gather_object(gathered, totals)
    return {name: sum(part.get(name, 0) for part in gathered) for name in gathered[0] | totals}


def wait_for_ranks() -> None:
    """Block until every rank gets here (rank 0 has then published what it writes)."""
    import torch.distributed as dist

    dist.barrier()
