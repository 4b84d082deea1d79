"""EmojiFlow's settings: `config/base.json`'s defaults under a config file's changes (`files`), checked
against one typed model per section (`sections`). `parse` is the flows' `Config` parser and `load` reads a
file; both give the plain dict a run stores (the Metaflow client and UI read it without this package). `typed`
turns that dict into `Settings`, what the code is handed: `settings.train.precision`. `with_overrides` applies
a run's parameters (and tests' changes) as dotted keys.
"""
import difflib
import json
from typing import get_args

from pydantic import ValidationError

from emoji_reco.errors import ConfigError
from emoji_reco.settings.files import CONFIG_DIR, defaults, from_file, from_text, merge
from emoji_reco.settings.sections import FREE_FORM, Settings

__all__ = ["CONFIG_DIR", "FREE_FORM", "Settings", "defaults", "load", "merge", "parse", "typed",
           "with_overrides"]

KINDS = {"int_type": "a whole number", "float_type": "a number", "bool_type": "true or false",
         "string_type": "a string", "list_type": "a list", "dict_type": "an object",
         "model_type": "an object"}


def typed(config: dict) -> Settings:
    """A config (as `parse`, `load` or `with_overrides` give it) as `Settings`; a `ConfigError` naming the
    first key that is wrong."""
    try:
        return Settings.model_validate(config)
    except ValidationError as exc:
        raise ConfigError(_problem(exc.errors()[0])) from None


def _field(loc: tuple):
    """The model that holds the last key of `loc`, and that key's field (None past the models: a list
    item)."""
    model, field = Settings, None
    for part in loc:
        fields = getattr(model, "model_fields", None)  # a section's, not a list's or a mapping's
        if not isinstance(fields, dict) or part not in fields:
            return model, None
        field = fields[part]
        model, holder = field.annotation, model
    return holder, field


def _problem(error: dict) -> str:
    """One line for a pydantic error: the key's dotted path, what it takes, what it got."""
    loc = tuple(str(part) for part in error["loc"])
    path, got = ".".join(loc), json.dumps(error["input"])
    holder, field = _field(loc)
    if error["type"] == "missing":
        return f"{path}: missing (config/base.json has every key; a config holds what differs)"
    if error["type"] == "extra_forbidden":
        known = list(holder.model_fields)
        near = difflib.get_close_matches(loc[-1], known, n=1)
        prefix = path[: -len(loc[-1])]
        return f"{path}: unknown key" + (f"; did you mean {prefix}{near[0]}?" if near
                                         else f"; known keys: {', '.join(known)}")
    if error["type"] == "literal_error":
        choices = field.annotation.__args__
        return f"{path}: expected one of {', '.join(map(json.dumps, choices))}, got {got}"
    if error["type"] in ("greater_than_equal", "less_than_equal"):
        low, high = _bounds(field)
        return f"{path}: expected a number from {low} to {high}, got {got}"
    kind = KINDS.get(error["type"], error["msg"])
    nullable = field is not None and type(None) in get_args(field.annotation)
    return f"{path}: expected {kind}{' or null' if nullable else ''}, got {got}"


def _bounds(field) -> tuple:
    """The closed range a number field takes (its own, or that of the number an optional field holds)."""
    optional = get_args(field.annotation)  # (Annotated[float, Field(...)], None) for `Fraction | None`
    inner = [m for a in optional for info in getattr(a, "__metadata__", ()) for m in info.metadata]
    found = {type(m).__name__: m for m in [*field.metadata, *inner]}
    return found["Ge"].ge, found["Le"].le


def parse(text: str) -> dict:
    """The flows' Config parser: a config file's (or `--config-value`'s) text → every setting, checked."""
    config = from_text(text)
    typed(config)
    return config


def load(path: str) -> dict:
    """A config file's every setting, checked; `extends` looks beside the file first."""
    config = from_file(path)
    typed(config)
    return config


def with_overrides(config: dict, overrides: dict) -> dict:
    """A copy of `config` with `{"section.key": value}` overrides (any depth); None or "" leave a value as it
    is."""
    out = json.loads(json.dumps(config))  # a deep copy, of plain values
    for dotted, value in overrides.items():
        if value is None or value == "":
            continue
        *parents, key = dotted.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[key] = value
    typed(out)
    return out
