"""trec_eval for the tests: the reference every metric is checked against.

The trec_eval used is the one Pyserini's Anserini jar carries (``io.anserini``'s ``trec_eval``
class runs a native trec_eval binary it ships inside the jar). The binary for this platform is
extracted once per test run and called directly, one process per run file and set of global
options with every measure of the check as its own ``-m``: no Java process per metric. Where the
jar has no binary for this platform, the jar's Java entry point runs it (the same binary).
"""
from __future__ import annotations

import atexit
import functools
import glob
import os
import platform
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

import pytest

#: platform.machine() -> the name of the binary inside the jar
_BINARIES = {"x86_64": "trec_eval/trec_eval-linux-amd64", "AMD64": "trec_eval/trec_eval-linux-amd64",
             "i386": "trec_eval/trec_eval-linux-i386"}


def anserini_jar() -> str:
    jars = glob.glob(str(Path(__import__("pyserini").__file__).parent / "resources" / "jars" / "*.jar"))
    if not jars:
        pytest.skip("Pyserini's Anserini jar (with trec_eval) is not installed")
    return sorted(jars)[-1]


@functools.lru_cache(maxsize=1)
def trec_eval_command() -> tuple[str, ...]:
    """The command that runs the jar's trec_eval: its native binary, extracted once per process."""
    jar = anserini_jar()
    member = _BINARIES.get(platform.machine()) if platform.system() == "Linux" else None
    with zipfile.ZipFile(jar) as archive:
        if member is not None and member in archive.namelist():
            folder = tempfile.mkdtemp(prefix="trec-eval-")
            atexit.register(shutil.rmtree, folder, True)
            binary = Path(archive.extract(member, folder))
            binary.chmod(0o755)
            return (str(binary),)
    from workbench.first_stage.java import java_home

    return (os.path.join(java_home(), "bin", "java"), "-cp", jar, "trec_eval")


def trec_eval(qrels: Path | str, run: Path | str, measures: dict[str, tuple[list[str], str]],
              judged_qrels: Path | str | None = None) -> dict[str, float]:
    """Means over all queries (``-c``) of every measure: ``name -> (trec_eval arguments, output name)``.

    Measures whose name starts with ``Judged`` are computed on ``judged_qrels``. Measures that share
    their global options (``-l``, ``-M``) and qrels run in one trec_eval call.
    """
    groups: dict[tuple[str, tuple[str, ...]], list[tuple[str, str, str]]] = {}
    for metric, (arguments, output) in measures.items():
        global_options, measure = _split_measure(arguments)
        qrels_file = str(judged_qrels if judged_qrels is not None and metric.startswith("Judged") else qrels)
        groups.setdefault((qrels_file, tuple(global_options)), []).append((metric, measure, output))
    values: dict[str, float] = {}
    for (qrels_file, global_options), members in groups.items():
        selected = [argument for measure in _merged(measure for _, measure, _ in members)
                    for argument in ("-m", measure)]
        out = subprocess.run([*trec_eval_command(), "-c", *global_options, *selected, qrels_file, str(run)],
                             capture_output=True, text=True, check=True).stdout
        found = {parts[0]: float(parts[2]) for parts in (line.split() for line in out.splitlines())
                 if len(parts) == 3 and parts[1] == "all"}
        for metric, _, output in members:
            values[metric] = found[output]
    return values


#: trec_eval's global options that take no value (-J: judged documents only, the condensed list)
_FLAGS = ("-J",)


def _split_measure(arguments: list[str]) -> tuple[list[str], str]:
    """(global options, the one ``-m`` measure) of one measure's trec_eval arguments."""
    global_options, measure = [], None
    position = 0
    while position < len(arguments):
        if arguments[position] in _FLAGS:  # an option without a value
            global_options.append(arguments[position])
            position += 1
            continue
        if arguments[position] == "-m":
            measure = arguments[position + 1]
        else:
            global_options += arguments[position:position + 2]
        position += 2
    if measure is None:
        raise ValueError(f"no -m in {arguments}")
    return global_options, measure


def _merged(measures) -> list[str]:
    """One ``-m`` per trec_eval measure, its cutoffs joined (``ndcg_cut.5,10``): trec_eval keeps only
    one parameter list per measure, so ``-m ndcg_cut.5 -m ndcg_cut.10`` would drop a cutoff."""
    cutoffs: dict[str, list[str]] = {}
    for measure in measures:
        name, _, parameters = measure.partition(".")
        kept = cutoffs.setdefault(name, [])
        kept += [value for value in parameters.split(",") if value and value not in kept]
    return [name + ("." + ",".join(values) if values else "") for name, values in cutoffs.items()]
