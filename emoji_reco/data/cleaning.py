"""Tweet text cleaning, and what the tokenizer reads of a text. Standard library only: the TF Serving handlers
and the Lambda front ship this file as it is."""
import html
import itertools
import re
import unicodedata

_MENTION = re.compile(r"(?<!\w)@\w+")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
SPACE = re.compile(r"\s+")
# Unicode's Cc (controls), Cs (surrogates) and Co (private use) code points, whose ranges Unicode keeps fixed,
# and U+FFFD: the characters a text loses. One regex pass: 1 MiB in milliseconds, not a Python loop per
# character.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ue000-\uf8ff\ufffd"
                          "\U000f0000-\U000ffffd\U00100000-\U0010fffd]")
def clean_text(value) -> str:
    """Normalise a tweet: HTML entities, mentions, URLs, control characters and stray whitespace."""
    if not isinstance(value, str):
        return ""
    text = html.unescape(value)
    text = unicodedata.normalize("NFC", text)
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = _UNPRINTABLE.sub(" ", text)
    return SPACE.sub(" ", text).strip()


CHARS_PER_TOKEN = 8  # a tokenizer reads at most this many characters per token a text can keep


def tokenizer_input(text: str, max_length: int) -> str:
    """The part of a cleaned text a tokenizer truncating to `max_length` tokens is given: its first
    `CHARS_PER_TOKEN` × `max_length` characters (512 for 64 tokens; a tweet has at most 280). Words average
    under 5 characters a token, so this changes no ordinary text's tokens; it bounds what a pathological one
    (long unknown words) costs the tokenizer, which otherwise reads the whole text before truncating."""
    return text[: CHARS_PER_TOKEN * max_length]


# A whitespace-delimited chunk with a letter or a digit and nothing cleaning could remove it for (no "@", "&",
# "://" or "www."): clean_text keeps a word of it, so any tokenizer makes a token of it at least.
_SURE_WORD = re.compile(r"(?<!\S)(?!\S*(?:[@&]|://|(?i:www\.)))\S*\w\S*")


def sure_words(value: str, at_most: int) -> int:
    """A lower bound on the words `clean_text(value)` keeps, up to `at_most`, reading `value` only as far as
    it takes to find them: pricing a long text costs what its first words cost."""
    return sum(1 for _ in itertools.islice(_SURE_WORD.finditer(value), at_most))




def is_empty(value) -> bool:
    """Whether nothing is left of `value` after `clean_text`; a text that starts with a word costs a short
    regex."""
    return not (isinstance(value, str) and sure_words(value, 1)) and not clean_text(value)
