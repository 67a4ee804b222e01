"""The README's examples run and the documentation's links resolve.

Each fenced shell block of README.md has its first command checked cheaply: a `workbench`
subcommand or a script with `--help`, a make target with `make -n` (prints, installs nothing).
Every relative link in README.md and docs/*.md must point at a committed file.
"""
from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
VENV_BIN = Path(sys.executable).parent

SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
# A block without a language counts as shell when its first command starts with one of these.
SHELL_PROGRAMS = {"workbench", "python", "python3", "make", "ls", "cat", "head", "pip", "git", "torchrun", "ray"}
# Run as written: they only read.
CHEAP_PROGRAMS = {"ls", "cat", "head"}
# Commands that cannot run here, by their first words, and why.
NOT_RUNNABLE = {
    ("git", "clone"): "fetches a repository over the network",
    ("pip", "install"): "installs from a package index over the network",
    ("ray", "start"): "starts a Ray cluster node",
    ("torchrun",): "starts distributed training processes",
}
# Links to outputs that commands write and git ignores (runs/, models/) or that `make ablate`
# writes; they exist only after a run.
GENERATED = {
    "runs/": "run files, the leaderboard and the report are written by make eval / make report",
    "models/": "fine-tuned models are written by make train",
    "docs/ablation.md": "written by make ablate (workbench ablate)",
    "docs/ablation/": "written by make ablate (workbench ablate)",
}
HELP_SECONDS = 60


@dataclass(frozen=True)
class ShellBlock:
    line: int  # 1-based line of the opening fence
    first_command: str


def fenced_blocks(text: str) -> list[tuple[int, str, list[str]]]:
    """(line of the opening fence, language, lines) of every fenced code block."""
    blocks, open_fence = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if open_fence is None:
            if stripped.startswith("```"):
                open_fence = (number, stripped[3:].strip().lower(), [])
        elif stripped.startswith("```"):
            blocks.append(open_fence)
            open_fence = None
        else:
            open_fence[2].append(line)
    assert open_fence is None, f"unclosed code fence at line {open_fence[0]}"
    return blocks


def first_command(lines: list[str]) -> str | None:
    for line in lines:
        command = line.strip().removeprefix("$ ").strip()
        if command and not command.startswith("#"):
            return command
    return None


def words(command: str) -> list[str]:
    """The command's words, its trailing comment and leading VAR=value assignments dropped."""
    tokens = shlex.split(command, comments=True)
    while tokens and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", tokens[0]):
        tokens.pop(0)
    return tokens


def program(token: str) -> str:
    return Path(token).name


def shell_blocks(path: Path) -> list[ShellBlock]:
    found = []
    for line, language, lines in fenced_blocks(path.read_text()):
        command = first_command(lines)
        if command is None:
            continue
        looks_like_shell = language == "" and words(command) and program(words(command)[0]) in SHELL_PROGRAMS
        if language in SHELL_LANGUAGES or looks_like_shell:
            found.append(ShellBlock(line, command))
    return found


def subcommand_help(arguments: list[str]) -> list[str]:
    """`eval --datasets dl19` -> `eval --help`: the subcommand, its arguments replaced by --help."""
    subcommand = next((argument for argument in arguments if not argument.startswith("-")), None)
    return ([subcommand] if subcommand else []) + ["--help"]


def not_runnable_reason(tokens: list[str]) -> str | None:
    for prefix, reason in NOT_RUNNABLE.items():
        if tuple(program(token) if i == 0 else token for i, token in enumerate(tokens[:len(prefix)])) == prefix:
            return reason
    return None


def check_command(tokens: list[str]) -> list[str]:
    """The cheap command that shows the documented one exists: --help, make -n, or itself."""
    name = program(tokens[0])
    if name == "workbench":
        return [str(VENV_BIN / "workbench"), *subcommand_help(tokens[1:])]
    if name in {"python", "python3"}:
        if tokens[1:2] == ["-m"]:  # python -m workbench.cli eval ... -> the module's subcommand --help
            return [sys.executable, "-m", tokens[2], *subcommand_help(tokens[3:])]
        return [sys.executable, tokens[1], "--help"]  # python bench/x.py ...
    if name == "make":
        targets = [token for token in tokens[1:] if not token.startswith("-") and "=" not in token]
        assignments = [token for token in tokens[1:] if "=" in token and not token.startswith("-")]
        return ["make", "-n", *targets[:1], *assignments]
    if name in CHEAP_PROGRAMS:
        return tokens
    raise AssertionError(f"no cheap check for {tokens[0]!r}: add it to NOT_RUNNABLE with a reason, "
                         "or teach check_command how to run it")


README_BLOCKS = shell_blocks(README)


def test_readme_has_shell_examples():
    assert len(README_BLOCKS) >= 5, README_BLOCKS


def test_readme_keeps_the_two_commands():
    first_block = README_BLOCKS[0]
    assert first_block.first_command.startswith("make eval ")
    assert "make test     # set up .venv (if needed) and run the test suite" in README.read_text()


@pytest.mark.parametrize("block", README_BLOCKS, ids=lambda block: f"line{block.line}")
def test_readme_block_first_command_runs(block: ShellBlock):
    tokens = words(block.first_command)
    reason = not_runnable_reason(tokens)
    if reason:
        pytest.skip(f"README line {block.line}: {block.first_command!r} {reason}")
    command = check_command(tokens)
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=HELP_SECONDS)
    assert done.returncode == 0, (f"README line {block.line}: {block.first_command!r} checked as "
                                  f"{shlex.join(command)!r} exited {done.returncode}:\n{done.stderr[-2000:]}")


def test_help_replaces_a_subcommands_arguments():
    assert subcommand_help(["eval", "--datasets", "dl19"]) == ["eval", "--help"]
    assert words("HF_HUB_OFFLINE=0 workbench data --target x   # comment") == ["workbench", "data", "--target", "x"]
    assert check_command(["make", "eval", "ENGINE=ray"]) == ["make", "-n", "eval", "ENGINE=ray"]
    assert not_runnable_reason(["git", "clone", "https://example.org/x.git"])


# Markdown links and images, [text](target) and ![alt](target), and reference definitions [id]: target.
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)


def prose(text: str) -> str:
    """The text without fenced blocks and inline code, where brackets are code, not links."""
    without_blocks = re.sub(r"^\s*```.*?^\s*```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", without_blocks)


def local_links(path: Path) -> list[str]:
    text = prose(path.read_text())
    targets = INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)
    return [target for target in targets
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) and not target.startswith("#")]


def is_generated(resolved: Path) -> bool:
    relative = resolved.relative_to(REPO).as_posix() if resolved.is_relative_to(REPO) else ""
    return any(relative == prefix.rstrip("/") or relative.startswith(prefix) for prefix in GENERATED)


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda page: page.relative_to(REPO).as_posix())
def test_relative_links_resolve(page: Path):
    broken = []
    for target in local_links(page):
        resolved = (page.parent / target.split("#", 1)[0]).resolve()
        if not resolved.exists() and not is_generated(resolved):
            broken.append(target)
    assert not broken, f"{page.relative_to(REPO)}: links to missing files: {broken}"


def test_link_finder_sees_links_and_skips_code():
    page = "[a](docs/a.md) ![b](b.png \"t\") [c](https://x.org) [d](#anchor) `[e](e.md)`\n[f]: f.md\n"
    assert sorted(INLINE_LINK.findall(prose(page)) + REFERENCE_LINK.findall(prose(page))) == [
        "#anchor", "b.png", "docs/a.md", "f.md", "https://x.org"]


def test_documented_system_names_are_in_the_docs():
    """tests/test_system_lists.py's DOCUMENTED names: each still appears in the README or a docs page."""
    spec = importlib.util.spec_from_file_location("system_lists", Path(__file__).parent / "test_system_lists.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = "\n".join(page.read_text() for page in [README, *DOCS])
    missing = [name for name in module.DOCUMENTED if name not in text]
    assert not missing, f"system names no page documents: {missing}"


def test_docs_pages_link_back_to_the_readme():
    # the ablation reports are generated by `workbench ablation` / `workbench ablate`
    pages = [page for page in DOCS if not page.name.startswith("ablation")]
    assert [page.name for page in pages if "](../README.md)" not in page.read_text()] == []
