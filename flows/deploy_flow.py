"""DeployFlow: serve a model a person approved, with no training run: the same smoke prediction, blue/green update,
rollback and champion crowning as EmojiFlow's deploy step. On AWS, approving a package in SageMaker's Model
Registry starts it (`emoji-reco aws wire-deploy`)."""
from pathlib import Path

from metaflow import Config, FlowSpec, Parameter, card, config_expr, current, project, step

from emoji_reco.placement import Placement
from emoji_reco.settings import parse

DEFAULT_CONFIG = str(Path(__file__).resolve().parent.parent / "config" / "local.json")


@Placement(retrains=False)
@project(name=config_expr("config.platform.project"))
class DeployFlow(FlowSpec):
    """Serve an approved model."""

    config = Config("config", default=DEFAULT_CONFIG, parser=parse,
                    help="JSON settings: the same config as EmojiFlow's (its deploy target and endpoint).")
    model = Parameter("model", default="newest",
                      help="A SageMaker model package ARN or version, or a run (EmojiFlow/1234) for the local target; "
                           "'newest': the newest approved.")

    @step
    def start(self):
        """Find the approved model to serve."""
        from emoji_reco import backends, placement, settings, storage

        self.settings = settings.with_overrides(self.config, {})
        placement.check_datastore(self.settings, storage.datastore_root(self))
        self.approved = backends.target(self.settings).approved(self.model)
        print(f"serving {self.approved['run']} (version {self.approved['version']}) on {self.settings['deploy']['endpoint']}")
        self.next(self.deploy)

    @card(id="deployment")
    @step
    def deploy(self):
        """Serve it after a smoke prediction (blue/green on SageMaker) and crown its run."""
        from emoji_reco import cards, registry

        self.deployment = registry.serve_approved(self.settings, self.approved)
        cards.deployment_card(current.card["deployment"], self.deployment)
        self.next(self.end)

    @step
    def end(self):
        """Say what serves and how to ask it."""
        print(f"{self.deployment['path']} serves version {self.deployment['version']}\nask it: {self.deployment['query']}")


if __name__ == "__main__":
    DeployFlow()
