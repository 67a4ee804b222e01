"""Options declared once: parsing, validation, defaults and help all come from the declaration."""
from __future__ import annotations

import inspect

import pytest

from workbench.core.errors import WorkbenchError
from workbench.core.options import Option, describe_options, parse_options, spec_values
from workbench.core.registry import Registry
from workbench.first_stage.registry import FIRST_STAGES
from workbench.rerankers.registry import REGISTRY

DECLARED = (
    Option("model", str, "base", positional=True, help="the model"),
    Option("batch_size", int, None, minimum=1, help="pairs per batch"),
    Option("scale", float, 1.0, minimum=0),
    Option("normalize", bool, True),
    Option("precision", str, None, choices={"fp32": "fp32", "float32": "fp32", "bf16": "bf16", "bfloat16": "bf16"},
           aliases=("dtype",)),
)


def test_values_are_typed_and_defaults_filled():
    values = parse_options(DECLARED, {"batch_size": "8", "scale": "0.5", "normalize": "no", "dtype": "bfloat16"},
                           "test reranker")
    assert values == {"model": "base", "batch_size": 8, "scale": 0.5, "normalize": False, "precision": "bf16"}
    assert parse_options(DECLARED, {}, "test reranker") == {"model": "base", "batch_size": None, "scale": 1.0,
                                                            "normalize": True, "precision": None}
    # an option whose default is None accepts "auto" as "let the component decide" ...
    assert parse_options(DECLARED, {"batch_size": "auto"}, "test reranker")["batch_size"] is None
    # ... unless "auto" is one of its choices (precision=auto: bf16 where native)
    auto = Option("precision", str, None, choices={"fp32": "fp32", "auto": "auto"})
    assert parse_options((auto,), {"precision": "auto"}, "t") == {"precision": "auto"}
    assert parse_options((auto,), {"precision": "none"}, "t") == {"precision": None}
    # presets override declared defaults; given values override presets
    assert parse_options(DECLARED, {"scale": 3}, "t", presets={"scale": 2.0, "model": "x"})["scale"] == 3.0
    assert parse_options(DECLARED, {}, "t", presets={"model": "x"})["model"] == "x"


@pytest.mark.parametrize("given, message", [
    ({"bogus": "1"}, "unknown option 'bogus' for the test reranker; known: model, batch_size, scale, normalize, "
                     "precision"),
    ({"batch_size": "abc"}, "option batch_size='abc' of the test reranker is not an integer"),
    ({"batch_size": "0"}, "option batch_size=0 of the test reranker must be at least 1"),
    ({"batch_size": "2.5"}, "option batch_size='2.5' of the test reranker is not an integer"),
    ({"scale": "x"}, "option scale='x' of the test reranker is not a number"),
    ({"normalize": "maybe"}, "option normalize of the test reranker must be true or false, not 'maybe'"),
    ({"precision": "int4"}, "option precision must be one of fp32, float32, bf16, bfloat16, not 'int4'"),
    ({"precision": "fp32", "dtype": "fp32"}, "options precision and dtype of the test reranker are the same option"),
])
def test_bad_options_are_one_clear_line(given, message):
    with pytest.raises(WorkbenchError) as caught:
        parse_options(DECLARED, given, "test reranker")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_spec_grammar_positional_and_raw():
    assert spec_values(DECLARED, "org/model,batch_size=4", "x:org/model,batch_size=4", "x") == \
        {"model": "org/model", "batch_size": "4"}
    with pytest.raises(WorkbenchError, match="expected key=value"):
        spec_values(DECLARED, "org/model,cls", "x:org/model,cls", "x")
    raw = (Option("path", str, None, positional=True, raw=True),)
    assert spec_values(raw, "/a,b=c/run.trec", "run:/a,b=c/run.trec", "run") == {"path": "/a,b=c/run.trec"}


def test_help_comes_from_the_declaration():
    lines = describe_options(DECLARED, presets={"model": "preset-model"})
    assert lines[0] == "model (str; positional) = preset-model  the model"
    assert lines[1] == "batch_size (int >= 1) = auto  pairs per batch"
    assert lines[4].startswith("precision (fp32|bf16; alias dtype) = auto")


def test_registry_prefix_families_and_presets():
    registry = Registry("widget", group="workbench.test-widgets", package="workbench.core")
    registry.register("family-", options=(Option("member", str, None, positional=True),))(
        lambda context, member: ("family", member))
    make = registry.register("plain", options=DECLARED, help="a plain widget")(lambda context, **o: o)
    registry.register("plain-preset", options=DECLARED, help="preset", scale=9.0)(make)
    assert registry.build("family-x", None) == ("family", "x")
    assert registry.build("plain:m,batch_size=2", None)["batch_size"] == 2
    assert registry.build("plain-preset", None)["scale"] == 9.0
    assert registry.build("plain-preset:scale=1", None)["scale"] == 1.0
    with pytest.raises(WorkbenchError, match="unknown widget 'nope'; known widgets: family-<name>, plain, "
                                             "plain-preset"):
        registry.build("nope", None)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("plain", options=DECLARED)(make)
    with pytest.raises(ValueError, match="undeclared options"):
        registry.register("bad-preset", options=DECLARED, colour="red")(make)
    assert "scale (float >= 0) = 9.0" in registry.describe()


@pytest.mark.parametrize("registry", [REGISTRY, FIRST_STAGES], ids=["rerankers", "first-stages"])
def test_every_builtin_factory_takes_exactly_its_declared_options(registry):
    for entry in registry.entries():
        signature = inspect.signature(entry.factory)
        parameters = list(signature.parameters.values())[1:]  # after the context
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
        named = {p.name for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD}
        declared = {option.name for option in entry.options}
        assert named <= declared, f"{entry.name}: factory parameters {named - declared} are not declared"
        assert takes_any or declared <= named, f"{entry.name}: declared {declared - named} not taken by the factory"
        for option in entry.options:
            assert option.help or option.positional, f"{entry.name}: option {option.name} has no help"
            assert option.name != "dtype", f"{entry.name}: the option is 'precision' (dtype is its alias)"
            if option.name == "precision":
                assert "dtype" in option.aliases


def test_precision_is_one_option_across_rerankers():
    names = {entry.name for entry in REGISTRY.entries() if any(o.name == "precision" for o in entry.options)}
    assert {"cross-encoder", "monot5", "dense", "dense-minilm", "splade", "splade-tiny"} <= names


def test_ill_typed_options_fail_before_any_model_loads():
    # batch_size is checked against the declaration before the (missing) model is looked for
    with pytest.raises(WorkbenchError, match="option batch_size='abc' of the cross-encoder reranker is not an "
                                             "integer"):
        REGISTRY.build("cross-encoder:/no/such/model,batch_size=abc", None)
    with pytest.raises(WorkbenchError, match="option k1='high' of the bm25-mini first stage is not a number"):
        FIRST_STAGES.build("bm25-mini:k1=high", None)
    with pytest.raises(WorkbenchError, match="option index must be one of flat, ivf, hnsw"):
        FIRST_STAGES.build("dense-mini:index=lsh", None)


def test_cli_lists_declared_options(capsys):
    from workbench.cli import main

    assert main(["rerankers"]) == 0
    out = capsys.readouterr().out
    assert "cross-encoder\t" in out and "    precision (" in out and "alias dtype" in out
    assert "dense-minilm\t" in out and "model (str; positional) = " in out
    assert main(["first-stages"]) == 0
    out = capsys.readouterr().out
    for name in ("bm25-mini\t", "official-\t", "run\t", "dense-mini\t", "splade-mini\t"):
        assert name in out
    assert "    k1 (float >= 0) = 0.9" in out
