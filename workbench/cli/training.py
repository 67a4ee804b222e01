"""Subcommands about models and their training: train, plot-training, ablation, embed-diagnose, similarity."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import _add_data_dir, _split, _systems, command


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    _add_data_dir(parser)
    parser.add_argument("--config", required=True, help="training configuration (TOML or YAML), e.g. configs/minilm-hybrid.toml")
    parser.add_argument("--folds", default=None, help="only these cross-year folds (default: the configuration's; a "
                        "configuration with train = [...] has one fold, 'train')")
    parser.add_argument("--out", default=None, help="models directory (default: $WORKBENCH_MODELS or ./models)")
    parser.add_argument("--quiet", action="store_true")


@command("train", "fine-tune a ranker on every cross-year fold of a configuration, or on its named training "
         "data (train = [...]); resumable", _train_arguments)
def run_train(args: argparse.Namespace) -> int:
    from ..train.config import TrainConfig
    from ..train.run import train_config

    config = TrainConfig.from_file(args.config)
    result = train_config(config, args.data_dir, args.out, _split(args.folds) if args.folds else None,
                          progress=not args.quiet)
    for fold in result["folds"]:
        print(f"{fold['fold']}\tbest epoch {fold['best_epoch']}\tval ndcg@10 {fold['best_val_ndcg@10']:.4f}\t"
              f"{fold['seconds']} s\t{fold['pairs_per_s']} pairs/s")
    print(f"models: {result['dir']} (use finetuned:{config.name})")
    return 0


def _plot_training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a trained configuration's directory (models/<name>) or one fold's")
    parser.add_argument("--out", default=None, help="PNG to write (default: <run_dir>/training.png)")


@command("plot-training", "one PNG of a training run's curves (loss, validation, learning rates, drift)",
         _plot_training_arguments)
def run_plot_training(args: argparse.Namespace) -> int:
    from ..train.plot import plot_training

    print(plot_training(args.run_dir, args.out))
    return 0


def _ablation_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--leaderboard", default="runs/leaderboard.csv")
    parser.add_argument("--systems", required=True, help="the systems compared, the baseline among them")
    parser.add_argument("--baseline", required=True, help="the system every other one was tested against")
    parser.add_argument("--out", default=None, help="also write the table as Markdown here")


@command("ablation", "per-slice table of systems against one baseline (deltas, Holm-corrected significance)",
         _ablation_arguments)
def run_ablation(args: argparse.Namespace) -> int:
    from ..core.files import atomic_write
    from ..report.ablation import ablation_markdown, ablation_table
    from ..report.leaderboard import read_leaderboard

    table = ablation_table(read_leaderboard(args.leaderboard), _systems(args.systems), args.baseline)
    text = ablation_markdown(table, args.baseline)
    print(text)
    if args.out:
        with atomic_write(args.out) as handle:
            handle.write(text)
    return 0


def _embedding_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pad-to", type=int, default=None, help="pad every text to N tokens (only mean pooling, "
                        "which counts padding, sees it)")
    parser.add_argument("--no-normalize", action="store_true", help="do not L2-normalise the vectors")
    parser.add_argument("--max-length", type=int, default=None, help="tokens per text (default: the model's)")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per batch")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto")


def _embedding_kwargs(args: argparse.Namespace) -> dict:
    return {"normalize": not args.no_normalize, "pad_to": args.pad_to, "max_length": args.max_length,
            "batch_size": args.batch_size, "device": args.device}


def _diagnose_arguments(parser: argparse.ArgumentParser) -> None:
    from ..models.poolings import POOLINGS

    _add_data_dir(parser)
    parser.add_argument("--model", action="append", required=True,
                        help="hub id, local path, minilm, splade-tiny, or finetuned:<name> (the fold model that never "
                             "saw the dataset); repeat to compare models (before/after fine-tuning)")
    parser.add_argument("--pooling", nargs="+", default=list(POOLINGS), choices=POOLINGS,
                        help=f"poolings, one row each (default: {' '.join(POOLINGS)})")
    parser.add_argument("--whiten", nargs="*", default=[], choices=("center", "whiten"),
                        help="also rows post-processed by mean-centering / whitening fitted on the collection")
    parser.add_argument("--fit-sample", type=int, default=None, help="fit the whitening on N random collection "
                        "passages (default: all of them)")
    parser.add_argument("--dataset", default="dl19", help="dataset whose judged pairs are used (default: dl19)")
    parser.add_argument("--limit-queries", type=int, default=None, help="a seeded sample of N judged queries")
    parser.add_argument("--out", default=None, help="output directory (default: runs/diagnostics/<model>)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    _embedding_options(parser)


@command("embed-diagnose", "embedding diagnostics per pooling: similarity range, anisotropy, relevant vs "
         "non-relevant separation (gap, AUC), group separation, neighbours; JSON, Markdown and plots",
         _diagnose_arguments)
def run_embed_diagnose(args: argparse.Namespace) -> int:
    from ..embeddings.report import diagnose, write_diagnostics_report
    from ..experiment.store import safe_name

    report, embedded, judged = diagnose(args.model, args.dataset, args.pooling, args.whiten, args.data_dir,
                                        args.limit_queries, args.fit_sample, progress=not args.quiet,
                                        **_embedding_kwargs(args))
    labels = list(dict.fromkeys(row.model for row in embedded))
    out = Path(args.out) if args.out else Path("runs") / "diagnostics" / safe_name("+".join(labels))
    written = write_diagnostics_report(report, embedded, judged, out)
    print(report.markdown())
    print("written: " + ", ".join(str(p) for p in written))
    return 0


def _similarity_arguments(parser: argparse.ArgumentParser) -> None:
    from ..models.poolings import POOLINGS

    parser.add_argument("pairs", help="TSV with a header: name, a, b (and optionally expected)")
    parser.add_argument("--model", default="minilm", help="hub id, local path, minilm or splade-tiny (default: minilm)")
    parser.add_argument("--pooling", default="masked_mean", choices=POOLINGS, help="default: masked_mean")
    parser.add_argument("--tolerance", type=float, default=1e-5, help="largest |cosine - expected| that passes")
    parser.add_argument("--reference", default=None, choices=("sentence-transformers",),
                        help="compute the expected values with this implementation on the same model")
    _embedding_options(parser)


@command("similarity", "cosine of each sentence pair of a TSV file; pass/fail against expected values",
         _similarity_arguments)
def run_similarity(args: argparse.Namespace) -> int:
    from ..embeddings.pairs import check_pairs, read_pairs

    table = check_pairs(read_pairs(args.pairs), args.model, args.pooling, args.tolerance, args.reference,
                        **_embedding_kwargs(args))
    checked = table[table["ok"].notna()]
    for row in table.itertuples(index=False):
        verdict = "" if row.ok is None else (f"\texpected {row.expected:.6f}\tdiff {row.difference:+.2e}\t"
                                              + ("pass" if row.ok else "FAIL"))
        print(f"{row.name}\t{row.cosine:.6f}{verdict}")
    if checked.empty:
        return 0
    failed = int((~checked["ok"].astype(bool)).sum())
    print(f"{len(checked) - failed}/{len(checked)} pairs within {args.tolerance:g} of the expected cosine "
          f"({args.model}, {args.pooling}{'' if args.pad_to is None else f', padded to {args.pad_to}'})")
    return 1 if failed else 0



def _ablate_arguments(parser: argparse.ArgumentParser) -> None:
    _add_data_dir(parser)
    parser.add_argument("--configs", default="configs/ablation-bi", help="directory of the ablation's configurations")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the hybrid and of the strongest other loss")
    parser.add_argument("--models", default=None, help="models directory (default: $WORKBENCH_MODELS or ./models)")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--boards", default="runs/ablation", help="where the ablation's four leaderboards go")
    parser.add_argument("--out", default="docs/ablation.md", help="the Markdown report")
    parser.add_argument("--results", default="docs/ablation", help="small result files to commit (JSON, CSV)")
    parser.add_argument("--header", default=None, help="Markdown put above the generated report (a file)")
    parser.add_argument("--train-only", action="store_true", help="train every configuration and seed, then stop")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quiet", action="store_true")


@command("ablate", "the loss ablation with power: train every configuration, 3 seeds of the hybrid and the "
         "strongest other loss, evaluate on DL19, DL20 and pooled against pointwise and off-the-shelf, write the "
         "verdict (resumable)", _ablate_arguments)
def run_ablate(args: argparse.Namespace) -> int:
    from ..train.ablation import Ablation, evaluate_all, read_boards, train_all, write_ablation_report

    settings = {"seeds": args.seeds} | ({"models": Path(args.models)} if args.models else {})
    ablation = Ablation.from_directory(args.configs, **settings)
    strongest = train_all(ablation, args.data_dir, progress=not args.quiet)
    print(f"strongest other loss (validation NDCG@10): {strongest}")
    if args.train_only:
        return 0
    paths = evaluate_all(ablation, strongest, args.data_dir, args.runs_dir, args.boards, device=args.device,
                         progress=not args.quiet)
    header = Path(args.header).read_text(encoding="utf-8") if args.header else "# Loss ablation\n"
    calls = write_ablation_report(ablation, strongest, read_boards(paths), args.out, args.results, header)
    for call in calls:
        print(f"{call['slice']}\t{call['metric']}\thybrid vs {call['other']}\t{call['difference']:+.4f}\t{call['call']}")
    print(f"report: {args.out}")
    return 0
