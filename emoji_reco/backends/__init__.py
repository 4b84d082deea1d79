"""Where a run trains, and where its model is registered and served, chosen by config (`train.backend`,
`deploy.target`) so that no flow step asks which. The contract is `backends/contract.py` (`Trainer`,
`Target`); a new backend is a module of its own holding a class for each it provides, and a line in each table
below that names the class as a string, so that choosing one never imports another's SDK."""
import importlib

from emoji_reco.errors import ConfigError
from emoji_reco.settings import Settings

TRAINERS = {
    "local": "emoji_reco.backends.local.LocalTrainer",
    "sagemaker": "emoji_reco.backends.sagemaker.SageMakerTrainer",
}
TARGETS = {
    "local": "emoji_reco.backends.local.LocalTarget",
    "sagemaker": "emoji_reco.backends.sagemaker.SageMakerTarget",
}


def load(path: str):
    """The class a dotted `module.Class` string names."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _pick(table: dict, key: str, value: str):
    if value not in table:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, table))}.")
    return load(table[value])


def trainer(settings: Settings):
    """The trainer `train.backend` names (a `contract.Trainer`)."""
    return _pick(TRAINERS, "train.backend", settings.train.backend)(settings)


def target(settings: Settings):
    """The deploy target `deploy.target` names (a `contract.Target`)."""
    return _pick(TARGETS, "deploy.target", settings.deploy.target)(settings)
