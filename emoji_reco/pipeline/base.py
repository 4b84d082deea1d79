"""What every emoji-reco flow shares: the config and its parser, `@project`, placement on Batch or Kubernetes,
retries and timeouts (`Placement`), and fixing a run's settings against the datastore it runs on. A flow subclasses
`BaseFlow` and adds its parameters and steps; `start` opens with `self.settings = self.fix_settings({...})`."""
from metaflow import Config, FlowSpec, config_expr, project

from emoji_reco.pipeline.placement import Placement
from emoji_reco.settings import CONFIG_DIR, parse


@Placement
@project(name=config_expr("config.platform.project"))
class BaseFlow(FlowSpec):
    """An emoji-reco flow (no steps of its own)."""

    config = Config("config", default=str(CONFIG_DIR / "local.json"), parser=parse,
                    help="JSON settings: a file that `extends` another and holds what differs (see config/).")

    def fix_settings(self, overrides: dict) -> dict:
        """This run's settings: the config with `overrides` ({"section.key": value}; None or "" keep the config's),
        checked, on a datastore the config accepts."""
        from emoji_reco import settings, storage
        from emoji_reco.pipeline import placement

        fixed = settings.with_overrides(self.config, overrides)
        placement.check_datastore(fixed, storage.datastore_root(self))
        return fixed
