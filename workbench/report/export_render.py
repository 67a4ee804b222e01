"""Drawing an :class:`~.export.ExportTable`: LaTeX (booktabs, a two-level header) and Markdown.

Both draw the same cells: the renderers only choose symbols, escape text and lay the header out.
System, dataset and metric names are escaped for the format (fused systems carry ``[``, ``|``,
``:`` and ``=``; option values may carry any of LaTeX's special characters).
"""
from __future__ import annotations

import re

from ..core.measures import JUDGED_SUFFIX, is_workbench_name
from .export_model import ExportCell, ExportColumn, ExportTable, significance_legend

#: a symbol per baseline, in the order the table meets the baselines (LaTeX math mode; Markdown)
LATEX_SYMBOLS = ("\\dagger", "\\ddagger", "\\S", "\\P", "\\|", "\\sharp", "\\flat", "\\diamond", "\\star", "\\bullet")
MARKDOWN_SYMBOLS = ("†", "‡", "§", "¶", "‖", "♯", "♭", "⋄", "⋆", "•")
#: marks a system whose numbers are not comparable with published figures (its comparability column)
LATEX_NOT_COMPARABLE, MARKDOWN_NOT_COMPARABLE = "\\natural", "♮"
#: how the workbench's metric names read in a paper (ranx's names; anything else is shown as written)
METRIC_LABELS = {"mrr": "MRR", "ndcg": "nDCG", "map": "MAP", "recall": "R", "precision": "P", "hit_rate": "HR",
                 "r-precision": "R-Prec", "f1": "F1", "hits": "Hits", "dcg": "DCG", "ndcg_burges": "nDCG (Burges)",
                 "dcg_burges": "DCG (Burges)"}
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "|": r"\textbar{}", "<": r"\textless{}", ">": r"\textgreater{}",
                  "[": "{[}", "]": "{]}"}  # braced: a cell opening with [ would be read as \\'s optional argument
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_|<>\[\]])")
_DASH = {"latex": "---", "markdown": "—"}


def latex_escape(text: object) -> str:
    """``text`` as LaTeX prints it literally: every special character escaped."""
    return "".join(_LATEX_SPECIAL.get(char, char) for char in str(text))


def markdown_escape(text: object) -> str:
    """``text`` as a Markdown table cell shows it literally (``|`` would end the cell)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def metric_label(metric: str, latex: bool = False) -> str:
    """A metric's header: ``ndcg@10`` -> nDCG@10, ``mrr@10`` -> MRR@10; the judged-only variant
    (``ndcg@10:judged``) with a prime, Sakai's notation for a condensed list (nDCG'@10); other
    names (ir_measures notation: ``RR(rel=2)@10``) as written."""
    prime = metric.endswith(JUDGED_SUFFIX)
    name = metric[:-len(JUDGED_SUFFIX)] if prime else metric
    base, at, cutoff = name.partition("@")
    if is_workbench_name(name):
        base = METRIC_LABELS.get(base, base)
    escape = latex_escape if latex else markdown_escape
    mark = ("$'$" if latex else "′") if prime else ""
    return escape(base) + mark + (escape(at + cutoff) if at else "")


def _symbols(count: int, latex: bool) -> list[str]:
    symbols = LATEX_SYMBOLS if latex else MARKDOWN_SYMBOLS
    return [symbols[i] if i < len(symbols) else f"b{i + 1}" for i in range(count)]


def _notes(table: ExportTable, latex: bool) -> list[str]:
    """The legend's sentences: marks, the not-comparable mark, the prime, the intervals."""
    symbols = _symbols(len(table.baselines), latex)
    shown = [f"${symbol}$" if latex else symbol for symbol in symbols]
    escape = latex_escape if latex else markdown_escape
    at_most = "$p \\le {}$" if latex else "p ≤ {}"
    notes = [significance_legend(table, shown, escape, at_most)] if table.baselines else []
    notes.append("Bold: the best value of its column (after rounding; ties all bold).")
    if table.not_comparable:
        mark = f"${LATEX_NOT_COMPARABLE}$" if latex else MARKDOWN_NOT_COMPARABLE
        notes.append(f"{mark} Not comparable with published figures (the leaderboard's comparability column).")
    if any(column.metric.endswith(JUDGED_SUFFIX) for column in table.columns):
        notes.append(f"{'$' + chr(39) + '$' if latex else '′'} Judged documents only (condensed list).")
    if any(cell.ci is not None for cell in table.cells.values()):
        notes.append(f"Brackets: 95{escape('%')} confidence interval.")
    return notes


def _cell_latex(cell: ExportCell, symbols: list[str]) -> str:
    if cell.text is None:
        return _DASH["latex"]
    text = f"\\textbf{{{cell.text}}}" if cell.bold else cell.text
    if cell.mark is not None:
        symbol, level = cell.mark
        text += f"$^{{{symbols[symbol] * level}}}$"
    if cell.ci is not None:
        text += f" {{\\scriptsize[{cell.ci[0]}, {cell.ci[1]}]}}"
    return text


def _cell_markdown(cell: ExportCell, symbols: list[str]) -> str:
    if cell.text is None:
        return _DASH["markdown"]
    text = f"**{cell.text}**" if cell.bold else cell.text
    if cell.mark is not None:
        symbol, level = cell.mark
        text += symbols[symbol] * level
    if cell.ci is not None:
        text += f" [{cell.ci[0]}, {cell.ci[1]}]"
    return text


def _system_label(table: ExportTable, system: str, latex: bool) -> str:
    if latex:
        return latex_escape(system) + (f"$^{LATEX_NOT_COMPARABLE}$" if system in table.not_comparable else "")
    return markdown_escape(system) + (MARKDOWN_NOT_COMPARABLE if system in table.not_comparable else "")


def _column_label(column: ExportColumn, latex: bool) -> str:
    if column.metric == "n":
        return "$n$" if latex else "n"
    return metric_label(column.metric, latex)


def render_latex(table: ExportTable, caption: str | None = None, label: str | None = None,
                 standalone: bool = False) -> str:
    """A ``table`` float: a booktabs ``tabular`` with the datasets over their metrics
    (``\\multicolumn`` + ``\\cmidrule``) under a caption: ``caption`` (LaTeX, written as given),
    then the legend. ``standalone``: inside a minimal ``article`` that pdflatex compiles."""
    symbols = _symbols(len(table.baselines), latex=True)
    datasets = table.datasets
    groups = [[c for c in table.columns if c.dataset == d] for d in datasets]
    title = caption or f"Leaderboard ({latex_escape(table.slice)} queries)."
    lines = ["% needs \\usepackage{booktabs}; written by `workbench export` from the leaderboard CSV",
             "\\begin{table}[t]", "\\centering", "\\caption{" + " ".join([title, *_notes(table, True)]) + "}",
             *([f"\\label{{{label}}}"] if label else []),
             "\\begin{tabular}{l" + "".join(" " + "r" * len(group) for group in groups) + "}", "\\toprule"]
    heads, rules, start = [], [], 2
    for dataset, group in zip(datasets, groups):
        title = latex_escape(dataset) + (f" ($n={table.dataset_n[dataset]}$)" if dataset in table.dataset_n else "")
        heads.append(f"\\multicolumn{{{len(group)}}}{{c}}{{{title}}}")
        rules.append(f"\\cmidrule(lr){{{start}-{start + len(group) - 1}}}")
        start += len(group)
    lines += [" & ".join(["", *heads]) + " \\\\", " ".join(rules),
              " & ".join(["System", *(_column_label(c, True) for c in table.columns)]) + " \\\\", "\\midrule"]
    for system in table.systems:
        cells = [_cell_latex(table.cells[system, column], symbols) for column in table.columns]
        lines.append(" & ".join([_system_label(table, system, True), *cells]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    body = "\n".join(lines) + "\n"
    if not standalone:
        return body
    return ("\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage[margin=1cm,landscape]{geometry}\n"
            "\\begin{document}\n" + body + "\\end{document}\n")


def render_markdown(table: ExportTable, caption: str | None = None) -> str:
    """A GitHub-flavoured Markdown table (one header row: dataset and metric), the legend below."""
    symbols = _symbols(len(table.baselines), latex=False)
    header = ["system"]
    for column in table.columns:
        n = f" (n={table.dataset_n[column.dataset]})" if column.dataset in table.dataset_n else ""
        header.append(f"{markdown_escape(column.dataset)}{n} {_column_label(column, False)}")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---", *("---:" for _ in table.columns)]) + "|"]
    for system in table.systems:
        cells = [_cell_markdown(table.cells[system, column], symbols) for column in table.columns]
        lines.append("| " + " | ".join([_system_label(table, system, False), *cells]) + " |")
    notes = [caption or f"Leaderboard ({markdown_escape(table.slice)} queries).", *_notes(table, False)]
    return "\n".join(lines) + "\n\n" + "\n\n".join(notes) + "\n"
