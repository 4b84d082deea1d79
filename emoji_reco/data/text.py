"""Tweet text cleaning and emoji extraction."""
import html
import itertools
import re
import unicodedata

import emoji

_MENTION = re.compile(r"(?<!\w)@\w+")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
# Unicode's Cc (controls), Cs (surrogates) and Co (private use) code points, whose ranges Unicode keeps fixed, and
# U+FFFD: the characters a text loses. One regex pass: 1 MiB in milliseconds, not a Python loop per character.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ue000-\uf8ff\ufffd\U000f0000-\U000ffffd\U00100000-\U0010fffd]")
# Variation selectors, zero-width joiner and skin tones: they decorate an emoji, they aren't one.
_EMOJI_DECORATION = re.compile("[\ufe0e\ufe0f\u200d\U0001f3fb-\U0001f3ff]")


def clean_text(value) -> str:
    """Normalise a tweet: HTML entities, mentions, URLs, control characters and stray whitespace."""
    if not isinstance(value, str):
        return ""
    text = html.unescape(value)
    text = unicodedata.normalize("NFC", text)
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = _UNPRINTABLE.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


CHARS_PER_TOKEN = 8  # a tokenizer reads at most this many characters per token a text can keep


def tokenizer_input(text: str, max_length: int) -> str:
    """The part of a cleaned text a tokenizer truncating to `max_length` tokens is given: its first
    `CHARS_PER_TOKEN` × `max_length` characters (512 for 64 tokens; a tweet has at most 280). Words average under 5
    characters a token, so this changes no ordinary text's tokens; it bounds what a pathological one (long unknown
    words) costs the tokenizer, which otherwise reads the whole text before truncating."""
    return text[: CHARS_PER_TOKEN * max_length]


# A whitespace-delimited chunk with a letter or a digit and nothing cleaning could remove it for (no "@", "&", "://" or
# "www."): clean_text keeps a word of it, so any tokenizer makes a token of it at least.
_SURE_WORD = re.compile(r"(?<!\S)(?!\S*(?:[@&]|://|(?i:www\.)))\S*\w\S*")


def sure_words(value: str, at_most: int) -> int:
    """A lower bound on the words `clean_text(value)` keeps, up to `at_most`, reading `value` only as far as it
    takes to find them: pricing a long text costs what its first words cost."""
    return sum(1 for _ in itertools.islice(_SURE_WORD.finditer(value), at_most))


def normalize_emoji(value: str) -> str:
    """One spelling per emoji: '❤️' and '❤' are the same label."""
    return _EMOJI_DECORATION.sub("", str(value)).strip()


def display_emoji(label: str) -> str:
    """A label as a person should see it, in emoji presentation: '❤' (a text-style heart in most fonts) becomes
    '❤️'. Labels themselves keep one spelling (`normalize_emoji`); only what is shown changes."""
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
    return _SPACE.sub(" ", emoji.replace_emoji(text, replace=" ")).strip()
