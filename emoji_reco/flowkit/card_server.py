"""Metaflow's card viewer (`card server`) as `emoji-reco cards serve`: bound to one address (Metaflow's binds
every interface, so anyone on the network could read the cards); its card cache is outside the work tree, as
every flow's (`card_cache`)."""
import runpy
import sys


def serve(flow_file: str, host: str, port: int, run: str | None = None) -> None:
    """Run `python FLOW_FILE card server --port PORT`, listening on `host` only; the latest run's cards, or
    `run`'s (a pathspec or a run id)."""
    from metaflow.plugins.cards import card_server

    any_interface = card_server.ThreadingHTTPServer
    card_server.ThreadingHTTPServer = lambda address, handler: any_interface((host, address[1]), handler)
    print(f"cards of {flow_file} at http://{host}:{port}/", file=sys.stderr)
    run_id = ["--run-id", run.split("/")[-1]] if run else []
    sys.argv = [flow_file, "card", "server", "--port", str(port), *run_id]
    runpy.run_path(flow_file, run_name="__main__")
