"""A tiny data directory (two DL19 queries, four passages) for tests that need no shared data."""
from pathlib import Path

PASSAGES = {"p1": "the capital of france is paris", "p2": "paris is a city in france",
            "p3": "eggs boil in ten minutes", "p4": "boil water first then add the eggs"}


def make_tiny_data(root: Path) -> Path:
    """A data directory laid out like msmarco-passage-mini, with two DL19 queries and four passages."""
    (root / "topics").mkdir(parents=True)
    (root / "qrels").mkdir()
    (root / "runs").mkdir()
    (root / "collection.tsv").write_text("".join(f"{k}\t{v}\n" for k, v in PASSAGES.items()), encoding="utf-8")
    (root / "topics" / "dl19-passage.tsv").write_text("1\tcapital of france\n2\thow long to boil eggs\n",
                                                       encoding="utf-8")
    (root / "qrels" / "dl19-passage.txt").write_text("1 0 p1 3\n1 0 p2 1\n2 0 p3 2\n2 0 p4 3\n", encoding="utf-8")
    (root / "runs" / "bm25.dl19.trec").write_text(
        "".join(f"{q} Q0 {p} {r} {s} bm25\n" for q, p, r, s in
                [("1", "p3", 1, 9.0), ("1", "p1", 2, 8.0), ("1", "p2", 3, 7.0),
                 ("2", "p1", 1, 9.0), ("2", "p4", 2, 8.0), ("2", "p3", 3, 7.0)]), encoding="utf-8")
    (root / "runs" / "tasb.dl19.trec").write_text(
        "".join(f"{q} Q0 {p} {r} {s} tasb\n" for q, p, r, s in
                [("1", "p1", 1, 9.0), ("1", "p2", 2, 8.0), ("2", "p4", 1, 9.0), ("2", "p3", 2, 8.0)]),
        encoding="utf-8")
    return root
