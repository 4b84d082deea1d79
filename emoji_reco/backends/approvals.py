"""Deploys without a training run (DeployFlow, `emoji-reco models approve --deploy`): a person's approval
overrides the gate; the model still serves only after a smoke prediction, and its run becomes the champion."""
from emoji_reco import registry
from emoji_reco.backends import target
from emoji_reco.backends.contract import Approved, Deployment
from emoji_reco.settings import Settings

# What such a deploy asks the model before it serves.
SMOKE_TEXTS = ["finally friday, see you all tonight", "my phone died again, great start to the week"]


def serve_approved(settings: Settings, approved: Approved) -> Deployment:
    """Serve a model the target found approved where `settings` say, and make its run the champion
    (DeployFlow's deploy step)."""
    deployment = target(settings).serve(approved, SMOKE_TEXTS)
    registry.make_champion(approved.run, settings.deploy.endpoint)
    return deployment


def deploy_approved(settings: Settings, model: str) -> Deployment:
    """Find an approved model and serve it as DeployFlow does, in one go."""
    return serve_approved(settings, target(settings).approved(model))
