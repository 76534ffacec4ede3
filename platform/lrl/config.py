"""Typed configuration: YAML files plus dotted overrides, validated once at load.

Every section of a job is a pydantic model that forbids unknown keys, is frozen after load and
documents each field with the docstring written under it (``use_attribute_docstrings``), so
``lrl <command> --help`` can print a reference generated from the same source the code reads.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import re
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError


class ConfigError(ValueError):
    """A config file or override that cannot be loaded; the message names the key path."""


class StrictModel(BaseModel):
    """Base for every config section: unknown keys and wrong types are errors, no mutation."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        validate_default=True,
        protected_namespaces=(),
    )


def home(value: str | None) -> str | None:
    """A local path with a leading ``~`` expanded to the home folder; None and URIs as given. The
    shell leaves ``output.root=~/runs`` alone (``~`` is expanded only at a word's start or after
    the ``=`` of a variable assignment), and YAML values never: a literal ``~`` folder was made in
    the working folder, and inputs under ``~/data`` were "not found"."""
    return os.path.expanduser(value) if value and value.startswith("~") else value


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into a key path and a YAML-parsed value (``[x,y]`` is a list)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. train.lr=3e-5")
    key, raw = text.split("=", 1)
    key = _bracket_indices(key.strip())
    path = [p for p in key.split(".") if p]
    if not path:
        raise ConfigError(f"override {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {key}: value {raw!r} is not valid YAML: {exc}") from exc
    if isinstance(value, dict) and raw.rstrip().endswith(":") and not raw.lstrip().startswith("{"):
        # YAML reads ``preset:`` (a name left out) as the mapping {preset: null}, and the error
        # said only "Input should be a valid string" of a value the user never wrote as a mapping.
        value = raw.strip()
    return path, value


def _bracket_indices(key: str) -> str:
    """``data.ner[0].lang`` as ``data.ner.0.lang``: the reference (``lrl config``) names list
    fields ``data.ner[].lang``, and the indexed spelling was refused as an unknown key ``ner[0]``."""
    key = re.sub(r"\[\s*(-?\d+)\s*\]", r".\1", key)
    if "[" in key or "]" in key:
        raise ConfigError(f"override {key}: name a list element by its index, e.g. "
                          "data.ner[0].lang=yo (or data.ner.0.lang=yo); a whole list is set as "
                          "data.ner=[{path: a.conll, lang: yo}]")
    return key


def apply_override(tree: dict[str, Any], path: list[str], value: Any) -> None:
    """Set ``value`` at ``path`` in a nested dict/list tree, creating dicts on the way."""
    node: Any = tree
    for i, part in enumerate(path[:-1]):
        where = ".".join(path[: i + 1])
        if isinstance(node, list):
            node = node[_index(path, i, node)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"override {'.'.join(path)}: {where} is not a section")
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
    last = path[-1]
    if isinstance(node, list):
        node[_index(path, len(path) - 1, node)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"override {'.'.join(path)}: parent is not a section")


def _index(path: list[str], i: int, node: list) -> int:
    """``path[i]`` as an index of the list ``node`` (at ``path[:i]``)."""
    part, name, key = path[i], ".".join(path[:i]), ".".join(path)
    if not part.lstrip("-").isdigit():
        raise ConfigError(f"override {key}: {name} is a list; name an element by its index "
                          f"({name}[0] or {name}.0), not {part!r}")
    if not -len(node) <= int(part) < len(node):
        have = f"indices 0-{len(node) - 1}" if node else "it is empty"
        raise ConfigError(f"override {key}: {name} has {len(node)} element(s) ({have}), no [{part}]; "
                          f"set the whole list to add one ({name}=[...])")
    return int(part)


def load_tree(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a YAML file (or start empty) and apply dotted overrides, without validating."""
    tree: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{p}: top level must be a mapping, got {type(loaded).__name__}")
        tree = loaded or {}
    for text in overrides:
        keys, value = parse_override(text)
        apply_override(tree, keys, value)
    return tree


def yaml_lines(text: str) -> dict[tuple[Any, ...], int]:
    """The line (1-based) of each key path of a YAML document: ``("data", "ner", 0, "lang") -> 12``."""
    out: dict[tuple[Any, ...], int] = {}

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                out[(*path, k.value)] = k.start_mark.line + 1
                walk(v, (*path, k.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                out[(*path, i)] = item.start_mark.line + 1
                walk(item, (*path, i))

    try:
        walk(yaml.compose(text), ())
    except yaml.YAMLError:  # load_tree has already said what is wrong with it
        pass
    return out


def _source_of(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int], overridden: list[tuple[str, ...]]) -> str:
    """`` (line N)`` of the file, or `` (set by an override)``, for an error at ``loc``: the key
    path alone left a user to find the line in a long job file, and blamed the file for a value
    the command line gave."""
    parts = tuple(str(x) for x in loc)
    if any(parts[: len(o)] == o for o in overridden):
        return " (set by an override)"
    # A section's own check (``finetune.schedule``) fails on keys inside it: name the overrides
    # among them, or it blamed the section's line in the file for a value the command line gave.
    inner = [".".join(o) for o in overridden if o[: len(parts)] == parts]
    said = f"overrides {', '.join(inner)}" if inner else ""
    for n in range(len(loc), 0, -1):  # the deepest key the file has (pydantic adds union branches)
        if loc[:n] in lines:
            return f" (line {lines[loc[:n]]}{'; ' + said if said else ''})"
    return f" ({said})" if said else ""


def validate(model: type[StrictModel], tree: dict[str, Any], origin: str = "config",
             lines: dict[tuple[Any, ...], int] | None = None, overrides: list[str] | tuple[str, ...] = ()) -> StrictModel:
    """Validate ``tree`` against ``model``; errors list every bad key path with its reason, and
    where it was set: the file's line (``lines``, from ``yaml_lines``) or an override."""
    overridden = [tuple(parse_override(o)[0]) for o in overrides]
    try:
        return model.model_validate(tree)
    except ValidationError as exc:
        lines_out = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err["loc"]) or "<root>"
            if lines is not None:  # a file (without one every key came from the overrides)
                where += _source_of(err["loc"], lines, overridden)
            got = err.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            reason = err["msg"]
            if err["type"] == "extra_forbidden":
                # The key a typo meant (``pretrain.step`` -> ``steps``): the bare "unknown key"
                # left the user to search docs/config.md for the spelling.
                near = _meant(model, err["loc"], got)
                reason = "unknown key" + (f" (did you mean {' or '.join(map(repr, near))}?)" if near else "")
            lines_out.append(f"  {where}: {reason}{shown}")
        raise ConfigError(f"{origin}: invalid configuration\n" + "\n".join(lines_out)) from None


def _meant(model: type[BaseModel], loc: tuple[Any, ...], value: Any) -> list[str]:
    """The keys a misspelt ``loc[-1]`` may have meant: the close ones whose field takes ``value``
    (``finetune.modle=preset:micro`` named ``mode``, whose choices are per_language and joint,
    before ``model``), else the closest; at most two."""
    from pydantic import TypeAdapter, ValidationError

    section = _section_at(model, loc[:-1])
    near = difflib.get_close_matches(str(loc[-1]), list(section.model_fields) if section else [], n=3)
    fits = []
    for key in near:
        try:
            TypeAdapter(section.model_fields[key].annotation).validate_python(value)
            fits.append(key)
        except (ValidationError, TypeError, ValueError):
            pass  # a value this field refuses: not what the user meant (or a section: see below)
    return (fits or near[:1])[:2]


def _keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the config section at ``loc`` (list indices skipped); [] when ``loc``
    does not lead to a section."""
    node = _section_at(model, loc)
    return list(node.model_fields) if node else []


def _section_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The config section class at ``loc`` (list indices skipped), or None."""
    node: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):
            continue  # an element of a list of sections: the section itself
        field = node.model_fields.get(str(part)) if node else None
        node = _section_type(field.annotation) if field else None
    return node


def _section_type(ann: Any) -> type[BaseModel] | None:
    """The config section class inside an annotation (``X``, ``list[X]``, ``X | None``)."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        found = _section_type(arg)
        if found is not None:
            return found
    return None


#: Warnings already printed by this ``lrl`` command; None outside one (library use: each prints).
_shown: set[str] | None = None
#: The warnings ``lrl submit`` printed, passed to the cluster's ``lrl run``: it loads the same file,
#: and its log streams back to the same terminal.
SHOWN_ENV = "LRL_SHOWN_WARNINGS"


@contextlib.contextmanager
def command_warnings() -> Iterator[None]:
    """The scope of one ``lrl`` command, in which each config warning prints once."""
    global _shown
    previous = _shown
    try:
        _shown = set(json.loads(os.environ.get(SHOWN_ENV) or "[]"))
    except ValueError:
        _shown = set()
    try:
        yield
    finally:
        _shown = previous


def shown_warnings() -> list[str]:
    """The config warnings this command printed so far."""
    return sorted(_shown or ())


def config_warning(line: str) -> None:
    """Print a config warning (settings of a disabled section) on stderr, once per command: a
    command may load its job more than once, and ``lrl submit``'s cluster run loads it again."""
    if _shown is not None:
        if line in _shown:
            return
        _shown.add(line)
    print(line, file=sys.stderr)


def config_hash(*parts: Any) -> str:
    """Stable short hash of JSON-able parts (configs, input fingerprints) for output folder names."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def dump(cfg: BaseModel) -> str:
    """The resolved config as YAML (what ``--dry-run`` prints)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def describe(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str, str]]:
    """Rows (key, type, default, doc) for every field, recursing into nested sections."""
    rows: list[tuple[str, str, str, str]] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        ann = field.annotation
        nested = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if nested is not None:
            rows.append((key, "section", "", (field.description or nested.__doc__ or "").strip()))
            rows.extend(describe(nested, key + "."))
            continue
        tname = getattr(ann, "__name__", None) or str(ann).replace("typing.", "")
        default = "required" if field.is_required() else _show_default(field)
        rows.append((key, tname, default, (field.description or "").strip()))
    return rows


def _show_default(field: Any) -> str:
    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return "(computed)"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(value, default=str, ensure_ascii=False)


def help_text(model: type[BaseModel], sections: set[str] | None = None) -> str:
    """A plain-text reference of every field (of the top-level ``sections`` only, when given), for
    ``--help`` and ``lrl config``: also the fields of configs inside lists and optional sections
    (``data.ner[].path``, ``translate.train.target``), which ``describe`` alone left out (81 of
    340 fields of a job), as docs/config.md does. A description's later lines stay indented under
    its key (flush left, they read as the next field)."""
    import re

    from lrl.pipeline.reference import rows

    out = []
    for key, tname, default, doc in rows(model):
        if sections is not None and re.split(r"[.\[]", key)[0] not in sections:
            continue
        doc = doc.replace("\n", "\n      ")
        if tname == "section":
            out.append(f"\n[{key}]  {doc}")
        else:
            out.append(f"  {key} ({tname}, default {default})\n      {doc}")
    return "\n".join(out)
