"""The HTML report: its structure (parsed; every link and anchor resolves; self-contained; every
dataset and system present) on a tiny data directory and on the real data with a model trained
here, and its behaviour in headless Chromium (sorting, slice filter, a drill-down opened by
clicking, no console errors), skipped where no Chromium is installed (make setup-browser)."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from helpers_data import make_tiny_data
from workbench.core.errors import WorkbenchError
from workbench.report.browser import why_no_browser
from workbench.report.html import write_html_report
from workbench.report.leaderboard import read_leaderboard

TINY_SYSTEMS = ["official-bm25", "official-tasb", "official-bm25+tfidf"]


class ReportStructure(HTMLParser):
    """What the structural checks need: ids, links, images, scripts, and the leaderboard and
    drill-down contents."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.sources: list[str] = []
        self.external: list[str] = []
        self.datasets: list[str] = []
        self.leaderboard_systems: dict[str, list[str]] = {}
        self.pairs: list[tuple[str, str]] = []
        self.details: list[str] = []
        self.rankings = 0
        self._dataset = None
        self._in_system_cell = False
        self._cell_text = ""
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.append(attributes["id"])
        if tag == "a" and "href" in attributes:
            self.hrefs.append(attributes["href"])
        if tag in ("img", "script", "iframe") and "src" in attributes:
            self.sources.append(attributes["src"])
        if tag == "link" and attributes.get("href"):
            self.external.append(attributes["href"])
        if tag == "section" and "data-dataset" in attributes:
            self._dataset = attributes["data-dataset"]
            self.datasets.append(self._dataset)
            self.leaderboard_systems[self._dataset] = []
        if tag == "section" and "data-a" in attributes:
            self.pairs.append((attributes["data-a"], attributes["data-b"]))
        if tag == "details":
            self.details.append(attributes.get("id", ""))
        if tag == "ol" and "ranking" in attributes.get("class", ""):
            self.rankings += 1
        if tag == "td" and "system" in (attributes.get("class") or "").split():
            self._in_system_cell, self._cell_text = True, ""

    def handle_endtag(self, tag):
        if tag == "td" and self._in_system_cell:
            self._in_system_cell = False
            self.leaderboard_systems[self._dataset].append(self._cell_text.strip().rstrip(" †"))

    def handle_data(self, data):
        if self._in_system_cell:
            self._cell_text += data
        self.text.append(data)


def check_structure(path: Path, board) -> ReportStructure:
    """Parse the report and assert what every report must satisfy; returns the parse."""
    page = path.read_text(encoding="utf-8")
    parsed = ReportStructure()
    parsed.feed(page)
    parsed.close()
    assert page.lstrip().startswith("<!DOCTYPE html>")
    duplicates = {i for i in parsed.ids if parsed.ids.count(i) > 1}
    assert not duplicates, f"duplicate ids: {sorted(duplicates)[:5]}"
    ids = set(parsed.ids)
    unresolved = [h for h in parsed.hrefs if h.startswith("#") and h[1:] not in ids]
    assert not unresolved, f"links to missing anchors: {unresolved[:5]}"
    # self-contained: no link leaves the file, every image is inline, no external script or style
    assert all(h.startswith("#") for h in parsed.hrefs), [h for h in parsed.hrefs if not h.startswith("#")][:5]
    assert all(s.startswith("data:image/png;base64,") for s in parsed.sources), parsed.sources[:3]
    assert not parsed.external
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", page)
    assert sorted(parsed.datasets) == sorted(board["dataset"].unique())
    for dataset in parsed.datasets:
        rows = board[board["dataset"] == dataset]
        assert sorted(parsed.leaderboard_systems[dataset]) == sorted(rows["system"]), dataset
    # every drill-down shows both rankings
    assert parsed.rankings == 2 * len(parsed.details)
    return parsed


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    """A report of the tiny data directory: two official runs and TF-IDF over one of them."""
    from workbench.experiment import Workbench

    root = tmp_path_factory.mktemp("tiny-report")
    data = make_tiny_data(root / "data")
    bench = Workbench(data_dir=data, runs_dir=root / "runs", leaderboard=root / "runs" / "leaderboard.csv",
                      progress=False)
    bench.run_experiment(["dl19"], TINY_SYSTEMS)
    board = read_leaderboard(bench.leaderboard)
    path, views = write_html_report(bench.session, board, root / "report",
                                    named_pairs=[("official-bm25", "official-tasb")], top=5, passages=3)
    return path, board, views


def test_tiny_report_structure(tiny_report):
    path, board, views = tiny_report
    parsed = check_structure(path, board)
    assert parsed.datasets == ["dl19"]
    # the baseline pair from the leaderboard and the one named
    assert ("official-bm25", "official-bm25+tfidf") in parsed.pairs
    assert ("official-bm25", "official-tasb") in parsed.pairs
    named = next(p for p in views[0].pairs if p.b == "official-tasb")
    assert named.origin == "named"
    # tasb ranks p1 (grade 3) first for query 1 where BM25 put p3 (unjudged for query 1) first
    gain = next(q for q in named.gains if q.qid == "1")
    assert gain.a_passages[0].docno == "p3" and gain.a_passages[0].grade is None
    assert gain.b_passages[0].docno == "p1" and gain.b_passages[0].grade == 3
    assert gain.b_passages[0].other_rank == 2  # where BM25 ranked it
    assert gain.type in ("qa", "exploratory") and gain.reason
    text = " ".join(parsed.text)
    assert "unjudged" in text and "grade 3" in text and "capital of france" in text
    assert gain.anchor in parsed.details


# what real runs write into the leaderboard's text columns: far too long for a table cell
MINI_BM25 = "mini-collection BM25 (not comparable with full-collection figures)"
MINI_DENSE = ("mini-collection dense retrieval (exact inner product over every passage, encoder shared with the "
              "dense reranker; not comparable with full-collection figures)")


@pytest.fixture(scope="module")
def long_text_report(tiny_report, tmp_path_factory):
    """The tiny board with the long candidates and comparability texts of mini-collection first
    stages and of a model fine-tuned here, as the report must show them without wrapping rows."""
    from workbench.experiment import Workbench
    from workbench.rerankers.finetuned import CROSS_YEAR

    path, board, _ = tiny_report
    root = path.parent.parent
    bench = Workbench(data_dir=root / "data", runs_dir=root / "runs", leaderboard=root / "runs" / "leaderboard.csv",
                      progress=False)
    board = board.copy()
    board["candidates"] = board["candidates"].astype(object)
    board["comparability"] = board["comparability"].astype(object) if "comparability" in board else ""
    board.loc[board["system"] == "official-bm25+tfidf", ["candidates", "comparability"]] = [MINI_BM25, CROSS_YEAR]
    board.loc[board["system"] == "official-tasb", "candidates"] = MINI_DENSE
    out, views = write_html_report(bench.session, board, tmp_path_factory.mktemp("long-text-report"),
                                   named_pairs=[("official-bm25", "official-tasb")], top=5, passages=3)
    return out, board, views


def test_long_texts_go_to_the_legend(long_text_report):
    """A long text shows as a short label and a numbered key linking to the legend under the
    table, which gives the full text once; the cell's tooltip and sort key are the full text."""
    from workbench.rerankers.finetuned import CROSS_YEAR

    path, board, views = long_text_report
    anchor = views[0].anchor
    check_structure(path, board)  # the keys' links resolve to the legend's notes
    page = path.read_text(encoding="utf-8")
    cells = re.findall(r'<td class="noted" data-sort="([^"]*)" title="([^"]*)">([^<]*) <a class="key" '
                       r'href="#([^"]+)">\[(\d+)\]</a></td>', page)
    assert {(sort, title, label, key) for sort, title, label, _, key in cells} == {
        (MINI_BM25, MINI_BM25, "mini-collection BM25", "1"), (MINI_DENSE, MINI_DENSE, "mini-collection dense retrieval", "2")}
    assert len(cells) == ((board["candidates"] == MINI_BM25) | (board["candidates"] == MINI_DENSE)).sum()
    legend = re.search(rf'<ul class="legend" id="{anchor}-legend".*?</ul>', page, re.S).group(0)
    notes = re.findall(r'<li id="([^"]+)"><span class="key">\[(\d+)\]</span> ([^<]*) <span class="muted">'
                       r'\(([^)]*)\)</span></li>', legend)
    assert notes == [(f"{anchor}-note-1", "1", MINI_BM25, "candidates"), (f"{anchor}-note-2", "2", MINI_DENSE, "candidates")]
    assert {href for *_, href, _ in cells} == {f"{anchor}-note-1", f"{anchor}-note-2"}
    # the comparability behind a system's dagger: in the legend and in the system's tooltip
    assert f'<li><span class="key">†</span> official-bm25+tfidf: {CROSS_YEAR}</li>' in legend
    assert page.count(f'title="{CROSS_YEAR}"') == (board["system"] == "official-bm25+tfidf").sum()
    # short texts stay as they are, with no key
    assert "<td class=\"\" data-sort=\"official full-collection run\">official full-collection run</td>" in page


def test_report_refuses_a_pair_not_on_the_board(tiny_report, tmp_path):
    from workbench.experiment import Workbench

    _, board, views = tiny_report
    bench = Workbench(data_dir=make_tiny_data(tmp_path / "data"), runs_dir=tmp_path / "runs", progress=False)
    with pytest.raises(WorkbenchError, match="not on the leaderboard: official-ada2"):
        write_html_report(bench.session, board, tmp_path / "out", named_pairs=[("official-bm25", "official-ada2")])
    assert not (tmp_path / "out" / "index.html").exists()


def test_model_card_and_curves_render(tmp_path, monkeypatch):
    """A model trained here: its README.md rendered (raw HTML escaped) and training.png inline."""
    from workbench.report.html import render_html
    from workbench.report.inspection import trained_model_names, trained_models

    model = tmp_path / "models" / "mine"
    model.mkdir(parents=True)
    (model / "README.md").write_text("# mine\n\n| fold | val |\n|---|---|\n| dl19 | 0.5 |\n\n<script>x()</script>\n")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 1))
    figure.subplots().plot([1, 2], [3, 4])
    figure.savefig(model / "training.png")
    monkeypatch.setenv("WORKBENCH_MODELS", str(tmp_path / "models"))
    assert trained_model_names("official-bm25+finetuned:mine,batch_size=4") == [("mine", None)]
    assert trained_model_names("dense-mini:encoder=finetuned:x,root=/m") == [("x", "/m")]
    models = trained_models(["official-bm25+finetuned:mine", "rrf[official-bm25|official-bm25+finetuned:mine]"])
    assert len(models) == 1 and len(models[0].systems) == 2
    page = render_html([], models, {}, {"generated": "now", "source": "x", "workbench": "0", "ranx": "0",
                                        "metric": "ndcg@10", "top": 1, "passages": 1, "data_dir": "d"})
    assert "<td>dl19</td>" in page and "&lt;script&gt;x()&lt;/script&gt;" in page
    assert 'alt="training curves of mine" src="data:image/png;base64,' in page


def test_cli_report_writes_html(tiny_report, capsys, tmp_path):
    from workbench.cli import main

    path, board, _ = tiny_report
    data = tmp_path / "data"
    make_tiny_data(data)
    code = main(["report", "--leaderboard", str(path.parent.parent / "runs" / "leaderboard.csv"), "--out",
                 str(tmp_path / "out"), "--data-dir", str(data), "--pair", "official-tasb", "official-bm25",
                 "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "html\t" in out and "MB" in out
    parsed = check_structure(tmp_path / "out" / "index.html", board)
    assert ("official-tasb", "official-bm25") in parsed.pairs
    for name in ("leaderboard-sliced.csv", "summary.md", "slices.png"):
        assert (tmp_path / "out" / name).is_file()


# -- real data: a model trained here on the board, and the browser

@pytest.fixture(scope="module")
def real_report(data_dir, session_cache, tmp_path_factory):
    """DL19: official BM25, TF-IDF over it, and a tiny model fine-tuned here (smoke config) over it."""
    import os

    from helpers_models import write_tiny_bert
    from workbench.experiment import Workbench
    from workbench.train.config import TrainConfig
    from workbench.train.run import train_config

    root = tmp_path_factory.mktemp("real-report")
    words = "capital france paris city eggs boil minutes water river town cook hot cold".split()
    backbone = write_tiny_bert(root / "tiny-bert", words, head="base", characters=True)
    smoke = TrainConfig.from_file(Path(__file__).resolve().parent.parent / "configs" / "smoke.toml")
    smoke.backbone = str(backbone)
    train_config(smoke, data_dir, root / "models", progress=False)
    previous = os.environ.get("WORKBENCH_MODELS")
    os.environ["WORKBENCH_MODELS"] = str(root / "models")
    try:
        bench = Workbench(data_dir=data_dir, runs_dir=root / "runs", leaderboard=root / "runs" / "leaderboard.csv",
                          progress=False, rerank_depth=20)
        systems = ["official-bm25", "official-bm25+tfidf", "official-bm25+finetuned:smoke"]
        bench.run_experiment(["dl19"], systems)
        board = read_leaderboard(bench.leaderboard)
        path, views = write_html_report(bench.session, board, root / "report", top=5, passages=5)
    finally:
        if previous is None:
            os.environ.pop("WORKBENCH_MODELS", None)
        else:
            os.environ["WORKBENCH_MODELS"] = previous
    return path, board, views


@pytest.mark.slow
def test_real_report_structure_and_trained_model(real_report):
    path, board, views = real_report
    parsed = check_structure(path, board)
    assert set(parsed.pairs) == {("official-bm25", "official-bm25+tfidf"), ("official-bm25", "official-bm25+finetuned:smoke")}
    page = path.read_text(encoding="utf-8")
    assert "NOT comparable with models trained on MS MARCO train" in page  # the model card
    assert 'alt="training curves of smoke"' in page
    tfidf = next(p for p in views[0].pairs if p.b == "official-bm25+tfidf")
    assert tfidf.significance["mrr@10"].startswith("-")  # the leaderboard's corrected delta
    assert sum(s["n"] for s in tfidf.per_slice if s["slice"] != "all") == 43
    # each query carries the rule that labelled it, as the committed label file says
    labels = {line.split("\t")[0]: line.split("\t")[2] for line in
              (Path(__file__).resolve().parent.parent / "qrels" / "dl19.query-types.tsv").read_text().splitlines()[1:]}
    for query in tfidf.gains + tfidf.losses:
        assert query.reason == labels[query.qid]
        assert abs(query.delta - (query.values["ndcg@10"][1] - query.values["ndcg@10"][0])) < 1e-9
    assert [q.delta for q in tfidf.losses] == sorted(q.delta for q in tfidf.losses)


def browser_or_skip():
    reason = why_no_browser()
    if reason:
        pytest.skip(f"no browser for the rendered-DOM test: {reason}")


def exercise_in_browser(path: Path, board, dataset: str):
    """Open the report in headless Chromium: leaderboard rows, sorting, slice filter, a
    drill-down opened by clicking, no console errors or network requests."""
    from workbench.report.browser import open_page

    rows = board[board["dataset"] == dataset]
    with open_page(path, width=1366) as (page, errors):
        section = page.locator(f"section.dataset[data-dataset='{dataset}']")
        table = section.locator("table.leaderboard")
        assert table.locator("tbody tr").count() == len(rows)
        check_one_line_rows(page, table, 1366)
        shown_systems = [text.strip().removesuffix(" †") for text in table.locator("tbody td.system").all_inner_texts()]
        assert sorted(shown_systems) == sorted(rows["system"])
        # sort by MRR@10 descending (two clicks) and read the visible order back
        header = table.locator("thead th[data-key='mrr@10']")
        header.click()
        header.click()
        assert header.get_attribute("aria-sort") == "descending"
        keys = table.locator("tbody td:nth-child(4)").evaluate_all("cells => cells.map(c => c.dataset.sort)")
        values = [float(v) for v in keys if v != ""]  # an empty slice has no value: sorted last
        assert values == sorted(values, reverse=True) and keys[:len(values)] == [k for k in keys if k != ""]
        assert len(keys) == len(rows)
        # filter to one slice
        page.select_option(f"select[data-table='{table.get_attribute('id')}']", "qa")
        visible = table.locator("tbody tr:not([hidden])")
        assert visible.count() == (rows["slice"] == "qa").sum()
        assert set(visible.evaluate_all("rows => rows.map(r => r.dataset.slice)")) == {"qa"}
        page.select_option(f"select[data-table='{table.get_attribute('id')}']", "")
        assert visible.count() == len(rows)
        # a drill-down opens by clicking its summary and shows both rankings with passage text
        first = section.locator("details.query").first
        assert first.get_attribute("open") is None
        assert not first.locator("ol.ranking").first.is_visible()
        first.locator("summary").click()
        assert first.get_attribute("open") is not None
        rankings = first.locator("ol.ranking")
        assert rankings.count() == 2 and rankings.nth(0).is_visible() and rankings.nth(1).is_visible()
        assert len(rankings.nth(1).locator("li .text").first.inner_text()) > 10
        # a system's link leads to its pair
        link = table.locator("tbody td.system a").first
        target = link.get_attribute("href")[1:]
        link.click()
        assert page.evaluate("() => location.hash.slice(1)") == target
        assert not errors, errors


def check_one_line_rows(page, table, width: int):
    """Every leaderboard row one line high at this window width, the CI shown small beside its
    value (and in the tooltip), and the page no wider than the window: the table scrolls sideways
    inside its own box."""
    heights = table.locator("tbody tr").evaluate_all("rows => rows.map(r => r.offsetHeight)")
    assert heights and max(heights) <= 30, (width, heights)
    cell = table.locator("tbody tr td.num:nth-child(4)").first  # the first metric of the first row
    assert re.fullmatch(r"\d\.\d{4} \[\d\.\d{3}, \d\.\d{3}\]", cell.inner_text().strip()), cell.inner_text()
    assert cell.locator(".ci").is_visible()
    assert re.fullmatch(r"\S+ 95% CI \[\d\.\d{3}, \d\.\d{3}\]", cell.get_attribute("title"))
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width


def test_tiny_report_in_chromium(tiny_report):
    browser_or_skip()
    path, board, _ = tiny_report
    exercise_in_browser(path, board, "dl19")


def test_long_texts_in_chromium(long_text_report):
    """With the long texts of real runs, rows stay one line at 1366 and 1440 px; a key leads to
    its note; sorting, the slice filter and the drill-downs work as on any report."""
    browser_or_skip()
    from workbench.report.browser import open_page

    path, board, _ = long_text_report
    exercise_in_browser(path, board, "dl19")
    with open_page(path, width=1440) as (page, errors):
        table = page.locator("table.leaderboard")
        check_one_line_rows(page, table, 1440)
        key = table.locator("tbody td.noted a.key").first
        note = key.get_attribute("href")[1:]
        assert key.locator("xpath=..").get_attribute("title") == page.locator(f"li[id='{note}']").inner_text().split(
            "] ", 1)[1].rsplit(" (", 1)[0]
        key.click()
        assert page.evaluate("() => location.hash.slice(1)") == note
        assert page.locator(f"li[id='{note}']").is_visible()
        # sorting the candidates column sorts by the full text
        keys = table.locator("thead th").evaluate_all("cells => cells.map(c => c.dataset.key)")
        column = keys.index("candidates")  # the dataset's own metrics decide the columns (DL adds Judged@10)
        header = table.locator("thead th[data-key='candidates']")
        header.click()
        shown = table.locator(f"tbody td:nth-child({column + 1})").evaluate_all("cells => cells.map(c => c.dataset.sort)")
        assert shown == sorted(board["candidates"])
        assert not errors, errors


@pytest.mark.slow
def test_real_report_in_chromium(real_report):
    browser_or_skip()
    path, board, _ = real_report
    exercise_in_browser(path, board, "dl19")


def test_cli_screenshots(tiny_report, capsys, tmp_path):
    """--screenshots: the leaderboard and the drill-down of the query where the baseline and the
    best reranker disagree most, as PNG files."""
    browser_or_skip()
    from workbench.cli import main

    path, _, _ = tiny_report
    code = main(["report", "--leaderboard", str(path.parent.parent / "runs" / "leaderboard.csv"), "--out",
                 str(tmp_path / "out"), "--data-dir", str(make_tiny_data(tmp_path / "data")), "--quiet",
                 "--screenshots", str(tmp_path / "shots")])
    out = capsys.readouterr().out
    assert code == 0
    assert "drill-down\tdl19: official-bm25+tfidf vs official-bm25, query " in out
    for name in ("leaderboard-dl19.png", "drilldown-dl19.png"):
        assert (tmp_path / "shots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
