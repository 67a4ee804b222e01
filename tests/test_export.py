"""The leaderboard exported as a paper's table (workbench.report.export): bold bests, rounding,
escaping, one symbol per baseline carrying the CSV's own marks, Markdown's shape, one-line errors;
and the LaTeX compiled by pdflatex (make setup-tex), its marks read back from the .tex equal to the
CSV's ``sig_`` columns row by row, on a synthetic board and on a real one from the shared data."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.cli import main
from workbench.core.errors import WorkbenchError
from workbench.report.export import export_table, parse_digits
from workbench.report.export_render import latex_escape, metric_label
from workbench.report.leaderboard import read_leaderboard, write_board

#: a fused system's name as other parts of the workbench spell them, with every LaTeX special character
TRICKY = "rrf[bm25:k1=0.9|official-bm25]_x&y%z#$~^\\{w}<>"


def _row(dataset, system, mrr, ndcg, baseline=None, sig_mrr="", sig_ndcg="", n=43, slice="all",
         comparability="comparable with published figures", pooled=None):
    return {"dataset": dataset, "system": system, "slice": slice, "mrr@10": mrr, "ndcg@10": ndcg,
            "mrr@10_ci_low": mrr - 0.1, "mrr@10_ci_high": mrr + 0.1, "ndcg@10_ci_low": ndcg - 0.05,
            "ndcg@10_ci_high": ndcg + 0.05, "n_queries": n, "baseline": baseline,
            "sig_mrr@10": sig_mrr or np.nan, "sig_ndcg@10": sig_ndcg or np.nan,
            "correction": "holm" if baseline else None, "comparability": comparability, "pooled": pooled}


def synthetic_board() -> pd.DataFrame:
    """Two baselines (bm25 for the reranker, official-bm25 for the fusion), a tie after rounding to
    three decimals, a system missing from dl20, a not-comparable row, a non-'all' slice."""
    rows = [
        _row("dl19", "bm25", 0.70, 0.50),
        _row("dl19", "bm25+tfidf", 0.44, 0.3712, baseline="bm25", sig_mrr="**", sig_ndcg="*"),
        _row("dl19", "official-bm25", 0.71, 0.5058),
        _row("dl19", TRICKY, 0.7104, 0.5061, baseline="official-bm25", sig_ndcg="**",
             comparability="not comparable with published figures: mini-collection BM25"),
        _row("dl19", "bm25+tfidf", 0.40, 0.30, baseline="bm25", sig_mrr="*", slice="qa"),
        _row("dl20", "bm25", 0.64, 0.48, n=54),
        _row("dl20", "bm25+tfidf", 0.51, 0.42, baseline="bm25", sig_mrr="*", n=54),
        _row("dl20", "official-bm25", 0.65, 0.4796, n=54),
    ]
    return pd.DataFrame(rows)


def _latex_rows(tex: str) -> dict[str, list[str]]:
    """The table's body: escaped system label -> its cells, split at unescaped ampersands."""
    body = tex.split("\\midrule\n", 1)[1].split("\\bottomrule", 1)[0]
    rows = {}
    for line in body.strip().splitlines():
        cells = [cell.strip() for cell in re.split(r"(?<!\\)&", line.rstrip().removesuffix("\\\\"))]
        rows[cells[0]] = cells[1:]
    return rows


def _markdown_rows(text: str) -> dict[str, list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("|")][2:]
    return {cells[0]: cells[1:] for cells in
            ([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines)}


# --- the table ---


def test_bold_best_per_column_ties_after_rounding():
    board = synthetic_board()
    four = _latex_rows(export_table(board, datasets=["dl19"], metrics=["mrr@10", "ndcg@10"]))
    # 4 decimals: 0.7104 beats 0.7100 on MRR@10; 0.5061 beats 0.5058 on nDCG@10
    tricky = latex_escape(TRICKY) + "$^\\natural$"
    assert four[tricky][0] == "\\textbf{0.7104}" and four["official-bm25"][0] == "0.7100"
    # 2 decimals: 0.71 and 0.71 tie, both bold; so do 0.51 and 0.51 (the reader compares what is printed)
    two = _latex_rows(export_table(board, datasets=["dl19"], metrics=["mrr@10", "ndcg@10"], digits=2))
    assert two["official-bm25"][:2] == ["\\textbf{0.71}", "\\textbf{0.51}"]
    assert two[tricky][:2] == ["\\textbf{0.71}", "\\textbf{0.51}$^{\\ddagger\\ddagger}$"]
    assert two["bm25"] == ["0.70", "0.50"]


def test_digits_per_metric():
    board = synthetic_board()
    rows = _latex_rows(export_table(board, datasets=["dl19"], metrics=["mrr@10", "ndcg@10"],
                                    digits={"ndcg@10": 2, "*": 3}))
    assert rows["bm25"] == ["0.700", "0.50"]
    assert parse_digits("3,ndcg@10=2") == {"*": 3, "ndcg@10": 2}
    assert parse_digits("P(rel=2,judged_only=true)@10=3, map=1") == {"P(rel=2,judged_only=true)@10": 3, "map": 1}
    assert parse_digits(None) == {} and parse_digits("") == {}


def test_marks_per_baseline_are_the_csvs():
    board = synthetic_board()
    tex = export_table(board, metrics=["mrr@10", "ndcg@10"])
    rows = _latex_rows(tex)
    # bm25's rows are met first: dagger; official-bm25's: double dagger; '**' doubles the symbol
    assert rows["bm25+tfidf"][:2] == ["0.4400$^{\\dagger\\dagger}$", "0.3712$^{\\dagger}$"]
    assert rows[latex_escape(TRICKY) + "$^\\natural$"][1] == "\\textbf{0.5061}$^{\\ddagger\\ddagger}$"
    assert rows["bm25+tfidf"][2] == "0.5100$^{\\dagger}$"  # dl20: its own row's mark
    assert "($\\dagger$ bm25; $\\ddagger$ official-bm25)" in tex
    assert "Holm-corrected paired randomization test" in tex and "$p \\le 0.05$" in tex and "$p \\le 0.01$" in tex
    # the qa slice is another family: only its own marks
    qa = _latex_rows(export_table(board, slice="qa", metrics=["mrr@10"]))
    assert qa == {"bm25+tfidf": ["\\textbf{0.4000}$^{\\dagger}$"]}  # alone in its column: the best


def test_missing_dataset_is_a_dash_and_n_and_ci():
    board = synthetic_board()
    tex = export_table(board, metrics=["mrr@10"], n=True, ci=True)
    rows = _latex_rows(tex)
    assert rows[latex_escape(TRICKY) + "$^\\natural$"][1] == "---"  # not evaluated on dl20
    assert rows["bm25"] == ["0.7000 {\\scriptsize[0.60, 0.80]}", "0.6400 {\\scriptsize[0.54, 0.74]}"]
    assert "\\multicolumn{1}{c}{dl19 ($n=43$)}" in tex and "dl20 ($n=54$)" in tex
    assert "Not comparable with published figures" in tex and "95\\% confidence interval" in tex


def test_latex_escapes_every_special_character():
    escaped = latex_escape(TRICKY)
    assert escaped == ("rrf{[}bm25:k1=0.9\\textbar{}official-bm25{]}\\_x\\&y\\%z\\#\\$\\textasciitilde{}"
                       "\\textasciicircum{}\\textbackslash{}\\{w\\}\\textless{}\\textgreater{}")
    assert metric_label("ndcg@10", latex=True) == "nDCG@10"
    assert metric_label("ndcg@10:judged", latex=True) == "nDCG$'$@10"
    assert metric_label("mrr@10") == "MRR@10" and metric_label("RR(rel=2)@10") == "RR(rel=2)@10"


def test_markdown_shape():
    board = synthetic_board()
    text = export_table(board, "markdown", metrics=["mrr@10", "ndcg@10"], caption="Table 1.")
    lines = text.splitlines()
    table = [line for line in lines if line.startswith("|")]
    widths = {len(re.split(r"(?<!\\)\|", line)) for line in table}
    assert widths == {7} and len(table) == 2 + 4  # header, rule, four systems; 1 + 2x2 columns
    assert table[0] == "| system | dl19 MRR@10 | dl19 nDCG@10 | dl20 MRR@10 | dl20 nDCG@10 |"
    assert table[1] == "|---|---:|---:|---:|---:|"
    rows = _markdown_rows(text)
    name = "rrf\\[bm25:k1=0.9\\|official-bm25\\]\\_x&y%z#$~^\\\\{w}\\<\\>♮"
    assert rows[name] == ["**0.7104**", "**0.5061**‡‡", "—", "—"]
    assert rows["bm25+tfidf"] == ["0.4400††", "0.3712†", "0.5100†", "0.4200"]
    assert "Table 1." in lines and any(line.startswith("Significantly different") for line in lines)


def test_judged_only_metric_gets_a_prime():
    board = synthetic_board().rename(columns={"ndcg@10": "ndcg@10:judged", "sig_ndcg@10": "sig_ndcg@10:judged"})
    text = export_table(board, "markdown", datasets=["dl19"], metrics=["ndcg@10:judged"])
    assert "dl19 nDCG′@10" in text and "′ Judged documents only" in text
    assert _markdown_rows(text)["bm25+tfidf"] == ["0.3712†"]


def test_a_dataset_shows_only_its_own_metrics():
    board = pd.concat([synthetic_board(), pd.DataFrame([
        {"dataset": "cacm", "system": "bm25", "slice": "all", "map": 0.3123, "n_queries": 52}])], ignore_index=True)
    tex = export_table(board, metrics=["mrr@10", "map"])
    assert "\\multicolumn{1}{c}{cacm}" in tex and "\\multicolumn{1}{c}{dl19}" in tex
    assert _latex_rows(tex)["bm25"] == ["0.7000", "0.6400", "\\textbf{0.3123}"]
    # a metric only CACM has: the TREC DL groups drop out; asked for by name, they are an error
    assert "{dl19}" not in export_table(board, metrics=(m for m in ["map"]))
    with pytest.raises(WorkbenchError, match="dataset 'dl19' has none of the metrics map on the leaderboard"):
        export_table(board, datasets=["cacm", "dl19"], metrics=["map"])


def test_default_metrics_are_each_datasets_headline():
    cacm = pd.DataFrame([{"dataset": "cacm", "system": system, "slice": "all", "ndcg@10": ndcg, "map": ap,
                          "precision@30": p30, "n_queries": 52} for system, ndcg, ap, p30 in
                         [("bm25", 0.4543, 0.3123, 0.1942), ("bm25:rm3=true", 0.4847, 0.3648, 0.2224)]])
    board = pd.concat([synthetic_board(), cacm], ignore_index=True)
    # without risk columns: the terminal table's headline columns (TREC DL's, else the first two columns)
    header = export_table(board, "markdown").splitlines()[0]
    assert header == "| system | dl19 MRR@10 | dl20 MRR@10 | cacm nDCG@10 | cacm MAP |"
    # the risk columns say which metrics a dataset's headline is (CACM: MAP, P@30)
    board["urisk_a0_map"] = np.where(board["dataset"] == "cacm", 0.01, np.nan)
    board["urisk_a0_precision@30"] = np.where(board["dataset"] == "cacm", 0.02, np.nan)
    text = export_table(board, "markdown", datasets=["cacm", "dl19"])
    assert text.splitlines()[0] == "| system | cacm MAP | cacm P@30 | dl19 MRR@10 |"


# --- bad input: one line each ---


@pytest.mark.parametrize("kwargs, message", [
    ({"metrics": ["ndcg@11"]}, "metric 'ndcg@11' is not on the leaderboard; it has: mrr@10, ndcg@10"),
    ({"datasets": ["dl21"]}, "dataset 'dl21' not on the leaderboard (slice 'all'); it has: dl19, dl20"),
    ({"format": "html"}, "unknown export format 'html'; known: latex, markdown"),
    ({"slice": "weird"}, "slice 'weird' is not on the leaderboard; it has: all, qa"),
    ({"systems": ["nope"]}, "system 'nope' not on the leaderboard"),
    ({"datasets": ["dl19"], "metrics": ["map"]}, "metric 'map' is not on the leaderboard"),
    ({"digits": {"foo": 3}}, "digits for 'foo': not on the leaderboard"),
    ({"digits": {"map": -1}}, "not on the leaderboard"),
    ({"digits": {"ndcg@10": 11}}, "digits ndcg@10=11: decimals are whole numbers from 0 to 10"),
])
def test_bad_input_is_one_line(kwargs, message):
    with pytest.raises(WorkbenchError) as error:
        export_table(synthetic_board(), **kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("board", [pd.DataFrame(), pd.DataFrame(columns=["dataset", "system"])])
def test_empty_leaderboard_is_one_line(board):
    with pytest.raises(WorkbenchError, match="the leaderboard is empty: nothing to export"):
        export_table(board)


@pytest.mark.parametrize("spec", ["x", "ndcg@10=x", "=3", "ndcg@10=-1", "3.5", "ndcg@10=99"])
def test_bad_digits_spec_is_one_line(spec):
    with pytest.raises(WorkbenchError, match="--digits") as error:
        parse_digits(spec)
    assert "\n" not in str(error.value)


def test_cli_export_and_its_errors(tmp_path, capsys):
    path = tmp_path / "leaderboard.csv"
    write_board(synthetic_board(), path)
    assert main(["export", "--leaderboard", str(path), "--format", "markdown", "--metrics", "ndcg@11"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("workbench: error: metric 'ndcg@11' is not on the leaderboard; it has: mrr@10, ndcg@10")
    assert main(["export", "--leaderboard", str(tmp_path / "none.csv")]) == 2
    assert "no leaderboard at" in capsys.readouterr().err
    assert main(["export", "--leaderboard", str(path), "--digits", "ndcg@10=x"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    out = tmp_path / "tables" / "board.md"
    assert main(["export", "--leaderboard", str(path), "--format", "markdown", "--datasets", "dl20,dl19",
                 "--digits", "3", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("| system | dl20 MRR@10")
    assert text == export_table(read_leaderboard(path), "markdown", datasets=["dl20", "dl19"], digits=3)


# --- compiled by a real TeX engine ---


def compile_latex(tex: str, directory: Path) -> Path:
    """pdflatex over ``tex`` in ``directory``; the PDF, or the test fails with the log's error."""
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (make setup-tex installs Debian's texlive-latex-base + booktabs)")
    (directory / "table.tex").write_text(tex, encoding="utf-8")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "table.tex"], cwd=directory,
                          capture_output=True, text=True, timeout=120)
    errors = [line for line in done.stdout.splitlines() if line.startswith("!")]
    assert done.returncode == 0, f"pdflatex failed: {errors or done.stdout[-2000:]}"
    assert (directory / "table.pdf").stat().st_size > 0
    return directory / "table.pdf"


def marks_read_back(tex: str, board: pd.DataFrame, datasets: list[str], metrics: list[str], slice: str = "all"):
    """Every cell's mark read from the .tex: the legend's symbols mapped back to baselines, a
    doubled symbol to '**'; checked equal to the CSV's baseline and ``sig_`` row by row. Returns how
    many marks were compared."""
    legend = re.search(r"baseline \((.*?)\): Holm-corrected", tex).group(1)
    escaped = {latex_escape(system): system for system in board["system"]}
    symbols = {symbol: escaped[name] for symbol, name in re.findall(r"\$(\\[A-Za-z|]+)\$ ([^;]+)", legend)}
    rows = board[board["slice"] == slice]
    compared = 0
    for label, cells in _latex_rows(tex).items():
        system = escaped[label.removesuffix("$^\\natural$")]
        for position, cell in enumerate(cells):
            dataset, metric = datasets[position // len(metrics)], metrics[position % len(metrics)]
            row = rows[(rows["dataset"] == dataset) & (rows["system"] == system)]
            if row.empty:
                assert cell == "---"
                continue
            row = row.iloc[0]
            found = re.fullmatch(r"(?:\\textbf\{)?([0-9.]+)\}?(?:\$\^\{((?:\\[A-Za-z|]+)+)\}\$)?", cell)
            assert found, cell
            assert float(found.group(1)) == pytest.approx(row[metric], abs=5e-5)
            expected = row[f"sig_{metric}"] if isinstance(row[f"sig_{metric}"], str) else ""
            if found.group(2) is None:
                assert expected == "", (system, dataset, metric)
                continue
            used = re.findall(r"\\[A-Za-z|]+", found.group(2))
            assert len(set(used)) == 1 and symbols[used[0]] == row["baseline"], (system, dataset, metric)
            assert "*" * len(used) == expected, (system, dataset, metric)
            compared += 1
    return compared


def test_synthetic_latex_compiles_and_marks_equal_the_csv(tmp_path):
    board = synthetic_board()
    tex = export_table(board, metrics=["mrr@10", "ndcg@10"], n=True, ci=False, standalone=True,
                       caption="A caption with \\emph{LaTeX}.", label="tab:board")
    compile_latex(tex, tmp_path)
    assert marks_read_back(tex, board, ["dl19", "dl20"], ["mrr@10", "ndcg@10"]) == 4
    compile_latex(export_table(board, metrics=["mrr@10"], ci=True, n=True, slice="qa", standalone=True), tmp_path)


@pytest.fixture(scope="module")
def real_board(workbench, data_dir, tmp_path_factory):
    """A leaderboard the workbench writes from the shared data: the default board's fast systems
    (no neural model) on DL19, DL20 and pooled, with two baselines (bm25-mini, official-bm25)."""
    from workbench.experiment import Workbench

    path = tmp_path_factory.mktemp("export-board") / "leaderboard.csv"
    # the session's runs are reused (same runs directory); the leaderboard is this module's own
    bench = Workbench(data_dir=data_dir, runs_dir=workbench.runs_dir, leaderboard=path,
                      progress=False)
    bench.run_experiment(["dl19", "dl20"], ["bm25-mini", "official-bm25", "bm25-mini+tfidf", "official-bm25+tfidf",
                                            "rrf[official-bm25|bm25-mini+tfidf]"],
                         pools={"dl19+dl20": ["dl19", "dl20"]})
    return path


def test_real_leaderboard_latex_compiles_and_marks_equal_the_csv(real_board, tmp_path):
    board = read_leaderboard(real_board)  # the CSV alone, as `workbench export` reads it
    datasets, metrics = ["dl19", "dl20", "dl19+dl20"], ["mrr@10", "ndcg@5", "ndcg@10"]
    assert main(["export", "--leaderboard", str(real_board), "--metrics", ",".join(metrics), "--n", "--standalone",
                 "--out", str(tmp_path / "board.tex")]) == 0
    tex = (tmp_path / "board.tex").read_text(encoding="utf-8")
    compile_latex(tex, tmp_path)
    assert set(board["baseline"].dropna()) == {"bm25-mini", "official-bm25"}
    assert "$\\dagger$" in tex and "$\\ddagger$" in tex
    assert marks_read_back(tex, board, datasets, metrics) > 0  # the tfidf rerankers lose significantly
    for slice in ("qa", "exploratory"):
        sliced = export_table(board, datasets=datasets, metrics=metrics, slice=slice, ci=True, standalone=True)
        compile_latex(sliced, tmp_path)
        assert _latex_rows(sliced).keys() == _latex_rows(tex).keys()
