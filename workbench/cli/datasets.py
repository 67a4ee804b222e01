"""The ``dataset`` command group: declare a local test collection (``dataset add``, which writes
``datasets/<name>.toml``), list the datasets a name can refer to, show one."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import WorkbenchError
from .common import _add_data_dir, _split, command


def _dataset_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="declare a local collection: writes <dir>/<name>.toml after checking it")
    add.add_argument("name", help="the dataset's name (letters, digits, '.', '_', '-')")
    add.add_argument("--collection", required=True, help="TSV (id<TAB>text), JSONL ({\"id\", \"contents\"}), TREC "
                     "SGML, or a directory / .tar.gz of HTML files")
    add.add_argument("--topics", required=True, help="TSV (qid<TAB>query), TREC topics or CACM topics")
    add.add_argument("--qrels", required=True, help="TREC qrels (qid iteration docid grade)")
    add.add_argument("--collection-format", default=None, help="tsv, jsonl, trec or html (default: from the name)")
    add.add_argument("--topics-format", default=None, help="tsv, trec or cacm (default: from the file's first tag)")
    add.add_argument("--topic-field", default=None, help="title (default), desc or narr, for TREC topics")
    add.add_argument("--relevance-level", type=int, default=None, help="minimum grade counted relevant by binary "
                     "metrics (default 1)")
    add.add_argument("--metrics", default=None, help="headline metrics, comma-separated (default: map, "
                     "precision@30, ndcg@10)")
    add.add_argument("--description", default=None)
    add.add_argument("--comparability", default=None, help="what the dataset's numbers can be compared with")
    add.add_argument("--run", action="append", default=[], metavar="NAME=PATH",
                     help="a candidate run shipped with the dataset (system official-<NAME>); repeatable")
    add.add_argument("--dir", default="datasets", help="where the file goes (default: ./datasets, read by every "
                     "command run from this directory)")
    add.add_argument("--force", action="store_true", help="replace an existing file")
    add.add_argument("--check", action="store_true", help="also read the whole collection and topics now "
                     "(duplicate ids, empty texts), converting them into the cache")
    listing = actions.add_parser("list", help="the datasets a name can refer to")
    _add_data_dir(listing)
    show = actions.add_parser("show", help="one dataset: where its files are, counts, metrics, comparability")
    show.add_argument("name")
    _add_data_dir(show)


@command("dataset", "declare a local test collection (dataset add), list the datasets, show one", _dataset_arguments)
def run_dataset(args: argparse.Namespace) -> int:
    return {"add": _add, "list": _list, "show": _show}[args.action](args)


def _add(args: argparse.Namespace) -> int:
    from ..data.declared import load_declared, write_declaration
    from ..core.measures import split_metrics

    from ..data.datasets import DATASETS, IRDS_PREFIX

    if args.name in DATASETS or args.name.startswith(IRDS_PREFIX):
        raise WorkbenchError(f"{args.name!r} is a built-in dataset name: choose another")
    target = Path(args.dir) / f"{args.name}.toml"
    if target.exists() and not args.force:
        raise WorkbenchError("a dataset file with this name exists (--force replaces it)", target)
    runs = {}
    for item in args.run:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise WorkbenchError(f"--run {item!r}: expected NAME=PATH")
        runs[name] = str(Path(path).expanduser().resolve())
    values = {"name": args.name, "description": args.description,
              "collection": str(Path(args.collection).expanduser().resolve()),
              "collection_format": args.collection_format,
              "topics": str(Path(args.topics).expanduser().resolve()), "topics_format": args.topics_format,
              "topic_field": args.topic_field, "qrels": str(Path(args.qrels).expanduser().resolve()),
              "relevance_level": args.relevance_level,
              "metrics": split_metrics(args.metrics) if args.metrics else None, "comparability": args.comparability,
              "runs": runs}
    # checked in a scratch file first: a declaration that does not load is never written
    scratch = target.with_name(f".{target.name}.check")
    try:
        write_declaration(scratch, values)
        dataset = load_declared(scratch)
        judged = len(dataset.judged_topics)  # topics read, qrels read, ids matched
        documents = len(dataset.collection()) if args.check else None
    finally:
        scratch.unlink(missing_ok=True)
    write_declaration(target, values)
    print(f"{target}: dataset {args.name!r}: {len(dataset.topics)} topics ({judged} judged)"
          + (f", {documents:,} documents" if documents is not None else "")
          + f"; metrics {', '.join(dataset.metrics)}; use it as --datasets {args.name}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from ..data.datasets import DATASETS, declared_datasets

    for name, spec in DATASETS.items():
        print(f"{name}\tbuilt in\t{spec.description}")
    for name, path in sorted(declared_datasets().items()):
        print(f"{name}\tdeclared\t{path}")
    print("irds:<id>\tir_datasets\tany ir_datasets id, e.g. irds:msmarco-passage/trec-dl-hard, irds:beir/scifact/test")
    return 0


def _show(args: argparse.Namespace) -> int:
    from ..data.datasets import get_dataset

    dataset = get_dataset(args.name, args.data_dir)
    print(f"name\t{dataset.name}\ndescription\t{dataset.description}\nsource\t{dataset.spec.source}")
    print(f"topics\t{dataset.topics_path} ({len(dataset.topics)} topics, {len(dataset.judged_topics)} judged)")
    print(f"qrels\t{dataset.qrels_path} ({len(dataset.qrels)} judgments)")
    print(f"relevance level\tgrade >= {dataset.relevance_level} counts as relevant for binary metrics")
    print(f"metrics\t{', '.join(dataset.metrics)}")
    print(f"candidate runs\t{', '.join('official-' + r for r in dataset.candidate_runs) or 'none'}")
    print(f"comparability\t{dataset.comparability or '-'}")
    if dataset.texts_note:
        print(f"texts\t{dataset.texts_note}")
    return 0
