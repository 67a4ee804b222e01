"""What the ecosystem offers for exact fp32 inference on this CPU, tried on the cross-encoder.

Each candidate scores the same padded, length-sorted batches of real DL19 pairs (the batches the
workbench's cross-encoder forms) with the same MiniLM-L6-sized model (random weights, the real
all-MiniLM-L6-v2 tokenizer), in this process, on the same threads; the candidates take turns
batch group by batch group, so load from other processes hits them alike. Reported per
candidate: pairs/s, the speedup over the workbench's torch fp32 path, the fraction of the
measured fp32 peak, set-up seconds (compilation, export), and the largest absolute score
difference from torch fp32 (a candidate is exact only within 1e-6, the bar ``backend=auto``
holds its paths to).

Candidates: torch eager (SDPA attention, the default path) at batch sizes 16/32/64/128; eager
attention; ``torch.compile`` (inductor's CPU backend, dynamic shapes); TorchScript trace +
``torch.jit.freeze`` + ``optimize_for_inference`` (oneDNN fusion); ONNX Runtime fp32 with the
workbench's settings, with its transformer optimizer's fusions (attention, layer norm, GELU), and
with thread spinning off.

    python bench/bench_exact_paths.py [--pairs 1000] [--rounds 2] [--only NAME ...] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench_rerankers import build_model, load_pairs  # noqa: E402
from peak import cpu_name, measure_fp32_peak, transformer_flops  # noqa: E402

EXACT = 1e-6


def batches_of(reranker: Any, queries: list[str], passages: list[str], batch_size: int) -> list[tuple[np.ndarray, dict]]:
    from workbench.models.batching import length_sorted_batches, pad_batch

    features = reranker._features(queries, passages)
    order = length_sorted_batches([len(ids) for ids in features["input_ids"]], batch_size)
    return [(indices, pad_batch(features, indices, reranker.pad_values, reranker.tokenizer.padding_side))
            for indices in order]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--only", nargs="*", default=None, help="candidates to run (default: all)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    work = Path(tempfile.mkdtemp(prefix="bench-exact-"))
    os.environ["WORKBENCH_CACHE"] = str(work / "cache")
    warnings.filterwarnings("ignore")
    from transformers import AutoConfig

    from workbench.rerankers.cross_encoder import CrossEncoderReranker

    model_dir = build_model(work / "minilm")
    _, queries, passages = load_pairs(args.pairs)
    reference = CrossEncoderReranker(str(model_dir), backend="torch", precision="fp32", device="cpu")
    lengths = [len(ids) for ids in reference._features(queries, passages)["input_ids"]]
    flops = transformer_flops(AutoConfig.from_pretrained(str(model_dir)), lengths)
    peak = measure_fp32_peak(threads=threads)
    print(f"{len(passages)} pairs, {threads} threads, {cpu_name()}, fp32 peak {peak['gflops']:.0f} GFLOP/s", flush=True)

    def torch_forward(model: Callable[..., Any], names: list[str]) -> Callable[[dict], np.ndarray]:
        def run(arrays: dict) -> np.ndarray:
            with torch.inference_mode():
                out = model(*[torch.from_numpy(arrays[name]) for name in names])
            out = out if isinstance(out, torch.Tensor) else (out["logits"] if isinstance(out, dict) else out[0])
            return torch.sigmoid(out.float())[:, 0].double().numpy()
        return run

    names = reference.input_names

    class Positional(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            out = self.model(**dict(zip(names, inputs)))
            return out[0] if isinstance(out, tuple) else out.logits

    def eager(attention: str | None = None) -> Callable[[dict], np.ndarray]:
        from workbench.models.hub import load_weights
        from transformers import AutoModelForSequenceClassification

        model = load_weights(AutoModelForSequenceClassification, model_dir, "cross-encoder", attention=attention)
        return torch_forward(Positional(model), names)

    def compiled() -> Callable[[dict], np.ndarray]:
        from workbench.models.hub import load_weights
        from transformers import AutoModelForSequenceClassification

        model = load_weights(AutoModelForSequenceClassification, model_dir, "cross-encoder")
        return torch_forward(torch.compile(Positional(model), dynamic=True), names)

    def frozen() -> Callable[[dict], np.ndarray]:
        from workbench.models.hub import load_weights
        from transformers import AutoModelForSequenceClassification

        model = load_weights(AutoModelForSequenceClassification, model_dir, "cross-encoder", attention="eager")
        model.config.return_dict = False
        sample = reference.tokenizer(["what is a cross encoder", "query"], ["a longer passage than the other", "short"],
                                     padding=True, return_tensors="pt")
        with torch.no_grad():
            traced = torch.jit.trace(Positional(model), tuple(sample[name] for name in names), check_trace=False,
                                     strict=False)
            traced = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
        return torch_forward(traced, names)

    def ort(fused: bool = False, spinning: bool = True) -> Callable[[dict], np.ndarray]:
        import onnxruntime as ortmod

        session = CrossEncoderReranker(str(model_dir), backend="onnx", precision="fp32").session
        path = session._model_path
        if fused:
            from onnxruntime.transformers.optimizer import optimize_model

            config = AutoConfig.from_pretrained(str(model_dir))
            optimized = optimize_model(path, model_type="bert", num_heads=config.num_attention_heads,
                                       hidden_size=config.hidden_size, opt_level=1)
            path = str(work / "fused.onnx")
            optimized.save_model_to_file(path)
        options = ortmod.SessionOptions()
        options.graph_optimization_level = ortmod.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ortmod.InferenceSession(path, options, providers=["CPUExecutionProvider"])

        def run(arrays: dict) -> np.ndarray:
            logits = session.run(["logits"], {name: arrays[name] for name in names})[0]
            return torch.sigmoid(torch.from_numpy(logits).float())[:, 0].double().numpy()
        return run

    builders: dict[str, tuple[int, Callable[[], Callable[[dict], np.ndarray]]]] = {
        "torch-sdpa-b32 (default torch path)": (32, eager),
        "torch-sdpa-b8": (8, eager),
        "torch-sdpa-b16": (16, eager),
        "torch-sdpa-b64": (64, eager),
        "torch-sdpa-b128": (128, eager),
        "torch-eager-attention-b32": (32, lambda: eager("eager")),
        "torch-compile-inductor-b32": (32, compiled),
        "torch-compile-inductor-b16": (16, compiled),
        "torchscript-freeze-onednn-b32": (32, frozen),
        "onnx-fp32-b32 (workbench settings)": (32, ort),
        "onnx-fp32-no-spinning-b32": (32, lambda: ort(spinning=False)),
        "onnx-fp32-fused-b32": (32, lambda: ort(fused=True)),
    }
    if args.only:
        builders = {name: value for name, value in builders.items()
                    if any(part in name for part in args.only) or name.startswith("torch-sdpa-b32")}
    batches = {size: batches_of(reference, queries, passages, size) for size in {s for s, _ in builders.values()}}
    methods, setup, failed = {}, {}, {}
    for name, (size, build) in builders.items():
        started = time.perf_counter()
        try:
            method = build()
            for _, arrays in batches[size][:3] + batches[size][-2:]:  # warm-up: compile, kernels, arenas
                method(arrays)
        except Exception as error:  # noqa: BLE001 - a candidate that does not run is a result too
            failed[name] = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:200] if str(error).strip() else ''}"
            print(f"{name}: failed ({failed[name]})", flush=True)
            continue
        methods[name] = (size, method)
        setup[name] = time.perf_counter() - started
        print(f"{name}: ready in {setup[name]:.1f} s", flush=True)
    seconds = {name: 0.0 for name in methods}
    scores = {name: np.empty(len(passages)) for name in methods}
    # groups of about 128 pairs: every candidate runs one group, in a rotating order, then the next group
    groups = {name: [] for name in methods}
    for name, (size, _) in methods.items():
        per_group = max(1, 128 // size)
        groups[name] = [batches[size][i:i + per_group] for i in range(0, len(batches[size]), per_group)]
    count = max(len(g) for g in groups.values())
    order = list(methods)
    for round_number in range(args.rounds):
        for index in range(count):
            rotation = order[index % len(order):] + order[:index % len(order)]
            for name in rotation:
                if index >= len(groups[name]):
                    continue
                _, method = methods[name]
                started = time.perf_counter()
                results = [(indices, method(arrays)) for indices, arrays in groups[name][index]]
                seconds[name] += time.perf_counter() - started
                for indices, values in results:
                    scores[name][indices] = values
        print(f"round {round_number + 1} done", flush=True)
    base_name = next(iter(methods))
    base_rate = len(passages) * args.rounds / seconds[base_name]
    results = {}
    for name in methods:
        rate = len(passages) * args.rounds / seconds[name]
        diff = float(np.max(np.abs(scores[name] - scores[base_name])))
        results[name] = {"pairs_per_s": round(rate, 1), "vs_torch_fp32": round(rate / base_rate, 3),
                         "fraction_of_fp32_peak": round(rate * flops / len(passages) / 1e9 / peak["gflops"], 3),
                         "setup_s": round(setup[name], 1), "max_abs_diff_vs_torch_fp32": diff,
                         "exact": diff <= EXACT}
        print(f"{name:40s} {rate:7.1f} pairs/s  x{rate / base_rate:.3f}  {results[name]['fraction_of_fp32_peak']:.1%} of peak"
              f"  setup {setup[name]:5.1f} s  max diff {diff:.1e}", flush=True)
    summary = {"cpu": cpu_name(), "threads": threads, "torch": torch.__version__, "pairs": len(passages),
               "rounds": args.rounds, "fp32_peak_gflops": round(peak["gflops"], 1), "machine": platform.platform(),
               "results": results, "failed": failed}
    try:
        import onnxruntime

        summary["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
