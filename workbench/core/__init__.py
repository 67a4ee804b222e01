"""The foundation every stage builds on: errors, atomic files, the cache directory and
fingerprints, declared options, and registries with entry-point plugins."""
from .cache import cache_dir, fingerprint
from .errors import WorkbenchError
from .files import atomic_write, sha256_file
from .options import Option, parse_options
from .registry import Entry, Registry

__all__ = ["Entry", "Option", "Registry", "WorkbenchError", "atomic_write", "cache_dir", "fingerprint",
           "parse_options", "sha256_file"]
