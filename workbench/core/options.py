"""Options declared once: every reranker and first stage lists its options in one place.

A component declares a tuple of :class:`Option` values (name, type, default, choices,
aliases, help). Parsing a spec such as ``cross-encoder:/path/to/model,precision=bf16``,
validation, defaults and the help text of ``workbench rerankers`` / ``workbench
first-stages`` all come from that declaration, so they cannot drift apart::

    OPTIONS = (
        Option("model", str, "cross-encoder/ms-marco-MiniLM-L-6-v2", positional=True,
               help="Hugging Face id or local path"),
        Option("batch_size", int, None, minimum=1, help="pairs per batch (default: by device)"),
        Option("precision", str, None, choices={"fp32": "fp32", "float32": "fp32", "bf16": "bf16"},
               aliases=("dtype",), help="fp32 (exact) or bf16 autocast"),
    )
    values = parse_options(OPTIONS, {"model": "x", "dtype": "bfloat16"}, owner="cross-encoder reranker")
    # -> {"model": "x", "batch_size": None, "precision": "bf16"}

Unknown or ill-typed options are one clear :class:`~workbench.core.errors.WorkbenchError` line.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

from .errors import WorkbenchError

#: spellings that mean "no value: let the component decide" for an option whose default is None
NONE_SPELLINGS = ("", "auto", "none")
TRUE_SPELLINGS = ("1", "true", "yes", "on")
FALSE_SPELLINGS = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Option:
    """One declared option of a component.

    ``type`` is ``str``, ``int``, ``float`` or ``bool``; values given as text (from a spec) are
    converted. ``choices`` restricts the value: a sequence of allowed values, or a mapping from
    accepted spellings to canonical values (``{"bfloat16": "bf16", "bf16": "bf16"}``).
    ``aliases`` are other names the option answers to (``dtype`` for ``precision``). An option
    whose ``default`` is None accepts ``auto``/``none``/empty as "let the component decide".
    ``positional``: the first value of a spec may omit ``name=`` (``cross-encoder:<model>``);
    ``raw`` additionally takes the whole rest of the spec as that value, commas and all
    (``run:<path>``).
    """

    name: str
    type: type = str
    default: Any = None
    help: str = ""
    choices: Sequence[str] | Mapping[str, str] | None = None
    aliases: tuple[str, ...] = ()
    minimum: float | None = None
    positional: bool = False
    raw: bool = False

    @property
    def nullable(self) -> bool:
        return self.default is None

    def but(self, **changes: Any) -> "Option":
        """This option with some fields changed: a component that shares an option declared once
        (``BATCH_SIZE``) but has its own default or help says only what differs::

            BATCH_SIZE.but(default=32, help="texts per batch")
        """
        return replace(self, **changes)

    def _choice_map(self) -> dict[str, str] | None:
        if self.choices is None:
            return None
        if isinstance(self.choices, Mapping):
            return dict(self.choices)
        return {str(choice): str(choice) for choice in self.choices}

    def parse(self, value: Any, owner: str) -> Any:
        """The typed, validated value of this option; ``owner`` names the component in errors."""
        mapping = self._choice_map()
        is_choice = mapping is not None and isinstance(value, str) and value.strip().lower() in mapping
        if value is None or (self.nullable and not is_choice and isinstance(value, str)
                             and value.strip().lower() in NONE_SPELLINGS):
            if self.nullable:
                return None
            raise WorkbenchError(f"option {self.name} of the {owner} needs a value")
        if self.type is bool:
            return _parse_bool(self.name, value, owner)
        if self.type in (int, float):
            if isinstance(value, bool):
                raise WorkbenchError(f"option {self.name}={value!r} of the {owner} is not a number")
            try:
                number = self.type(value) if self.type is float else _parse_int(value)
            except (TypeError, ValueError):
                what = "an integer" if self.type is int else "a number"
                raise WorkbenchError(f"option {self.name}={value!r} of the {owner} is not {what}") from None
            if self.minimum is not None and number < self.minimum:
                raise WorkbenchError(f"option {self.name}={number} of the {owner} must be at least "
                                     f"{_number_text(self.minimum)}")
            return number
        text = str(value).strip()
        if mapping is not None:
            key = text.lower()
            if key not in mapping:
                raise WorkbenchError(f"option {self.name} must be one of {', '.join(mapping)}, not {value!r} "
                                     f"(the {owner})")
            return mapping[key]
        return text

    def describe(self, preset: Any = None, has_preset: bool = False) -> str:
        """One help line: ``name (type, choices) = default  help``."""
        kind = self.type.__name__
        mapping = self._choice_map()
        if mapping is not None:
            kind = "|".join(dict.fromkeys(mapping.values()))
        if self.minimum is not None:
            kind += f" >= {_number_text(self.minimum)}"
        extras = [kind]
        if self.positional:
            extras.append("positional")
        if self.aliases:
            extras.append("alias " + ", ".join(self.aliases))
        default = preset if has_preset else self.default
        shown = "auto" if default is None else str(default).lower() if isinstance(default, bool) else default
        return f"{self.name} ({'; '.join(extras)}) = {shown}" + (f"  {self.help}" if self.help else "")


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _parse_int(value: Any) -> int:
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    return int(value)


def _parse_bool(name: str, value: Any, owner: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_SPELLINGS:
        return True
    if text in FALSE_SPELLINGS:
        return False
    raise WorkbenchError(f"option {name} of the {owner} must be true or false, not {value!r}")


def split_top_level(text: str, opening: str, closing: str) -> tuple[list[str], int]:
    """``text`` split at commas and whitespace outside ``opening``/``closing`` brackets (empty parts
    dropped), and the bracket depth left open at its end (0 when balanced)."""
    parts, current, depth = [], "", 0
    for char in text:
        if depth == 0 and (char == "," or char.isspace()):
            if current:
                parts.append(current)
            current = ""
            continue
        depth = max(depth + (char == opening) - (char == closing), 0)
        current += char
    if current:
        parts.append(current)
    return parts, depth


def split_spec(spec: str) -> tuple[str, str]:
    """``name`` or ``name:rest`` -> (name, rest); the name is stripped."""
    name, _, rest = spec.partition(":")
    return name.strip(), rest


def spec_values(declared: Sequence[Option], text: str, spec: str, owner: str) -> dict[str, str]:
    """The raw ``key=value`` pairs of a spec's option text (after ``name:``).

    A first part without ``=`` is the value of the positional option (all of ``text`` when that
    option is ``raw``); any other part without ``=`` is an error.
    """
    positional = next((option for option in declared if option.positional), None)
    if positional is not None and positional.raw and text:
        return {positional.name: text}
    values: dict[str, str] = {}
    if not text:
        return values
    for position, part in enumerate(text.split(",")):
        key, eq, value = part.partition("=")
        if eq:
            values[key.strip()] = value.strip()
        elif position == 0 and positional is not None:
            values[positional.name] = part.strip()
        else:
            raise WorkbenchError(f"bad option {part!r} in {spec!r}: expected key=value ({owner})")
    return values


def parse_options(declared: Sequence[Option], given: Mapping[str, Any], owner: str,
                  presets: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every declared option's typed value: ``given`` over ``presets`` over the declared defaults.

    Aliases are accepted for the option's name (giving both is an error); a name that is not
    declared is an error listing the known ones.
    """
    by_name: dict[str, Option] = {}
    for option in declared:
        for name in (option.name, *option.aliases):
            by_name[name] = option
    raw: dict[str, Any] = {}
    for source in (presets or {}, given):
        seen_here: dict[str, str] = {}
        for name, value in source.items():
            option = by_name.get(name)
            if option is None:
                known = ", ".join(option.name for option in declared) or "none"
                raise WorkbenchError(f"unknown option {name!r} for the {owner}; known: {known}")
            if option.name in seen_here and seen_here[option.name] != name:
                raise WorkbenchError(f"options {seen_here[option.name]} and {name} of the {owner} are the same "
                                     "option; give one")
            seen_here[option.name] = name
            raw[option.name] = value
    values = {}
    for option in declared:
        values[option.name] = option.parse(raw[option.name], owner) if option.name in raw else option.default
    return values


def describe_options(declared: Sequence[Option], presets: Mapping[str, Any] | None = None) -> list[str]:
    """Help lines of the declared options (preset values shown as the defaults)."""
    presets = presets or {}
    return [option.describe(presets.get(option.name), option.name in presets) for option in declared]
