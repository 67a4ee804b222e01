"""Risk-sensitive measures: URisk, TRisk (Dinçer, Santos, Macdonald and Ounis, 2014) and GeoRisk
(Dinçer, Macdonald and Ounis, 2016), each checked against a computation written here from the
papers' formulas (plain loops, math.erf for the normal CDF, the t distribution's CDF through the
regularised incomplete beta function), and their columns on the leaderboard, in the terminal table,
the report and GeoRisk's recomputation over every system on the board."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.special import betainc

from workbench.core.errors import WorkbenchError
from workbench.core.measures import is_metric_column
from workbench.evaluation.risk import (GAIN, RISK_ALPHAS, RISKIER, georisk, georisk_columns, risk_metrics, trisk,
                                       trisk_verdict, urisk, zrisk)
from workbench.evaluation.slices import sliced_table

TOPICS = ["q1", "q2", "q3", "q4", "q5", "q6"]
#: three systems over six topics, hand-chosen: q3 is a hard topic (everyone near 0), q4 an easy one
SCORES = {
    "base": [0.2, 0.5, 0.0, 0.8, 0.4, 0.6],
    "a": [0.5, 0.3, 0.1, 0.8, 0.9, 0.2],
    "c": [0.3, 0.6, 0.0, 0.7, 0.5, 0.7],
}


# --- independent computations, from the papers' definitions -------------------------------------

def reference_urisk(treatment, baseline, alpha):
    """(1/c) [sum over wins of d_i + (1 + alpha) sum over losses of d_i]."""
    wins = losses = 0.0
    for t, b in zip(treatment, baseline):
        d = t - b
        if d > 0:
            wins += d
        elif d < 0:
            losses += d
    return (wins + (1 + alpha) * losses) / len(treatment)


def reference_trisk(treatment, baseline, alpha):
    """URisk / (s_r / sqrt(c)), s_r the sample sd of r_i = d_i (win) or (1 + alpha) d_i (loss); p
    two-sided from Student's t CDF with c - 1 df: P(|T| >= t) = I_{df / (df + t^2)}(df / 2, 1 / 2)."""
    r = []
    for t, b in zip(treatment, baseline):
        d = t - b
        r.append(d if d >= 0 else (1 + alpha) * d)
    c = len(r)
    mean = sum(r) / c
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / (c - 1))
    t_value = mean / (sd / math.sqrt(c))
    df = c - 1
    return t_value, float(betainc(df / 2, 0.5, df / (df + t_value ** 2)))


def normal_cdf(x):
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def reference_georisk(rows, alpha):
    """GeoRisk_i = sqrt(S_i / c * Phi(ZRisk_i / c)), ZRisk_i = sum of z_ij > 0 + (1 + alpha) sum of
    z_ij < 0, z_ij = (x_ij - e_ij) / sqrt(e_ij), e_ij = S_i T_j / N; a cell with e_ij = 0 adds 0."""
    systems = list(rows)
    c = len(rows[systems[0]])
    s = {i: sum(rows[i]) for i in systems}
    t = [sum(rows[i][j] for i in systems) for j in range(c)]
    n = sum(s.values())
    result = {}
    for i in systems:
        z_risk = 0.0
        for j in range(c):
            e = s[i] * t[j] / n if n else 0.0
            if e == 0:
                continue
            z = (rows[i][j] - e) / math.sqrt(e)
            z_risk += z if z > 0 else (1 + alpha) * z
        result[i] = math.sqrt(s[i] / c * normal_cdf(z_risk / c))
    return result


def matrix(rows):
    return pd.DataFrame(rows, index=TOPICS).T


# --- the measures --------------------------------------------------------------------------------

def test_urisk_by_hand_and_alpha_zero_is_the_mean_delta():
    a, base = SCORES["a"], SCORES["base"]
    # deltas 0.3, -0.2, 0.1, 0, 0.5, -0.4: wins 0.9, losses -0.6 over 6 topics
    expected = {0: 0.05, 1: -0.05, 2: -0.15, 5: -0.45}
    for alpha in RISK_ALPHAS:
        assert urisk(a, base, alpha) == pytest.approx(expected[alpha])
        assert urisk(a, base, alpha) == pytest.approx(reference_urisk(a, base, alpha))
    assert urisk(a, base, 0) == pytest.approx(np.mean(np.subtract(a, base)))


@pytest.mark.parametrize("system", ["a", "c"])
@pytest.mark.parametrize("alpha", RISK_ALPHAS)
def test_trisk_equals_the_formula(system, alpha):
    treatment, base = SCORES[system], SCORES["base"]
    result = trisk(treatment, base, alpha)
    t_value, p_value = reference_trisk(treatment, base, alpha)
    assert result.urisk == pytest.approx(reference_urisk(treatment, base, alpha))
    assert result.trisk == pytest.approx(t_value)
    assert result.p_value == pytest.approx(p_value)
    assert p_value > 0.05 and result.verdict == ""  # six topics with mixed wins and losses: not significant


def reference_verdict(t_value, p_value):
    """Significant at 0.05 two-sided (Student t, c - 1 df), in TRisk's direction."""
    if p_value > 0.05:
        return ""
    return RISKIER if t_value < 0 else GAIN


def test_trisk_verdict_follows_the_p_value_not_abs_t_over_2():
    # three queries, deltas 0.1, 0.2, 0.3: TRisk = 0.2 / (0.1 / sqrt 3) = 3.46, yet p = 0.074 with 2 df
    base = [0.2, 0.3, 0.4]
    small = trisk([0.3, 0.5, 0.7], base, 0)
    t_value, p_value = reference_trisk([0.3, 0.5, 0.7], base, 0)
    assert small.trisk == pytest.approx(t_value) and small.trisk > 2
    assert small.p_value == pytest.approx(p_value) and 0.05 < small.p_value < 0.1
    assert small.verdict == ""
    lost = trisk(base, [0.3, 0.5, 0.7], 0)  # the mirror image: TRisk -3.46, no verdict either
    assert lost.trisk < -2 and lost.verdict == ""
    # the same |t| = 2 is p = 0.18 at 3 queries, 0.077 at 10: the paper's rule is for many queries
    for c, expected in ((3, 0.1835), (10, 0.0766)):
        df = c - 1
        assert float(betainc(df / 2, 0.5, df / (df + 4.0))) == pytest.approx(expected, abs=1e-4)
        assert trisk_verdict(2.0, expected) == "" and trisk_verdict(-2.0, expected) == ""
    # like the committed board's dl19+dl20 exploratory row: 24 queries, |t| > 2 at p 0.052, no verdict
    p_24 = float(betainc(23 / 2, 0.5, 23 / (23 + 2.05 ** 2)))
    assert p_24 == pytest.approx(0.052, abs=1e-3) and trisk_verdict(-2.05, p_24) == ""
    assert trisk_verdict(-2.05, 0.049) == RISKIER and trisk_verdict(2.05, 0.05) == GAIN
    assert trisk_verdict(float("nan"), float("nan")) == "" and trisk_verdict(0.0, 0.01) == ""
    # a tight gain over three queries is significant: TRisk = 0.11 / (0.01 / sqrt 3) = 19, p = 0.003
    tight = trisk([0.3, 0.41, 0.52], base, 2)
    t_value, p_value = reference_trisk([0.3, 0.41, 0.52], base, 2)
    assert tight.trisk == pytest.approx(t_value) == pytest.approx(19.05, abs=0.01)
    assert tight.p_value == pytest.approx(p_value) and p_value < 0.05 and tight.verdict == GAIN


def test_trisk_verdicts_follow_the_p_value():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.8, 60)
    better = base + rng.uniform(0.05, 0.15, 60)  # wins nearly everywhere
    worse = base - rng.uniform(0.0, 0.1, 60) + np.where(np.arange(60) % 5 == 0, 0.05, 0.0)  # loses most
    assert trisk(better, base, 5).verdict == GAIN and trisk(better, base, 5).trisk > 2
    assert trisk(worse, base, 1).verdict == RISKIER and trisk(worse, base, 1).trisk < -2
    for treatment in (better, worse):
        for alpha in RISK_ALPHAS:
            result = trisk(treatment, base, alpha)
            assert result.verdict == reference_verdict(*reference_trisk(treatment, base, alpha))
    # a small mean gain with large losses: risk-neutral it is no loss, weighed 1 + 5 times it is riskier
    mixed = base + np.where(np.arange(60) % 3 == 0, -0.12, 0.07)
    assert trisk(mixed, base, 0).verdict != RISKIER and trisk(mixed, base, 5).verdict == RISKIER


def test_trisk_edge_cases():
    assert math.isnan(trisk([0.5], [0.1], 1).trisk)  # one query: no standard error
    same = trisk([0.3, 0.4], [0.3, 0.4], 2)
    assert (same.urisk, same.trisk, same.p_value, same.verdict) == (0.0, 0.0, 1.0, "")
    constant = trisk([0.5, 0.6, 0.7], [0.4, 0.5, 0.6], 2)  # the same gain everywhere: no spread
    assert constant.trisk == math.inf and constant.p_value == 0.0 and constant.verdict == GAIN


def test_trisk_deltas_equal_up_to_rounding_have_no_spread():
    # 0.3 - 0.2 and 0.7 - 0.6 differ in the last bit: scipy's t would be ~7e15 with p ~ 1e-48
    treatment, base = [0.3, 0.7, 0.9, 0.4], [0.2, 0.6, 0.8, 0.3]
    deltas = np.subtract(treatment, base)
    assert 0 < np.ptp(deltas) < 1e-15
    gain = trisk(treatment, base, 2)
    assert gain.trisk == math.inf and gain.p_value == 0.0 and gain.verdict == GAIN
    assert gain.urisk == pytest.approx(0.1)
    loss = trisk(base, treatment, 2)  # the same loss everywhere, weighed 3 times
    assert loss.trisk == -math.inf and loss.p_value == 0.0 and loss.verdict == RISKIER
    assert loss.urisk == pytest.approx(-0.3)
    # 0.1 + 0.2 - 0.3 = 5.6e-17: rounding around no difference is no difference
    tie = trisk([0.1 + 0.2, 0.7, 0.6], [0.3, 0.7, 0.6], 5)
    assert (tie.trisk, tie.p_value, tie.verdict) == (0.0, 1.0, "")
    # a real spread, however small against the values, is still tested
    spread = trisk([0.3, 0.7, 0.9, 0.4], [0.2, 0.6, 0.8, 0.3 + 1e-6], 0)
    assert math.isfinite(spread.trisk)
    with pytest.raises(WorkbenchError, match="pair them"):
        urisk([0.1, 0.2], [0.1], 0)


@pytest.mark.parametrize("alpha", RISK_ALPHAS)
def test_georisk_equals_the_formula(alpha):
    computed = georisk(matrix(SCORES), alpha)
    expected = reference_georisk(SCORES, alpha)
    for system in SCORES:
        assert computed[system] == pytest.approx(expected[system])


def test_zrisk_is_the_sum_of_standardised_residuals_and_georisk_ranks_by_it():
    x = matrix(SCORES)
    # risk-neutral ZRisk sums (x - e) / sqrt(e): a system that scores above expectation where others do
    # scores positive; weighing losses more can only lower it
    assert all(zrisk(x, 5) <= zrisk(x, 0) + 1e-12)
    assert georisk(x, 5)["a"] < georisk(x, 0)["a"]


def test_georisk_zero_topics_and_systems_and_a_lone_system():
    rows = {**SCORES, "zero": [0.0] * 6}
    rows = {name: values[:2] + [0.0] + values[3:] for name, values in rows.items()}  # q3: nobody scores
    computed = georisk(matrix(rows), 2)
    expected = reference_georisk(rows, 2)
    for system in rows:
        assert computed[system] == pytest.approx(expected[system])
    assert computed["zero"] == 0.0
    lone = georisk(matrix({"a": SCORES["a"]}), 5)["a"]  # observed = expected everywhere: Phi(0) = 1/2
    assert lone == pytest.approx(math.sqrt(np.mean(SCORES["a"]) * 0.5))
    with pytest.raises(WorkbenchError, match="non-negative"):
        georisk(matrix({"a": [-0.1] + SCORES["a"][1:]}), 0)
    assert georisk(pd.DataFrame(index=["a"], columns=[], dtype=float), 0).isna().all()


def test_georisk_columns_score_missing_queries_zero_and_take_a_subset():
    tables = {name: pd.DataFrame({"ndcg@5": values}, index=pd.Index(TOPICS, name="qid"))
              for name, values in SCORES.items()}
    tables["c"] = tables["c"].drop("q6")  # a judged query missing from a run scores 0
    frame = georisk_columns(tables, TOPICS[:5] + ["q6"], ["ndcg@5"], alphas=(2,))
    expected = reference_georisk({**SCORES, "c": SCORES["c"][:5] + [0.0]}, 2)
    assert list(frame.columns) == ["georisk_a2_ndcg@5"]
    assert frame["georisk_a2_ndcg@5"].to_dict() == pytest.approx(expected)
    subset = georisk_columns(tables, TOPICS[:3], ["ndcg@5"], alphas=(0,))
    expected = reference_georisk({name: values[:3] for name, values in SCORES.items()}, 0)
    assert subset["georisk_a0_ndcg@5"].to_dict() == pytest.approx(expected)


def test_risk_metrics_are_the_headline_ones():
    assert risk_metrics(["mrr@10", "ndcg@5", "ndcg@10", "map"]) == ["mrr@10", "ndcg@5"]
    assert risk_metrics(["map", "P@30", "ndcg@10"]) == ["map", "P@30"]  # CACM: its first two


# --- on the leaderboard ---------------------------------------------------------------------------

def _per_query():
    index = pd.Index(TOPICS, name="qid")
    return {name: pd.DataFrame({"mrr@10": values, "ndcg@5": values[::-1], "map": values}, index=index)
            for name, values in SCORES.items()}


LABELS = pd.DataFrame({"qid": TOPICS, "label": ["qa", "qa", "qa", "exploratory", "exploratory", "qa"]})


def test_sliced_table_has_urisk_and_trisk_columns_for_the_headline_metrics():
    per_query = _per_query()
    table = sliced_table(per_query, LABELS, {"base": None, "a": "base", "c": "base"}, ["mrr@10", "ndcg@5", "map"],
                         slices=("all", "qa"), permutations=200)
    for metric in ("mrr@10", "ndcg@5"):
        for alpha in RISK_ALPHAS:
            for kind in ("urisk", "trisk", "trisk_p", "trisk_sig"):
                assert f"{kind}_a{alpha}_{metric}" in table.columns
    assert not any(column.endswith("_map") and column.startswith(("urisk", "trisk")) for column in table.columns)
    assert not any(column.startswith("p_") and "risk" in column for column in table.columns)
    row = table[(table["system"] == "a") & (table["slice"] == "qa")].iloc[0]
    qa = [i for i, label in enumerate(LABELS["label"]) if label == "qa"]
    a, base = [SCORES["a"][i] for i in qa], [SCORES["base"][i] for i in qa]
    assert row["urisk_a2_mrr@10"] == pytest.approx(reference_urisk(a, base, 2))
    assert row["trisk_a2_mrr@10"] == pytest.approx(reference_trisk(a, base, 2)[0])
    assert row["trisk_p_a2_mrr@10"] == pytest.approx(reference_trisk(a, base, 2)[1])
    whole = table[(table["system"] == "c") & (table["slice"] == "all")].iloc[0]
    assert whole["urisk_a0_ndcg@5"] == pytest.approx(whole["delta_ndcg@5"])  # alpha 0: the mean delta
    assert table.loc[table["system"] == "base", "urisk_a0_mrr@10"].isna().all()  # no baseline, no risk
    for column in table.columns:
        if column.startswith(("urisk_", "trisk_", "georisk_")):
            assert not is_metric_column(column), column
    assert not is_metric_column("georisk_a5_nDCG@10")


def test_upserted_board_keeps_risk_apart_from_corrections_and_shows_it_in_the_terminal(tmp_path):
    from workbench.report.leaderboard import format_table, read_leaderboard, upsert_rows

    table = sliced_table(_per_query(), LABELS, {"base": None, "a": "base", "c": "base"}, ["mrr@10", "ndcg@5"],
                         slices=("all",), permutations=200)
    table["dataset"] = "toy"
    path = tmp_path / "leaderboard.csv"
    board = upsert_rows(table.to_dict("records"), path)
    assert not any(column.startswith("p_adj_") and "risk" in column for column in board.columns)
    again = read_leaderboard(path)
    assert again.loc[again["system"] == "a", "urisk_a2_mrr@10"].iloc[0] == pytest.approx(-0.15, abs=1e-4)
    verdicts = again["trisk_sig_a2_mrr@10"].astype(object)  # all empty here: read back as NaN floats
    again["trisk_sig_a2_mrr@10"] = verdicts.where(again["system"] != "c", RISKIER)  # as a riskier row reads back
    text = format_table(again, ["mrr@10", "ndcg@5"])
    assert "urisk2_mrr@10" in text.splitlines()[0] and "urisk2_ndcg@5" in text.splitlines()[0]
    line_a = next(line for line in text.splitlines() if " a " in line)
    line_c = next(line for line in text.splitlines() if " c " in line)
    assert "-0.1500" in line_a and "▼" not in line_a
    assert "▼" in line_c


def test_upsert_finish_runs_on_the_merged_board(tmp_path):
    from workbench.report.leaderboard import upsert_rows

    path = tmp_path / "leaderboard.csv"
    upsert_rows([{"dataset": "toy", "system": "x", "slice": "all", "mrr@10": 0.5}], path)
    seen = []

    def finish(board):
        seen.append(sorted(board["system"]))
        return board.assign(extra=1.0)

    board = upsert_rows([{"dataset": "toy", "system": "y", "slice": "all", "mrr@10": 0.4}], path, finish=finish)
    assert seen == [["x", "y"]] and (board["extra"] == 1.0).all()
    assert "extra" in pd.read_csv(path).columns


# --- GeoRisk over every system on the board --------------------------------------------------------

class _Store:
    def load(self, dataset, system, run_path=None):
        raise WorkbenchError(f"no stored run of {system!r} on {dataset}")


def _session():
    datasets = {name: SimpleNamespace(metrics=["mrr@10", "ndcg@5", "map"]) for name in ("d1", "d2")}
    return SimpleNamespace(dataset=lambda name: datasets[name], store=_Store())


def _split_tables():
    """d1 holds q1-q3, d2 q4-q6 of the worked example."""
    tables = _per_query()
    return {"d1": {s: t.iloc[:3] for s, t in tables.items()}, "d2": {s: t.iloc[3:] for s, t in tables.items()}}


def _board(systems, datasets=("d1",), pooled=None):
    rows = []
    for dataset in datasets:
        for system in systems:
            for slice_name in ("all", "qa"):
                rows.append({"dataset": dataset, "system": system, "slice": slice_name, "mrr@10": 0.5,
                             "ndcg@5": 0.5, "pooled": pooled if "+" in dataset else None})
    return pd.DataFrame(rows)


@pytest.fixture
def labels(monkeypatch):
    import workbench.experiment.risk_rows as risk_rows

    def load(dataset, override_path=None):
        return LABELS
    monkeypatch.setattr(risk_rows, "load_query_types", load)


def test_add_georisk_over_the_systems_on_the_board_per_slice(labels):
    from workbench.experiment.risk_rows import add_georisk

    known = _split_tables()
    board = add_georisk(_session(), _board(["base", "a"]), known=known)
    x = {s: SCORES[s][:3] for s in ("base", "a")}
    row = board[(board["system"] == "a") & (board["slice"] == "all")].iloc[0]
    assert row["georisk_a2_mrr@10"] == pytest.approx(reference_georisk(x, 2)["a"])
    assert row["georisk_a0_ndcg@5"] == pytest.approx(reference_georisk(
        {s: SCORES[s][::-1][:3] for s in ("base", "a")}, 0)["a"])
    assert "georisk_a2_map" not in board.columns
    # adding a system changes everyone's GeoRisk
    more = add_georisk(_session(), _board(["base", "a", "c"]), known=known)
    changed = more[(more["system"] == "a") & (more["slice"] == "all")].iloc[0]["georisk_a2_mrr@10"]
    assert changed == pytest.approx(reference_georisk({s: SCORES[s][:3] for s in SCORES}, 2)["a"])
    assert changed != pytest.approx(row["georisk_a2_mrr@10"])
    # the qa slice of d1: q1-q3 are all qa
    qa = more[(more["system"] == "c") & (more["slice"] == "qa")].iloc[0]
    assert qa["georisk_a5_mrr@10"] == pytest.approx(reference_georisk({s: SCORES[s][:3] for s in SCORES}, 5)["c"])


def test_add_georisk_pools_the_members_queries(labels):
    from workbench.experiment.risk_rows import add_georisk

    board = pd.concat([_board(list(SCORES), ("d1", "d2")), _board(list(SCORES), ("d1+d2",), pooled="d1+d2")],
                      ignore_index=True)
    board = add_georisk(_session(), board, datasets=["d1+d2"], known=_split_tables())
    pooled = board[(board["dataset"] == "d1+d2") & (board["slice"] == "all")].set_index("system")
    expected = reference_georisk(SCORES, 1)
    assert pooled["georisk_a1_mrr@10"].to_dict() == pytest.approx(expected)
    exploratory = [i for i, label in enumerate(LABELS["label"]) if label != "qa"]
    qa = board[(board["dataset"] == "d1+d2") & (board["slice"] == "qa")].set_index("system")
    expected_qa = reference_georisk({s: [v for i, v in enumerate(SCORES[s]) if i not in exploratory]
                                     for s in SCORES}, 1)
    assert qa["georisk_a1_mrr@10"].to_dict() == pytest.approx(expected_qa)
    assert board.loc[board["dataset"] == "d1", "georisk_a1_mrr@10"].isna().all()  # not asked for


def test_add_georisk_leaves_a_dataset_empty_when_a_run_is_gone(labels, caplog):
    from workbench.experiment.risk_rows import add_georisk

    known = _split_tables()
    del known["d1"]["c"]
    board = add_georisk(_session(), _board(list(SCORES)), known=known)
    assert board["georisk_a0_mrr@10"].isna().all()
    assert "GeoRisk on d1 left empty" in caplog.text


class _StoredRuns:
    """Stored runs whose manifests give each system's sha256 (``sums``: by system, or by (dataset,
    system) where one dataset's run differs); loads are recorded."""

    def __init__(self, sums):
        self.sums, self.loaded = sums, []

    def load(self, dataset, system, run_path=None):
        self.loaded.append((dataset, system))
        sha = self.sums.get((dataset, system), self.sums[system])
        return SimpleNamespace(run=(dataset, system), manifest={"sha256": sha}, path=f"runs/{dataset}/{system}.trec")


def _stored_session(monkeypatch, sums):
    import workbench.experiment.risk_rows as risk_rows

    tables = _split_tables()
    evaluated = []

    def evaluate(run, run_sha, qrels, qrels_sha, level, metrics):
        evaluated.append(run)
        return SimpleNamespace(per_query=tables[run[0]][run[1]])
    monkeypatch.setattr(risk_rows, "evaluate_cached", evaluate)
    datasets = {name: SimpleNamespace(metrics=["mrr@10", "ndcg@5", "map"], qrels=None, qrels_sha256="q",
                                      relevance_level=1) for name in ("d1", "d2")}
    return SimpleNamespace(dataset=lambda name: datasets[name], store=_StoredRuns(sums)), evaluated


def test_add_georisk_reads_other_systems_stored_runs_only_when_their_fingerprint_matches(labels, monkeypatch,
                                                                                         caplog):
    from workbench.experiment.risk_rows import add_georisk

    sums = {system: f"{i}" * 64 for i, system in enumerate(SCORES)}
    board = _board(list(SCORES), ("d1", "d2")).assign(fingerprint=lambda b: b["system"].map(sums))
    session, evaluated = _stored_session(monkeypatch, sums)
    known = {"d1": {"a": _split_tables()["d1"]["a"]}}  # this invocation's own table; the rest are stored
    scored = add_georisk(session, board, known=known)
    row = scored[(scored["dataset"] == "d1") & (scored["system"] == "c") & (scored["slice"] == "all")].iloc[0]
    assert row["georisk_a2_mrr@10"] == pytest.approx(reference_georisk({s: v[:3] for s, v in SCORES.items()}, 2)["c"])
    assert ("d1", "a") not in evaluated and ("d1", "c") in evaluated
    # c's run on d1 was replaced after its row was computed: d1's GeoRisk is left empty, d2's is not
    session.store.sums = {**sums, ("d1", "c"): "f" * 64}
    evaluated.clear()
    caplog.clear()
    board.loc[:, "georisk_a2_mrr@10"] = 0.5  # stale values from an earlier board do not survive
    mixed = add_georisk(session, board, known=known)
    geo = [column for column in mixed.columns if column.startswith("georisk_")]
    assert mixed.loc[mixed["dataset"] == "d1", geo].isna().all().all()
    d2 = mixed[(mixed["dataset"] == "d2") & (mixed["system"] == "c") & (mixed["slice"] == "all")].iloc[0]
    assert d2["georisk_a2_mrr@10"] == pytest.approx(reference_georisk({s: v[3:] for s, v in SCORES.items()}, 2)["c"])
    assert ("d1", "c") not in evaluated  # the mismatched run is never evaluated
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "GeoRisk on d1 left empty" in warnings[0] and "not the one its row" in warnings[0]


def test_add_georisk_checks_each_pooled_members_fingerprint(labels, monkeypatch, caplog):
    from workbench.experiment.risk_rows import add_georisk

    sums = {system: f"{i}" * 64 for i, system in enumerate(SCORES)}
    board = _board(list(SCORES), ("d1+d2",), pooled="d1+d2")
    board["fingerprint"] = board["system"].map(lambda s: f"{sums[s]};{sums[s]}")
    session, _ = _stored_session(monkeypatch, sums)
    pooled = add_georisk(session, board)
    assert pooled[pooled["slice"] == "all"].set_index("system")["georisk_a1_mrr@10"].to_dict() == pytest.approx(
        reference_georisk(SCORES, 1))
    board.loc[board["system"] == "base", "fingerprint"] = f"{sums['base']};{'e' * 64}"  # its d2 run is another
    caplog.clear()
    assert add_georisk(session, board)["georisk_a1_mrr@10"].isna().all()
    assert [r.levelname for r in caplog.records].count("WARNING") == 1


def test_a_failing_dataset_lookup_leaves_georisk_empty_and_the_board_written(labels, tmp_path, caplog):
    from workbench.experiment.risk_rows import add_georisk
    from workbench.report.leaderboard import read_leaderboard, upsert_rows

    def dataset(name):
        raise WorkbenchError(f"unknown dataset {name!r}")
    session = SimpleNamespace(dataset=dataset, store=_Store())
    path = tmp_path / "leaderboard.csv"
    rows = _board(["base", "a"]).to_dict("records")
    board = upsert_rows(rows, path, finish=lambda merged: add_georisk(session, merged, ["d1"], _split_tables()))
    assert len(board) == len(rows) and len(read_leaderboard(path)) == len(rows)
    assert "GeoRisk on d1 left empty: unknown dataset 'd1'" in caplog.text


# --- in the report ------------------------------------------------------------------------------------

def test_report_risk_section_shows_every_alpha_the_verdict_and_georisk(labels):
    from workbench.experiment.risk_rows import add_georisk
    from workbench.report.html import environment
    from workbench.report.risk_view import risk_tables

    table = sliced_table(_per_query(), LABELS, {"base": None, "a": "base", "c": "base"}, ["mrr@10", "ndcg@5"],
                         slices=("all", "qa"), permutations=200)
    table["dataset"] = "d1"
    table.loc[(table["system"] == "c") & (table["slice"] == "all"), "trisk_sig_a5_ndcg@5"] = RISKIER
    board = add_georisk(_session(), table, known={"d1": _per_query()})
    risk = risk_tables(board, ["mrr@10", "ndcg@5"])
    assert [row["system"] for row in risk["baseline"]] == ["a", "a", "c", "c"]
    assert [row["system"] for row in risk["georisk"]] == ["base", "a", "c"]
    assert len(risk["georisk_columns"]) == 2 * len(RISK_ALPHAS)
    view = SimpleNamespace(anchor="d1")
    html = environment().get_template("_risk.html.j2").render(risk=risk, view=view)
    assert html.count("<th>URisk α=") == len(RISK_ALPHAS) and "<caption>GeoRisk" in html and "mrr@10 α=5</th>" in html
    assert "▼" in html and "-0.1500" in html  # a's URisk at alpha 2 on mrr@10
    assert "p ≤ 0.05" in html and "&lt; −2" not in html and "&gt; 2)" not in html
    expected = reference_georisk(SCORES, 2)["c"]
    assert f"{expected:.4f}" in html
    assert risk_tables(board.drop(columns=[c for c in board.columns if "risk" in c]), ["mrr@10"]) == {}
