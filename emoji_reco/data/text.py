"""Emojis in tweets: finding, stripping and spelling them (cleaning is in `cleaning`)."""
import re

import emoji

from emoji_reco.data.cleaning import SPACE

# Variation selectors, zero-width joiner and skin tones: they decorate an emoji, they aren't one.
_EMOJI_DECORATION = re.compile("[\ufe0e\ufe0f\u200d\U0001f3fb-\U0001f3ff]")

def normalize_emoji(value: str) -> str:
    """One spelling per emoji: '❤️' and '❤' are the same label."""
    return _EMOJI_DECORATION.sub("", str(value)).strip()


def display_emoji(label: str) -> str:
    """A label as a person should see it, in emoji presentation: '❤' (a text-style heart in most fonts)
    becomes '❤️'. Labels themselves keep one spelling (`normalize_emoji`); only what is shown changes."""
    data, qualified = emoji.EMOJI_DATA, emoji.STATUS["fully_qualified"]
    return "".join(ch + "\ufe0f" if data.get(ch, {}).get("status") != qualified
                   and data.get(ch + "\ufe0f", {}).get("status") == qualified else ch for ch in str(label))


def is_emoji(value) -> bool:
    """Whether a label is one emoji or a sequence of them (and nothing else)."""
    return isinstance(value, str) and bool(value) and emoji.purely_emoji(value)


def find_emojis(text: str) -> list[str]:
    """The normalised emojis in a text, in order, with repeats."""
    return [normalize_emoji(e["emoji"]) for e in emoji.emoji_list(text)]


def strip_emojis(text: str) -> str:
    """The text without any emoji, whitespace tidied."""
    return SPACE.sub(" ", emoji.replace_emoji(text, replace=" ")).strip()
