"""What every emoji-reco flow shares: the config and its parser, `@project`, placement on Batch or Kubernetes,
retries and timeouts (`Placement`), and fixing a run's settings against the datastore it runs on. A flow
subclasses `BaseFlow` and adds its parameters and steps; `start` opens with `self.settings =
self.settings_with({...})` and steps read `self.run_settings`."""
import os

from metaflow import Config, FlowSpec, config_expr, metaflow_config, project

from emoji_reco.flowkit import card_cache
from emoji_reco.flowkit.placement import Placement
from emoji_reco.settings import CONFIG_DIR, parse

ANONYMOUS_USER = "emoji-reco"


def _name_the_user() -> None:
    """Metaflow runs nothing without a user, and takes neither "root" nor no USER at all (a container's usual
    state) for one: name one then, for this process and the tasks it starts, as `make run` does."""
    unnamed = all(os.environ.get(v) in (None, "", "root") for v in ("SUDO_USER", "USERNAME", "USER"))
    if not metaflow_config.USER and unnamed:
        metaflow_config.USER = os.environ["METAFLOW_USER"] = ANONYMOUS_USER


_name_the_user()
card_cache.keep_out_of_the_work_tree()


@Placement
@project(name=config_expr("config.platform.project"))
class BaseFlow(FlowSpec):
    """An emoji-reco flow (no steps of its own)."""

    config = Config("config", default=str(CONFIG_DIR / "local.json"), parser=parse,
                    help="JSON settings: a file that `extends` another and holds what differs (see config/).")

    def settings_with(self, overrides: dict) -> dict:
        """This run's settings as `start` stores them (a plain dict, for the Metaflow client and UI): the
        config with `overrides` ({"section.key": value}; None or "" keep the config's), checked, on a
        datastore it accepts."""
        from emoji_reco import settings, storage
        from emoji_reco.flowkit import placement

        fixed = settings.with_overrides(self.config, overrides)
        placement.check_datastore(settings.typed(fixed).platform, storage.datastore_root(self))
        return fixed

    @property
    def run_settings(self):
        """The `settings` artifact, typed (`emoji_reco.settings.Settings`): what steps hand to the code."""
        from emoji_reco import settings

        return settings.typed(self.settings)
