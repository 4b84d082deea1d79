"""DeployFlow: serve a model a person approved, with no training run: the same smoke prediction, blue/green
update, rollback and champion crowning as EmojiFlow's deploy step. On AWS, approving a package in SageMaker's
Model Registry starts it (`emoji-reco aws wire-deploy`)."""
from metaflow import Parameter, card, current, step

from emoji_reco.flowkit.base import BaseFlow


class DeployFlow(BaseFlow):
    """Serve an approved model."""

    model = Parameter("model", default="newest",
                      help="A SageMaker model package ARN or version, or a run (EmojiFlow/1234) "
                           "for the local target; "
                           "'newest': the newest approved.")

    @step
    def start(self):
        """Find the approved model to serve."""
        from emoji_reco import backends

        self.settings = self.settings_with({})
        self.approved = backends.target(self.run_settings).approved(self.model).as_dict()
        print(f"serving {self.approved['run']} (version {self.approved['version']}) on "
              f"{self.run_settings.deploy.endpoint}")
        self.next(self.deploy)

    @card(id="deployment")
    @step
    def deploy(self):
        """Serve it after a smoke prediction (blue/green on SageMaker) and crown its run."""
        from emoji_reco.backends import approvals
        from emoji_reco.backends.contract import Approved
        from emoji_reco.flowkit import cards

        self.deployment = approvals.serve_approved(self.run_settings, Approved.of(self.approved)).as_dict()
        cards.deployment_card(current.card["deployment"], self.deployment)
        self.next(self.end)

    @step
    def end(self):
        """Say what serves and how to ask it."""
        print(f"{self.deployment['path']} serves version {self.deployment['version']}\nask it: "
              f"{self.deployment['query']}")


if __name__ == "__main__":
    DeployFlow()
