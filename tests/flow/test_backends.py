"""The seam between local and AWS: one trainer or target per config value; the flow's steps never ask which."""
import ast

import pytest

from helpers.flows import FLOW
from emoji_reco import backends
from emoji_reco.settings import ConfigError, defaults, with_overrides


def test_the_config_picks_the_trainer_and_the_target():
    local = defaults()
    assert isinstance(backends.trainer(local), backends.LocalTrainer)
    assert isinstance(backends.target(local), backends.LocalTarget)
    sagemaker = with_overrides(local, {"train.backend": "sagemaker", "deploy.target": "sagemaker"})
    assert isinstance(backends.trainer(sagemaker), backends.SageMakerTrainer)
    assert isinstance(backends.target(sagemaker), backends.SageMakerTarget)
    with pytest.raises(ConfigError, match="deploy.target: 'kubernetes' is not one of 'local', 'sagemaker'"):
        backends.target(with_overrides(local, {"deploy.target": "kubernetes"}))


def test_every_trainer_and_target_has_the_same_interface():
    def signature(cls, name):
        return list(getattr(cls, name).__code__.co_varnames[: getattr(cls, name).__code__.co_argcount])

    for table, methods in ((backends.TRAINERS, ["train"]), (backends.TARGETS, ["champion", "register", "deploy"])):
        first, *others = table.values()
        for method in methods:
            assert all(signature(cls, method) == signature(first, method) for cls in others), method


def test_the_flows_steps_contain_no_backend_choices():
    tree = ast.parse(open(FLOW).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in ("train", "evaluate", "register", "deploy"):
            names = {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
            assert not names & {"local", "sagemaker", "backend", "target"}, (node.name, names)
            imports = {a.name for n in ast.walk(node) if isinstance(n, ast.ImportFrom) for a in n.names}
            assert not {m for m in imports if m.startswith("sagemaker")}, (node.name, imports)
