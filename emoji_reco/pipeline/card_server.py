"""Metaflow's card viewer (`card server`) as `emoji-reco cards serve`: bound to one address (Metaflow's binds every
interface, so anyone on the network could read the cards), with its card cache in ~/.cache/emoji-reco (Metaflow's is
./metaflow_card_cache, in the work tree)."""
import runpy
import sys
from pathlib import Path

CACHE = Path.home() / ".cache" / "emoji-reco" / "metaflow_card_cache"


def serve(flow_file: str, host: str, port: int, run: str | None = None) -> None:
    """Run `python FLOW_FILE card server --port PORT`, listening on `host` only; the latest run's cards, or `run`'s
    (a pathspec or a run id)."""
    from metaflow.plugins.cards import card_datastore, card_server

    card_datastore.TEMP_DIR_NAME = str(CACHE)
    any_interface = card_server.ThreadingHTTPServer
    card_server.ThreadingHTTPServer = lambda address, handler: any_interface((host, address[1]), handler)
    print(f"cards of {flow_file} at http://{host}:{port}/", file=sys.stderr)
    sys.argv = [flow_file, "card", "server", "--port", str(port)] + (["--run-id", run.split("/")[-1]] if run else [])
    runpy.run_path(flow_file, run_name="__main__")
