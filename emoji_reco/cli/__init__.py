"""The `emoji-reco` command: predict with the deployed model, serve it, look after the endpoint and registry.
Each subcommand lives in a module of its own here (`add` declares its arguments); this one parses and reports
errors."""
import argparse
import os
import sys

from emoji_reco.cli import aws, models, predict, serve, tools
from emoji_reco.errors import EmojiRecoError

SUBCOMMANDS = (predict, models, serve, tools, aws)


class _Parser(argparse.ArgumentParser):
    """Usage mistakes in one line, with where to look."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="emoji-reco", description=__doc__.split(". ")[0] + ".")
    sub = p.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.add(sub)
    return p


def _user_error(exc: BaseException) -> str | None:
    """One line for an error the user can act on, or None for a bug."""
    if isinstance(exc, EmojiRecoError):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return f"Not found: {exc.filename or exc}."
    if isinstance(exc, PermissionError):
        return f"Permission denied: {exc.filename or exc}."
    # an exception of these types exists only if its package was imported (the int8 image has neither)
    if "metaflow" in sys.modules:
        from metaflow.exception import MetaflowNotFound

        if isinstance(exc, MetaflowNotFound):
            return (f"{exc}. Check the run (e.g. EmojiFlow/1234) and that you are in the folder (or "
                    f"datastore) where it ran.")
    if "botocore" not in sys.modules:
        return None
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return "No AWS credentials: run `aws configure` or set AWS_PROFILE."
    if isinstance(exc, (BotoCoreError, ClientError)):
        return f"AWS refused: {exc}"
    return None


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("emoji-reco: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message, status = _user_error(exc), 2
        if message is None:
            if os.environ.get("EMOJI_RECO_DEBUG"):
                raise
            message = (f"unexpected error ({type(exc).__name__}: {exc}); set "
                       f"EMOJI_RECO_DEBUG=1 for the traceback")
            status = 1
        print(f"emoji-reco: {message}".replace("\n", " "), file=sys.stderr)
        return status
