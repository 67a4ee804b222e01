"""The ablation with power: seed spread, the noise marker and the verdict's rules, on synthetic
leaderboard rows (no training); the ablation's configuration directory and seed replicas."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from workbench.core.errors import WorkbenchError
from workbench.report.ablation import noise_level, power_markdown, seed_spread, verdict

METRICS = ("mrr@10", "ndcg@5", "ndcg@10")
SYSTEMS = {"pointwise": "s-point", "pairwise": "s-pair", "listwise": "s-list", "hybrid": "s-hyb"}


def row(system, baseline, value, delta=None, sig="", mde=0.1, dataset="dl19+dl20", slice_name="all", n=97):
    record = {"dataset": dataset, "slice": slice_name, "system": system, "baseline": baseline, "n_queries": n}
    for m in METRICS:
        record[m] = value
        record[f"delta_{m}"] = delta
        record[f"sig_{m}"] = sig
        record[f"mde_{m}"] = mde
    return record


def boards(pair_delta=-0.05, pair_sig="*"):
    slices = ("all", "qa", "exploratory")
    against_hybrid = [row("s-hyb", "official-bm25", 0.70, slice_name=s) for s in slices]
    against_hybrid += [row("s-pair", "s-hyb", 0.65, pair_delta, pair_sig, slice_name=s) for s in slices]
    against_hybrid += [row("s-list", "s-hyb", 0.69, -0.01, "", slice_name=s) for s in slices]
    against_hybrid += [row("s-point", "s-hyb", 0.68, -0.02, "", slice_name=s) for s in slices]
    pointwise = [row("s-point", "official-bm25", 0.68, slice_name=s) for s in slices]
    pointwise += [row(sys, "s-point", 0.69, 0.01, "", slice_name=s) for sys in ("s-pair", "s-list", "s-hyb")
                  for s in slices]
    ots = [row("ots", "official-bm25", 0.71, slice_name=s) for s in slices]
    ots += [row(sys, "ots", 0.69, -0.02, "*", slice_name=s) for sys in SYSTEMS.values() for s in slices]
    seeds = [row(f"s-hyb{k}", "s-point", 0.70 + 0.01 * k, slice_name=s) for k in range(3) for s in slices]
    seeds += [row(f"s-list{k}", "s-point", 0.69 + 0.005 * k, slice_name=s) for k in range(3) for s in slices]
    return {"hybrid": pd.DataFrame(against_hybrid), "pointwise": pd.DataFrame(pointwise),
            "off-the-shelf": pd.DataFrame(ots), "seeds": pd.DataFrame(seeds)}


REPLICAS = {"hybrid": ["s-hyb0", "s-hyb1", "s-hyb2"], "listwise": ["s-list0", "s-list1", "s-list2"]}


def test_seed_spread_and_noise_level():
    spread = seed_spread(boards()["seeds"], REPLICAS)
    hybrid = spread[(spread["loss"] == "hybrid") & (spread["slice"] == "all") & (spread["metric"] == "ndcg@10")]
    assert hybrid["range"].iloc[0] == pytest.approx(0.02) and hybrid["mean"].iloc[0] == pytest.approx(0.71)
    assert noise_level(spread, "dl19+dl20", "all", "ndcg@10") == pytest.approx(0.02)  # the larger range


def test_verdict_needs_significance_and_more_than_the_seed_spread():
    spread = seed_spread(boards()["seeds"], REPLICAS)
    calls = verdict(boards(), SYSTEMS, spread, "hybrid", ["pairwise", "listwise"])
    by = {(c["slice"], c["metric"], c["other"]): c for c in calls}
    assert by[("qa", "mrr@10", "pairwise")]["call"] == "better"        # +0.05, significant, > 0.02 spread
    assert by[("qa", "mrr@10", "listwise")]["call"] == "cannot tell"   # not significant
    small = verdict(boards(pair_delta=-0.015), SYSTEMS, spread, "hybrid", ["pairwise"])
    assert {c["call"] for c in small} == {"cannot tell"}               # significant but inside the seed spread
    worse = verdict(boards(pair_delta=0.05), SYSTEMS, spread, "hybrid", ["pairwise"])
    assert {c["call"] for c in worse} == {"worse"}


def test_markdown_marks_noise_and_states_every_cell():
    text, calls = power_markdown(boards(), SYSTEMS, REPLICAS, "hybrid", "pointwise", "ots", "listwise")
    assert "+0.010~" in text  # a delta below the seed spread is marked as noise
    assert "-0.020*" in text and "## Seed spread" in text and "**better**" in text
    assert len(calls) == 4 * 3  # four hypothesis cells x (pairwise, listwise, pointwise)


def test_ablation_directory_and_seed_replicas(tmp_path):
    from workbench.train.ablation import Ablation

    shipped = Ablation.from_directory(Path(__file__).parent.parent / "configs" / "ablation-bi", models=tmp_path)
    assert set(shipped.configs) == {"pointwise", "pairwise", "listwise", "lambda", "hybrid", "hybrid-notanh",
                                    "infonce"}
    replicas = shipped.replicas("listwise")
    assert [c.name for c in replicas["hybrid"]] == ["ablate-bi-hybrid", "ablate-bi-hybrid-s1", "ablate-bi-hybrid-s2"]
    assert [c.seed for c in replicas["listwise"]] == [0, 1, 2]
    with pytest.raises(WorkbenchError, match="not trained yet"):
        shipped.strongest_other()
    for short, ndcg in {"pointwise": 0.6, "pairwise": 0.7, "listwise": 0.65, "lambda": 0.5, "infonce": 0.6,
                        "hybrid": 0.9, "hybrid-notanh": 0.95}.items():
        folder = tmp_path / shipped.configs[short].name
        folder.mkdir()
        (folder / "summary.json").write_text(f'[{{"best_val_ndcg@10": {ndcg}}}]')
    assert shipped.strongest_other() == "pairwise"  # the hybrid and its variants are not "other"
    (tmp_path / "empty").mkdir()
    with pytest.raises(WorkbenchError, match="no \\*.toml"):
        Ablation.from_directory(tmp_path / "empty")


def test_the_html_report_quotes_the_ablation_verdict_for_its_models(tmp_path):
    from workbench.report.html import ablation_verdict
    from workbench.report.inspection import TrainedModel

    report = tmp_path / "ablation.md"
    report.write_text("# Loss ablation\n\nsetup\n\n## Verdict\n\n- **Q&A queries, MRR@10**: "
                      "**cannot tell at this power** whether the hybrid beats its parts.\n\n## Tables\n\n| ablate-bi-hybrid |\n",
                      encoding="utf-8")

    def model(name):
        return TrainedModel(name=name, directory=tmp_path / name, card_markdown=None, curves_png=None,
                            systems=[f"official-bm25+finetuned:{name}"], anchor=name)

    verdict = ablation_verdict([model("ablate-bi-hybrid")], report)
    assert verdict["path"] == str(report)
    assert "cannot tell at this power" in verdict["html"] and "Tables" not in verdict["html"]
    assert ablation_verdict([model("minilm-hybrid")], report) == {}
    assert ablation_verdict([model("ablate-bi-hybrid")], tmp_path / "missing.md") == {}
