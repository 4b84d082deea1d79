"""Errors that stop a run early with one clear message (Metaflow prints them without a traceback). Where
Metaflow is not installed (the int8 inference image) they are plain exceptions."""
try:
    from metaflow.exception import MetaflowException
except ImportError:
    MetaflowException = Exception


class EmojiRecoError(MetaflowException):
    """A problem the user can fix; the message says what and how."""

    headline = "emoji-reco"


class ConfigError(EmojiRecoError):
    """A config file that can't be used as written."""

    headline = "Config problem"


class DataError(EmojiRecoError):
    """The input data can't be used as given."""

    headline = "Data problem"


class ModelError(EmojiRecoError):
    """A base model or model bundle can't be found or loaded."""

    headline = "Model problem"
