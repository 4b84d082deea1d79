"""EmojiFlow's settings: one file of defaults (`config/base.json`), and config files that name what they `extends`
and hold only what differs. `parse` is the flow's `Config` parser: it follows `extends`, deep-merges, and refuses
an unknown key or a wrong type with a message that names its path. `with_overrides` applies a run's parameters
(and tests' changes) as dotted keys.

    {"extends": "aws.json", "train": {"backend": "sagemaker"}}

`extends` names a file in the working directory (or a path), else in the project's `config/` folder; a file it
names may extend another, found beside it. A config without `extends` extends `base.json`.
"""
import copy
import difflib
import json
from pathlib import Path

from emoji_reco.errors import ConfigError

BASE = "base.json"


def _config_dir() -> Path:
    """The config files an installed package ships (setup.py maps config/ to emoji_reco/config), else the
    checkout's config/ that an editable install runs from."""
    packaged = Path(__file__).resolve().parent / "config"
    return packaged if (packaged / BASE).is_file() else packaged.parent.parent / "config"


CONFIG_DIR = _config_dir()
# Keys whose value is free-form (a mapping of step names, decorator arguments): checked as a whole, not key by key.
FREE_FORM = {"platform.timeout_minutes", "platform.schedule", "platform.trigger", "platform.remote_environment",
             "monitor.schedule"}
# Keys whose default is null, and what else they take.
NULLABLE = {"data.text_column": str, "data.label_column": str, "data.labels": str, "train.pad_to_length": int,
            "model.ngram.weight": float, "platform.datastore": str, "platform.batch_queue": str, "platform.batch_image": str,
            "platform.schedule": dict, "platform.trigger": dict, "sagemaker.role": str, "sagemaker.training.image": str,
            "serve.capture.uri": str, "monitor.retrain_data": str, "monitor.schedule": dict}

# Numbers that must lie in a closed range.
RANGES = {"model.ngram.weight": (0.0, 1.0), "serve.capture.sample": (0.0, 1.0), "data.validation_fraction": (0.0, 0.9),
          "data.test_fraction": (0.0, 0.9), "train.label_smoothing": (0.0, 0.5)}
# Strings that name one of a few choices.
CHOICES = {"model.pooling": ("auto", "cls", "mean")}


def _read(name: str, beside: Path | None, chain: tuple) -> dict:
    candidates = [(beside or Path.cwd()) / name, CONFIG_DIR / name]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise ConfigError(f"extends: {name} not found (looked in {', '.join(str(c.parent) for c in candidates)}).")
    if path.resolve() in chain:
        raise ConfigError(f"extends: {name} extends itself ({' → '.join(p.name for p in chain)} → {name}).")
    return _load(path.read_text(encoding="utf-8"), path.parent, (*chain, path.resolve()), path.name)


def _load(text: str, beside: Path | None, chain: tuple, name: str) -> dict:
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{name} is not valid JSON: {exc}.") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"{name} must be a JSON object of sections.")
    parent_name = config.pop("extends", None if chain and chain[-1].name == BASE else BASE)
    if parent_name is None:
        return config
    if not isinstance(parent_name, str):
        raise ConfigError(f"{name}: extends must name a file, not {parent_name!r}.")
    return merge(_read(parent_name, beside, chain), config)


def merge(base: dict, changes: dict, prefix: str = "") -> dict:
    """`base` with `changes` laid over it, section by section (a free-form value is replaced whole)."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and f"{prefix}{key}" not in FREE_FORM:
            out[key] = merge(out[key], value, f"{prefix}{key}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def defaults() -> dict:
    return json.loads((CONFIG_DIR / BASE).read_text(encoding="utf-8"))


def _kind(value) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def _fits(value, default, path: str) -> bool:
    if default is None:
        kind = NULLABLE.get(path, object)
        return value is None or isinstance(value, (int, float) if kind is float else kind) and not isinstance(value, bool)
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def validate(config: dict, reference: dict, prefix: str = "") -> dict:
    """Refuse keys the defaults don't have and values of another type, naming the key's path."""
    for key, value in config.items():
        path = f"{prefix}{key}"
        if key not in reference:
            near = difflib.get_close_matches(key, list(reference), n=1)
            hint = f"; did you mean {prefix}{near[0]}?" if near else f"; known keys: {', '.join(reference)}"
            raise ConfigError(f"{path}: unknown key{hint}")
        default = reference[key]
        if not _fits(value, default, path):
            wanted = _kind(default) if default is not None else f"{_kind(NULLABLE[path]())} or null"
            raise ConfigError(f"{path}: expected {wanted}, got {json.dumps(value)}")
        low, high = RANGES.get(path, (None, None))
        if low is not None and value is not None and not low <= value <= high:
            raise ConfigError(f"{path}: expected a number from {low} to {high}, got {json.dumps(value)}")
        if path in CHOICES and value not in CHOICES[path]:
            raise ConfigError(f"{path}: expected one of {', '.join(map(json.dumps, CHOICES[path]))}, "
                              f"got {json.dumps(value)}")
        if isinstance(default, dict) and path not in FREE_FORM:
            validate(value, default, f"{path}.")
    return config


def parse(text: str) -> dict:
    """The flow's Config parser: a config file's (or `--config-value`'s) text → every setting, checked."""
    return validate(_load(text, None, (), "the config"), defaults())


def load(path: str) -> dict:
    """A config file's every setting, checked; `extends` looks beside the file first."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"Config file {path} not found.")
    return validate(_load(file.read_text(encoding="utf-8"), file.parent, (file.resolve(),), file.name), defaults())


def with_overrides(config: dict, overrides: dict) -> dict:
    """A copy of `config` with `{"section.key": value}` overrides (any depth); None or "" leave a value as it is."""
    out = copy.deepcopy(json.loads(json.dumps(config)))
    for dotted, value in overrides.items():
        if value is None or value == "":
            continue
        *parents, key = dotted.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[key] = value
    return validate(out, defaults())
