"""The --systems / SYSTEMS= list syntax: commas inside a system's option list stay with it."""
from __future__ import annotations

import pytest

from workbench.core.errors import WorkbenchError
from workbench.experiment import DEFAULT_SYSTEMS, parse_system, split_systems

# every system name the README, the Makefile and the defaults document
DOCUMENTED = DEFAULT_SYSTEMS + [
    "bm25-mini:k1=0.82,b=0.68", "bm25-mini+tfidf", "dense-mini:index=hnsw", "official-bm25+dense-minilm:backend=onnx",
    "official-bm25+dense-minilm:backend=onnx,precision=fp32", "official-bm25+overlap:lowercase=false",
    "official-bm25+cross-encoder:/path/to/model", "official-bm25+finetuned:minilm-hybrid", "run:/tmp/cand.trec",
    "bm25-mini:k1=0.82,b=0.68+tfidf", "official-bm25+tfidf+dense-minilm:precision=bf16,batch_size=64",
    "rrf[bm25-mini:k1=0.82,b=0.68|official-bm25+dense-minilm:precision=fp32]", "combmnz[official-bm25|dense-mini]",
    "wsum:norm=min-max,weights=0.3;0.7[official-bm25|official-bm25+dense-minilm]",
    "rrf:tune=folds:5,metric=mrr@10[official-bm25|official-tasb]", "bm25-mini:k1=0.6;0.9;1.2,b=0.4;0.68;0.8,tune=other-year",
    "bm25:rm3=true,fb_terms=5;10;20,fb_docs=5;10,original_query_weight=0.3;0.5;0.7,tune=folds:5",
]


@pytest.mark.parametrize("separator", [",", " ", ", ", " ,\n "])
def test_documented_names_survive_any_separator(separator):
    assert split_systems(separator.join(DOCUMENTED)) == DOCUMENTED
    for system in DOCUMENTED:
        parse_system(system)


def test_each_documented_name_alone():
    for system in DOCUMENTED:
        assert split_systems(system) == [system]


def test_option_continuation_needs_an_open_option_list():
    assert split_systems("official-bm25,b=0.68") == ["official-bm25", "b=0.68"]  # then: unknown system
    assert split_systems("bm25-mini:k1=0.82,official-bm25,b=0.6") == ["bm25-mini:k1=0.82", "official-bm25", "b=0.6"]


def test_brackets_keep_anything_together():
    assert split_systems("[run:/tmp/my,run.trec],official-bm25") == ["run:/tmp/my,run.trec", "official-bm25"]
    assert split_systems("rrf[a:x=1,y=2|b] c") == ["rrf[a:x=1,y=2|b]", "c"]
    with pytest.raises(WorkbenchError, match="unbalanced"):
        split_systems("rrf[a|b")


def test_eval_cli_keeps_multi_option_systems_together(monkeypatch):
    from workbench import cli

    seen = {}

    class Recorder:
        def __init__(self, *args, **kwargs):
            pass

        def run_experiment(self, datasets, systems, **kwargs):
            seen["systems"] = systems
            raise SystemExit(0)

    monkeypatch.setattr("workbench.experiment.Workbench", Recorder)
    with pytest.raises(SystemExit):
        cli.main(["eval", "--datasets", "dl19", "--systems",
                  "bm25-mini:k1=0.82,b=0.68,official-bm25+dense-minilm:backend=onnx,precision=fp32"])
    assert seen["systems"] == ["bm25-mini:k1=0.82,b=0.68", "official-bm25+dense-minilm:backend=onnx,precision=fp32"]
