"""The registries know every built-in component (name, options, help) from their catalogues,
without importing it: listing the rerankers and first stages, or parsing a spec, imports no model
library. A component's module (torch, transformers, scikit-learn, Pyserini behind it) is imported
when the component is built.
"""
from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap

import pytest

from workbench.core.registry import LazyCallable, Registry

#: what listing the components and parsing specs must not import
HEAVY = ("torch", "transformers", "pyserini", "pyserini.encode", "sklearn", "faiss", "onnxruntime", "scipy",
         "jnius")
#: the built-ins' own modules: imported when their component is built, not before
COMPONENT_MODULES = ("workbench.rerankers.tfidf", "workbench.rerankers.cross_encoder", "workbench.rerankers.dense",
                     "workbench.rerankers.splade", "workbench.rerankers.monot5", "workbench.rerankers.finetuned",
                     "workbench.rerankers.rerankers_backend", "workbench.rerankers.pyterrier_stage",
                     "workbench.first_stage.bm25", "workbench.first_stage.dense", "workbench.first_stage.splade",
                     "workbench.first_stage.learned", "workbench.first_stage.run_files",
                     "workbench.first_stage.pyterrier_stage", "workbench.models.encoder", "workbench.models.dense",
                     "workbench.models.splade", "workbench.models.precision")

LIST_AND_PARSE = textwrap.dedent('''
    import json, sys
    from workbench.first_stage.registry import FIRST_STAGES
    from workbench.rerankers.registry import REGISTRY

    listed = REGISTRY.describe() + "\\n" + FIRST_STAGES.describe()
    parsed = {spec: REGISTRY.parse(spec)[1] for spec in ("tfidf", "cross-encoder:x,batch_size=4", "dense-minilm",
                                                          "splade-tiny", "monot5:precision=bf16")}
    parsed.update({spec: FIRST_STAGES.parse(spec)[1] for spec in ("bm25:k1=0.8", "dense-mini:precision=bf16",
                                                                 "official-bm25", "run:/a,b.trec")})
    print(json.dumps({"listed": listed, "parsed": parsed, "modules": sorted(sys.modules)}))
''')


@pytest.fixture(scope="module")
def fresh_process() -> dict:
    out = subprocess.run([sys.executable, "-c", LIST_AND_PARSE], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def test_listing_and_parsing_import_no_model_library(fresh_process):
    modules = set(fresh_process["modules"])
    assert not modules & set(HEAVY), f"imported: {sorted(modules & set(HEAVY))}"
    assert not modules & set(COMPONENT_MODULES), f"imported: {sorted(modules & set(COMPONENT_MODULES))}"


def test_the_fresh_process_lists_and_parses_every_builtin(fresh_process):
    listed = fresh_process["listed"]
    for name in ("cross-encoder", "dense", "dense-minilm", "finetuned", "monot5", "rerankers", "splade",
                 "splade-tiny", "tfidf", "bm25", "bm25-mini", "dense-mini", "official-", "run", "splade-mini"):
        assert f"\n{name}\t" in "\n" + listed, name
    assert "batch_size (int >= 1) = auto  pairs per batch (default: 32 on the CPU, 128 on CUDA)" in listed
    parsed = fresh_process["parsed"]
    assert parsed["tfidf"] == {"sublinear_tf": True}
    assert parsed["cross-encoder:x,batch_size=4"]["model"] == "x"
    assert parsed["cross-encoder:x,batch_size=4"]["batch_size"] == 4
    assert parsed["cross-encoder:x,batch_size=4"]["backend"] == "auto"
    minilm = parsed["dense-minilm"]
    assert (minilm["pooling"], minilm["normalize"], minilm["max_length"]) == ("masked_mean", True, 256)
    assert minilm["model"].endswith("model") or minilm["model"] == "minilm"
    assert parsed["monot5:precision=bf16"]["precision"] == "bf16"
    assert parsed["bm25:k1=0.8"]["k1"] == 0.8 and parsed["bm25:k1=0.8"]["b"] == 0.4
    assert parsed["dense-mini:precision=bf16"] == {"encoder": "dense-minilm", "precision": "bf16", "backend": None,
                                                   "index": "flat", "k": 1000}
    assert parsed["official-bm25"] == {"run": "bm25"}
    assert parsed["run:/a,b.trec"] == {"path": "/a,b.trec"}


def test_presets_are_the_packaged_models_found_without_torch():
    from workbench.models.dense import minilm_path
    from workbench.models.splade import splade_tiny_path
    from workbench.rerankers.registry import REGISTRY

    for name, path in (("dense-minilm", minilm_path), ("splade-tiny", splade_tiny_path)):
        try:
            expected = str(path())
        except Exception:  # noqa: BLE001 - the package is not installed: the preset names the model
            expected = {"dense-minilm": "minilm", "splade-tiny": "splade-tiny"}[name]
        assert REGISTRY[name].presets["model"] == expected


def test_a_declared_component_imports_its_module_when_built(tmp_path, monkeypatch):
    package = tmp_path / "lazy_components"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "registry.py").write_text(
        "from workbench.core.registry import Registry\n"
        "REGISTRY = Registry('gadget', group='none', package='lazy_components',\n"
        "                    catalogue='lazy_components.catalogue')\n")
    (package / "catalogue.py").write_text(
        "from workbench.core.options import Option\nfrom .registry import REGISTRY\n"
        "REGISTRY.declare('gear', 'lazy_components.gear:make_gear', help='turns',\n"
        "                 options=(Option('teeth', int, 8, minimum=1, help='teeth'),))\n"
        "REGISTRY.declare('big-gear', 'lazy_components.gear:make_gear', help='turns slowly',\n"
        "                 options=(Option('teeth', int, 8, minimum=1, help='teeth'),), teeth=40)\n"
        "REGISTRY.declare_adapter('lazy_components.gear:adapt')\n")
    (package / "gear.py").write_text(
        "def make_gear(context, *, teeth):\n    return ('gear', teeth)\n\n"
        "def adapt(obj, name):\n    return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    registry: Registry = importlib.import_module("lazy_components.registry").REGISTRY
    assert registry.names() == ["big-gear", "gear"]
    assert registry.parse("gear:teeth=12")[1] == {"teeth": 12}
    assert "lazy_components.gear" not in sys.modules
    assert registry.build("big-gear", None) == ("gear", 40)
    assert "lazy_components.gear" in sys.modules
    entry = registry["gear"]
    assert entry.source == "built-in" and entry.factory.__module__ == "lazy_components.gear"
    assert list(inspect.signature(entry.factory).parameters) == ["context", "teeth"]
    assert isinstance(registry.adapters[0], LazyCallable) and registry.adapters[0](object(), "x") is None
    with pytest.raises(ValueError, match="module:attribute"):
        registry.declare("bad", "no_colon_here")


#: what a BM25 run, its TF-IDF reranking and the CLI's help must never import
NEVER_FOR_LEXICAL = ("torch", "transformers", "pyserini.encode", "pyserini.search")

EVAL_LEXICAL = textwrap.dedent('''
    import json, sys
    from workbench.cli import main
    code = main(sys.argv[1:])
    print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
''')


def test_help_imports_no_model_library():
    # argparse exits after printing the help: the modules are read after its SystemExit
    listing = subprocess.run([sys.executable, "-c", "import json, sys, contextlib, io\n"
                              "from workbench.cli import main\n"
                              "with contextlib.redirect_stdout(io.StringIO()):\n"
                              "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
                              "print(json.dumps(sorted(sys.modules)))"],
                             capture_output=True, text=True, check=True).stdout
    loaded = set(json.loads(listing))
    assert not loaded & {"torch", "transformers", "pyserini.encode", "numpy"}, sorted(loaded & set(HEAVY))


def test_bm25_and_tfidf_on_dl19_import_no_model_library(data_dir, session_cache, tmp_path):
    runs = tmp_path / "runs"
    out = subprocess.run([sys.executable, "-c", EVAL_LEXICAL, "eval", "--datasets", "dl19", "--systems",
                          "bm25,bm25+tfidf", "--data-dir", str(data_dir), "--runs-dir", str(runs),
                          "--leaderboard", str(runs / "board.csv"), "--quiet"],
                         capture_output=True, text=True, env={**__import__("os").environ,
                                                              "WORKBENCH_CACHE": str(session_cache)})
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["code"] == 0
    loaded = set(result["modules"])
    assert not loaded & set(NEVER_FOR_LEXICAL), sorted(loaded & set(NEVER_FOR_LEXICAL))
    # the run really went through BM25 and TF-IDF
    assert {"jnius", "sklearn"} <= loaded
    assert sorted(path.name.rsplit("-", 1)[0] for path in (runs / "dl19").glob("*.trec")) == ["bm25", "bm25+tfidf"]
