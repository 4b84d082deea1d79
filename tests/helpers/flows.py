"""Running EmojiFlow in tests: configs passed as values through Metaflow's Runner, and reading what a run
left."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLOW = str(ROOT / "flows" / "emoji_flow.py")
DEPLOY_FLOW = str(ROOT / "flows" / "deploy_flow.py")
MONITOR_FLOW = str(ROOT / "flows" / "monitor_flow.py")


def flow_config(extends: str = "local.json", **changes) -> dict:
    """A config value that extends a config file with `{"section.key": value}` changes (as a user's config
    would)."""
    from emoji_reco.settings import merge

    config = {"extends": extends}
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        nested = {key: value}
        for part in reversed(parents):
            nested = {part: nested}
        config = merge(config, nested)
    return config


def tiny_flow_config(model_dir: Path, **changes) -> dict:
    """A flow config that trains the tiny model on a small demo set in seconds."""
    return flow_config(**{"model.base": str(model_dir), "model.max_length": 32, "demo.rows": 600,
                          "train.epochs": 1,
                          "train.batch_size": 16, "train.learning_rate": 1e-3,
                          "train.bucket_boundaries": [8, 16],
                          "gate.min_score": 0.0, **changes})


def run_flow(config: dict, resume_from: str | None = None, flow: str = FLOW, env: dict | None = None,
             **params):
    """Run (or resume) a flow (EmojiFlow unless `flow` says) through Metaflow's Runner with `config` as its
    config value (and `env` added to the environment); return (status, run, stdout+stderr)."""
    import os

    from metaflow import Runner

    if resume_from:
        with Runner(flow, show_output=False).resume(origin_run_id=resume_from) as result:
            return result.status, result.run, result.stdout + result.stderr
    runner = Runner(flow, show_output=False, config_value=[("config", config)],
                    env={**os.environ, **(env or {})})
    with runner.run(**params) as result:
        return result.status, result.run, result.stdout + result.stderr


GATED_FLOW = """
from metaflow import FlowSpec, step


class GatedFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.train)

    @step
    def train(self):
        self.bundle_uri = {bundle!r}
        self.next(self.evaluate)

    @step
    def evaluate(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    GatedFlow()
"""


def gated_run(tmp_path: Path, bundle_uri: str = "") -> str:
    """A run of a flow of its own (GatedFlow, so the shared champion stays as it is) that has what the local
    registry reads of an EmojiFlow run: a `train` step's `bundle_uri` and a finished `evaluate` step; its
    pathspec."""
    from metaflow import Runner

    flow = tmp_path / "gated_flow.py"
    flow.write_text(GATED_FLOW.format(bundle=bundle_uri))
    with Runner(str(flow), show_output=False).run() as result:
        return result.run.pathspec


def task(run, step):
    return run[step].task


def card_json(run, step, card_id) -> str:
    """The components of a rendered card, as JSON text."""
    from metaflow.cards import get_cards

    return card_components(get_cards(task(run, step), id=card_id)[0].get())


def card_components(html: str) -> str:
    """The components a card's HTML carries (Metaflow embeds them as base64 JSON), as JSON text."""
    import base64
    import re

    payload = re.search(r'__MF_DATA__\["[^"]+"\] = "([^"]+)"', html).group(1)
    return json.dumps(json.loads(base64.b64decode(payload)), ensure_ascii=False)
