"""The package reads as the pipeline: layers point down and no module imports itself back.

Every module's imports are read from its source (function-local ones included, so a cycle
cannot hide behind a deferred import). Rules:

* no cycle among workbench modules;
* a subpackage imports only subpackages of a lower layer (or itself); subpackages of the
  same layer do not import each other.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parent.parent / "workbench"

#: subpackage (or top-level module) -> layer; lower layers never import higher ones
LAYERS = {
    "core": 0,
    "data": 1,
    "models": 2, "evaluation": 2,
    "rerankers": 3, "first_stage": 3, "analysis": 3,
    "report": 4, "embeddings": 4, "engines": 4,
    "experiment": 5,
    "train": 6, "pyterrier": 6,
    "cli": 7,
}
ROOT_MODULES = {"workbench"}  # the package itself: may import core only


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """workbench modules ``name`` imports anywhere in its source (resolved to known modules)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()

    def resolve(target: str) -> str | None:
        # the longest known module prefix of target (an attribute import resolves to its module)
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        for target in targets:
            if target == "workbench" or target.startswith("workbench."):
                resolved = resolve(target)
                if resolved and resolved != name:
                    found.add(resolved)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = all_modules()
    known = set(modules)
    return {name: imported_modules(name, path, known) for name, path in modules.items()}


def layer_of(module: str) -> tuple[str, int] | None:
    parts = module.split(".")
    if module in ROOT_MODULES:
        return None
    top = parts[1]
    if top not in LAYERS:
        raise AssertionError(f"{module}: subpackage {top!r} has no layer; add it to LAYERS in this test")
    return top, LAYERS[top]


def test_the_graph_sees_local_imports(graph):
    # experiment.systems imports the reranking loop inside a method: the walk must see it
    assert "workbench.rerankers.rerank" in graph["workbench.experiment.systems"]
    assert "workbench.first_stage.registry" in graph["workbench.experiment.produce"]


def test_no_import_cycles(graph):
    # Tarjan's strongly connected components: any component larger than one module is a cycle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def test_layers_point_down(graph):
    violations = []
    for module, targets in sorted(graph.items()):
        own = layer_of(module)
        for target in sorted(targets):
            theirs = layer_of(target)
            if theirs is None:
                continue
            if own is None:  # the package root
                if theirs[0] != "core":
                    violations.append(f"{module} -> {target} (the package root imports core only)")
                continue
            if own[0] != theirs[0] and theirs[1] >= own[1]:
                violations.append(f"{module} (layer {own[1]}: {own[0]}) -> {target} (layer {theirs[1]}: {theirs[0]})")
    assert not violations, "imports that point up or sideways:\n" + "\n".join(violations)


def test_every_subpackage_declares_its_public_surface():
    for init in sorted(PACKAGE_ROOT.glob("*/__init__.py")):
        tree = ast.parse(init.read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"{init} has no docstring"
        if init.parent.name == "models":  # import submodules directly: each pulls torch pieces
            continue
        names = [node for node in tree.body if isinstance(node, ast.Assign)
                 and any(getattr(target, "id", "") == "__all__" for target in node.targets)]
        assert names, f"{init} declares no __all__"


#: the most lines a module may have: past it, a module holds more than one job
MAX_MODULE_LINES = 450


def test_no_module_is_over_the_line_limit():
    long = {module_name(path): count for path in sorted(PACKAGE_ROOT.rglob("*.py"))
            if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by job): {long}"


def test_public_names_are_unique_across_the_package():
    # a top-level function or class name means one thing: two modules defining `write_report`
    # make every import of it a question (aliases in __init__ re-exports are not definitions)
    seen: dict[str, list[str]] = {}
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                seen.setdefault(node.name, []).append(module_name(path))
    twins = {name: modules for name, modules in seen.items() if len(modules) > 1}
    assert not twins, f"public names defined in more than one module: {twins}"
