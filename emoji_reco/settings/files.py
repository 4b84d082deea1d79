"""Config files: `config/base.json` holds every default; a config file names what it `extends` and holds only
what differs. `extends` names a file in the working directory (or a path), else in the project's `config/`
folder; a file it names may extend another, found beside it. A config without `extends` extends `base.json`.

    {"extends": "aws.json", "train": {"backend": "sagemaker"}}
"""
import copy
import json
from pathlib import Path

from emoji_reco.errors import ConfigError
from emoji_reco.settings.sections import FREE_FORM

BASE = "base.json"


def _config_dir() -> Path:
    """The config files an installed package ships (setup.py maps config/ to emoji_reco/config), else the
    checkout's config/ that an editable install runs from."""
    packaged = Path(__file__).resolve().parent.parent / "config"
    return packaged if (packaged / BASE).is_file() else packaged.parent.parent / "config"


CONFIG_DIR = _config_dir()


def from_text(text: str, name: str = "the config") -> dict:
    """A config's text with what it `extends` laid under it; `extends` looks in the working directory
    first."""
    return _load(text, None, (), name)


def from_file(path: str) -> dict:
    """A config file with what it `extends` laid under it; `extends` looks beside the file first."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"Config file {path} not found.")
    return _load(file.read_text(encoding="utf-8"), file.parent, (file.resolve(),), file.name)


def _read(name: str, beside: Path | None, chain: tuple) -> dict:
    candidates = [(beside or Path.cwd()) / name, CONFIG_DIR / name]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise ConfigError(f"extends: {name} not found (looked in "
                          f"{', '.join(str(c.parent) for c in candidates)}).")
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
    """Every setting's default (`config/base.json`)."""
    return json.loads((CONFIG_DIR / BASE).read_text(encoding="utf-8"))
