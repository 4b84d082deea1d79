"""Settings for tests: `config/base.json` (or another config's text) with dotted changes, typed as the code
takes them."""
from emoji_reco.settings import Settings, defaults, typed, with_overrides


def typed_settings(base: dict | None = None, **changes) -> Settings:
    """`base` (default: base.json's settings) with `{"section.key": value}` changes, as `Settings`."""
    return typed(with_overrides(base or defaults(), changes))
