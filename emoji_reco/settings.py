"""A run's settings: the Metaflow Config file, with the run's parameters applied on top."""
import copy
import json


def resolve(config, overrides: dict) -> dict:
    """A plain dict of the config with `{"section.key": value}` overrides applied (None/"" leave the config value)."""
    settings = copy.deepcopy(json.loads(json.dumps(config)))
    for dotted, value in overrides.items():
        if value is None or value == "":
            continue
        section, key = dotted.split(".", 1)
        settings.setdefault(section, {})[key] = value
    return settings
