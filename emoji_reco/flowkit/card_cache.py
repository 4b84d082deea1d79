"""Where Metaflow's card commands keep the cards they fetch: ~/.cache/emoji-reco/metaflow_card_cache, not
./metaflow_card_cache in the work tree; and `card view` says where the card is, which matters where no browser
opens (a server, a container, SSH)."""
import sys
from pathlib import Path

CACHE = Path.home() / ".cache" / "emoji-reco" / "metaflow_card_cache"


def keep_out_of_the_work_tree() -> None:
    """Point Metaflow's card cache at CACHE and make `card view` print the card's path (opening a browser if
    any)."""
    import webbrowser

    from metaflow.plugins.cards import card_cli, card_datastore

    card_datastore.TEMP_DIR_NAME = str(CACHE)

    def open_in_browser(card_path: str) -> None:
        url = Path(card_path).resolve().as_uri()
        print(f"card: {url}", file=sys.stderr)
        if not webbrowser.open(url):
            print("No browser to open it here: copy that file to a machine with one, or browse "
                  "the run's cards with "
                  "`emoji-reco cards serve`.", file=sys.stderr)

    card_cli.open_in_browser = open_in_browser
