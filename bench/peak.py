"""The yardstick: this machine's measured fp32 peak, and the work a transformer does per text.

``measure_fp32_peak`` times large fp32 matrix products in torch on every thread torch uses (the
best of several, so the number is what the cores can do, not what a busy moment allowed).
``transformer_flops`` counts the floating-point operations an encoder spends on texts of given
token lengths (the matrix products: attention projections, feed-forward, attention scores and
mixing; embeddings, layer norms and activations are left out, a few percent). A path's
throughput in texts/s times the FLOPs per text, over the peak, says how close to the roof it runs
on whatever CPU runs the bench.

    python bench/peak.py            # prints the peak of this machine
"""
from __future__ import annotations

import platform
import time
from typing import Any, Iterable

import torch


def measure_fp32_peak(size: int = 2048, seconds: float = 3.0, threads: int | None = None) -> dict[str, Any]:
    """fp32 GFLOP/s of ``size`` x ``size`` matrix products (2 size^3 FLOPs each), the best of
    repeated timings over about ``seconds``."""
    if threads:
        torch.set_num_threads(threads)
    a = torch.randn(size, size, dtype=torch.float32)
    b = torch.randn(size, size, dtype=torch.float32)
    out = torch.empty(size, size, dtype=torch.float32)
    for _ in range(3):  # warm-up: thread pool, caches, frequency
        torch.mm(a, b, out=out)
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - started)
    return {"gflops": 2 * size ** 3 / best / 1e9, "size": size, "threads": torch.get_num_threads(),
            "cpu": cpu_name(), "torch": torch.__version__}


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def transformer_flops(config: Any, lengths: Iterable[int]) -> float:
    """FLOPs of an encoder's matrix products over texts of these token lengths (unpadded: the
    useful work, the same whatever padding a path adds)."""
    hidden = int(config.hidden_size)
    layers = int(config.num_hidden_layers)
    intermediate = int(getattr(config, "intermediate_size", 4 * hidden))
    per_token = 8 * hidden * hidden + 4 * hidden * intermediate  # Q, K, V, O projections; feed-forward
    total = 0.0
    for length in lengths:
        total += layers * (length * per_token + 4 * length * length * hidden)  # + scores and mixing
    return total


if __name__ == "__main__":
    peak = measure_fp32_peak()
    print(f"fp32 peak: {peak['gflops']:.1f} GFLOP/s ({peak['size']}x{peak['size']} matmul, {peak['threads']} threads, "
          f"{peak['cpu']})")
