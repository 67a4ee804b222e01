"""Registries of named components (rerankers, first stages, trainers), extensible by plugins.

A :class:`Registry` maps a name to a factory, its declared options and a help line. The
built-in components are declared in one catalogue module per package (name, help, options,
presets, and the factory as ``"module:function"``, see :meth:`Registry.declare`): listing them or
parsing a spec imports the catalogue only, and a component's module (with torch, transformers,
faiss behind it) is imported when the component is built. A registry without a catalogue
imports every public module of its package instead, each registering itself. Third-party
packages add components through an entry point group, so ``pip install my-reranker`` is enough::

    # pyproject.toml of a plugin distribution
    [project.entry-points."workbench.rerankers"]
    my-reranker = "my_package.reranker:make_my_reranker"

The entry point's object is loaded when its name is first asked for (or when everything is
listed). If importing it registers the name (a module using ``@register``), that entry is
used; otherwise the object itself is registered as the factory, with its options from an
``options`` attribute and its help from ``help`` or its docstring.
"""
from __future__ import annotations

import importlib
import pkgutil
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Mapping, Sequence

from .errors import WorkbenchError
from .options import Option, describe_options, parse_options, spec_values, split_spec



def with_options(spec: str, options: Mapping[str, Any]) -> str:
    """``spec`` with ``key=value`` options appended (None values left out); a later option
    overrides an earlier one of the same name when the spec is parsed."""
    extra = [f"{key}={value}" for key, value in options.items() if value is not None]
    if not extra:
        return spec
    return spec + ("," if ":" in spec else ":") + ",".join(extra)

class LazyCallable:
    """A callable named ``"package.module:attribute"``, imported when first called.

    It stands for the named function wherever a factory is expected: ``__module__`` and
    ``__name__`` are the target's, and :func:`inspect.signature` sees the target's signature
    (through ``__wrapped__``, which imports it).
    """

    def __init__(self, target: str):
        module, colon, attribute = target.partition(":")
        if not (module and colon and attribute):
            raise ValueError(f"expected 'package.module:attribute', not {target!r}")
        self.target = target
        self.__module__ = module
        self.__name__ = self.__qualname__ = attribute.rpartition(".")[2]
        self._loaded: Callable[..., Any] | None = None

    def load(self) -> Callable[..., Any]:
        """The named callable (its module imported on the first call)."""
        if self._loaded is None:
            module, _, attribute = self.target.partition(":")
            found: Any = importlib.import_module(module)
            for part in attribute.split("."):
                found = getattr(found, part)
            self._loaded = found
        return self._loaded

    @property
    def __wrapped__(self) -> Callable[..., Any]:
        return self.load()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.load()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<lazy {self.target}>"


@dataclass(frozen=True)
class Entry:
    """A registered component: ``factory(context, **options)`` builds it.

    ``presets`` are option values that override the declared defaults (a preset such as
    ``dense-minilm`` is the ``dense`` factory with a model and settings). A ``prefix`` entry
    (name ending in ``-``) matches every name that starts with it and passes the rest as its
    positional option (``official-bm25`` -> ``official-`` with ``run=bm25``).
    """

    name: str
    factory: Callable[..., Any]
    options: tuple[Option, ...]
    help: str = ""
    presets: Mapping[str, Any] = field(default_factory=dict)
    source: str = "built-in"

    @property
    def prefix(self) -> bool:
        return self.name.endswith("-")

    def describe(self) -> list[str]:
        """The help of this entry: its line, then one line per option."""
        return [f"{self.name}\t{self.help}" + ("" if self.source == "built-in" else f" [{self.source}]"),
                *(f"    {line}" for line in describe_options(self.options, self.presets))]


class Registry:
    """Named components of one kind: built-ins from ``package``, plugins from entry-point ``group``.

    ``catalogue`` names the module that declares every built-in (:meth:`declare`): the only one
    :meth:`load_builtins` imports. Without one, every public module of ``package`` is imported.
    """

    def __init__(self, kind: str, group: str, package: str, catalogue: str | None = None):
        self.kind = kind
        self.group = group
        self.package = package
        self.catalogue = catalogue
        self._entries: dict[str, Entry] = {}
        self._builtins_loaded = False
        self._shadow_warned: set[str] = set()
        #: ``adapt(obj, name) -> factory | None``: turn an entry point's object that is not a factory
        #: (a PyTerrier transformer) into one; the catalogue declares the built-in ones
        #: (:meth:`declare_adapter`), imported when a plugin's object first needs adapting
        self.adapters: list[Callable[[Any, str], Callable[..., Any] | None]] = []

    # -- registering
    def register(self, name: str, *, options: Sequence[Option] = (), help: str = "",
                 **presets: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: register ``factory(context, **options)`` under ``name``.

        Registering the same factory again under another name with ``presets`` makes a preset.
        """

        def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
            self.add(Entry(name, factory, tuple(options), help, dict(presets),
                           source=getattr(factory, "__module__", "") if not self._is_builtin(factory) else "built-in"))
            return factory

        return decorate

    def declare(self, name: str, factory: str, *, options: Sequence[Option] = (), help: str = "",
                **presets: Any) -> None:
        """Declare the component ``name`` without importing it: ``factory`` is
        ``"package.module:function"``, imported when the component is first built; ``options``,
        ``help`` and ``presets`` are as for :meth:`register`."""
        lazy = LazyCallable(factory)
        self.add(Entry(name, lazy, tuple(options), help, dict(presets),
                       source="built-in" if self._is_builtin(lazy) else lazy.__module__))

    def declare_adapter(self, adapter: str) -> None:
        """Add the adapter ``"package.module:function"`` (see :attr:`adapters`), imported when first used."""
        self.adapters.append(LazyCallable(adapter))

    def add(self, entry: Entry) -> None:
        if entry.name in self._entries:
            raise ValueError(f"{self.kind} {entry.name!r} registered twice")
        declared = {option.name for option in entry.options}
        undeclared = set(entry.presets) - declared - {a for o in entry.options for a in o.aliases}
        if undeclared:
            raise ValueError(f"{self.kind} {entry.name!r}: presets for undeclared options {sorted(undeclared)}")
        self._entries[entry.name] = entry

    def unregister(self, name: str) -> Entry:
        """Remove and return a registered entry (tests, or a plugin replacing a component)."""
        return self._entries.pop(name)

    def _is_builtin(self, factory: Callable[..., Any]) -> bool:
        return str(getattr(factory, "__module__", "")).startswith(self.package + ".")

    # -- loading
    def load_builtins(self) -> None:
        """Import the catalogue that declares the built-ins (without one: every public module of the
        built-in package, each registering itself). Idempotent."""
        if self._builtins_loaded:
            return
        self._builtins_loaded = True
        if self.catalogue is not None:
            importlib.import_module(self.catalogue)
            return
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{self.package}.{module.name}")

    def _entry_points(self) -> list[metadata.EntryPoint]:
        return list(metadata.entry_points(group=self.group))

    def _load_entry_point(self, point: metadata.EntryPoint) -> None:
        if point.name in self._entries:
            return
        try:
            loaded = point.load()
        except Exception as error:  # noqa: BLE001 - a broken plugin must not be a traceback
            raise WorkbenchError(f"{self.kind} plugin {point.name!r} ({point.value}, entry point group "
                                 f"{self.group}) failed to load: {type(error).__name__}: {error}") from None
        if point.name in self._entries:  # the module registered itself on import
            return
        self.load_builtins()  # their adapters turn objects of other libraries into factories
        for adapt in self.adapters:
            factory = adapt(loaded, point.name)
            if factory is not None:  # e.g. a PyTerrier transformer is a component as it is
                dist = getattr(point, "dist", None)
                self.add(Entry(point.name, factory, (), f"{type(loaded).__name__} {loaded!r}"[:200],
                               source=f"plugin {dist.name}" if dist is not None else "plugin"))
                return
        if not callable(loaded):
            raise WorkbenchError(f"{self.kind} plugin {point.name!r} ({point.value}) is not a factory")
        doc = (getattr(loaded, "__doc__", "") or "").strip().splitlines()
        dist = getattr(point, "dist", None)
        source = f"plugin {dist.name}" if dist is not None else "plugin"
        self.add(Entry(point.name, loaded, tuple(getattr(loaded, "options", ())),
                       str(getattr(loaded, "help", "") or (doc[0] if doc else "")), source=source))

    def load_plugins(self) -> None:
        """Load every entry point of the group (for listing)."""
        for point in self._entry_points():
            if point.name in self._entries:
                if point.name not in self._shadow_warned and self._entries[point.name].source == "built-in":
                    self._shadow_warned.add(point.name)
                    warnings.warn(f"{self.kind} plugin {point.name!r} ({point.value}) is shadowed by an existing "
                                  f"{self.kind} of that name", RuntimeWarning, stacklevel=2)
                continue
            self._load_entry_point(point)

    # -- looking up
    def names(self) -> list[str]:
        """All registered names (built-ins and plugins)."""
        self.load_builtins()
        self.load_plugins()
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[name] for name in self.names()]

    def lookup(self, name: str) -> tuple[Entry, dict[str, str]]:
        """The entry for ``name`` and the option values its name implies (prefix entries)."""
        found = self._find(name)
        if found is None:
            self.load_builtins()
            found = self._find(name)
        if found is None:
            for point in self._entry_points():
                if point.name == name:
                    self._load_entry_point(point)
            found = self._find(name)
        if found is None:
            known = ", ".join(self._display_names())
            raise WorkbenchError(f"unknown {self.kind} {name!r}; known {self.kind}s: {known}")
        return found

    def _display_names(self) -> list[str]:
        return [name + "<name>" if name.endswith("-") else name for name in self.names()]

    def _find(self, name: str) -> tuple[Entry, dict[str, str]] | None:
        if name in self._entries:
            return self._entries[name], {}
        for entry in self._entries.values():
            if entry.prefix and name.startswith(entry.name) and len(name) > len(entry.name):
                positional = next((o for o in entry.options if o.positional), None)
                if positional is not None:
                    return entry, {positional.name: name[len(entry.name):]}
        return None

    def parse(self, spec: str, **overrides: Any) -> tuple[Entry, dict[str, Any]]:
        """``name[:options]`` -> (entry, every option's typed value)."""
        name, text = split_spec(spec)
        if not name:
            raise WorkbenchError(f"empty {self.kind} name in {spec!r}")
        entry, implied = self.lookup(name)
        owner = f"{entry.name} {self.kind}"
        given = {**implied, **spec_values(entry.options, text, spec, owner), **overrides}
        return entry, parse_options(entry.options, given, owner, entry.presets)

    def build(self, spec: str, context: Any, **overrides: Any) -> Any:
        """Build the component that ``spec`` names with ``context``."""
        entry, values = self.parse(spec, **overrides)
        return entry.factory(context, **values)

    def describe(self) -> str:
        """Help text of every entry and its options."""
        return "\n".join(line for entry in self.entries() for line in entry.describe())

    def __contains__(self, name: str) -> bool:
        self.load_builtins()
        return name in self._entries

    def __getitem__(self, name: str) -> Entry:
        return self.lookup(name)[0]

    def __iter__(self):
        return iter(self.names())
