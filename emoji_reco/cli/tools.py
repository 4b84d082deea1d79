"""`emoji-reco cards` and `emoji-reco demo-data`: a run's cards as PNG snapshots or in a local viewer, and the
demo data set as files."""
import json
import sys
from pathlib import Path


def add(sub) -> None:
    ca = sub.add_parser("cards", help="snapshot: PNGs of a run's cards (needs Chromium and "
                                      "the [browser] extra); "
                                      "serve: Metaflow's card viewer on 127.0.0.1")
    ca.add_argument("action", choices=["snapshot", "serve"])
    ca.add_argument("run", nargs="?", help="the run's pathspec, e.g. EmojiFlow/1234 "
                                           "(serve: default the latest)")
    ca.add_argument("--output", default="cards", help="snapshot: folder for the PNGs")
    ca.add_argument("--flow", default="flows/emoji_flow.py", help="serve: the flow file whose runs to show")
    ca.add_argument("--host", default="127.0.0.1", help="serve: address to bind (0.0.0.0: every interface)")
    ca.add_argument("--port", type=int, default=8324, help="serve: port")
    ca.set_defaults(func=cards_cmd)

    dd = sub.add_parser("demo-data", help="write the demo data set to a folder")
    dd.add_argument("--output", required=True)
    dd.add_argument("--rows", type=int, default=3000)
    dd.add_argument("--seed", type=int, default=7)
    dd.add_argument("--raw", action="store_true", help="raw tweets with the emoji inside the text")
    dd.set_defaults(func=demo_data_cmd)


def cards_cmd(args) -> int:
    if args.action == "serve":
        from emoji_reco.flowkit.card_server import serve

        serve(args.flow, args.host, args.port, args.run)
        return 0
    if not args.run:
        print("cards snapshot needs a run, e.g. EmojiFlow/1234", file=sys.stderr)
        return 2
    from emoji_reco.flowkit.card_images import snapshot_run

    for png in snapshot_run(args.run, Path(args.output)):
        print(png)
    return 0


def demo_data_cmd(args) -> int:
    from emoji_reco.data.demo import EMOJIS, demo_raw_tweets, demo_tweets

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    if args.raw:
        demo_raw_tweets(args.rows, args.seed).to_csv(out / "raw_tweets.csv", index=False)
    else:
        frame = demo_tweets(args.rows, args.seed)
        frame.assign(LABEL=frame.LABEL.map(EMOJIS.index)).to_csv(out / "tweets.csv", index=False)
        (out / "labels.json").write_text(json.dumps(dict(enumerate(EMOJIS)), ensure_ascii=False, indent=1),
                                         encoding="utf-8")
    print(f"wrote demo data to {out}")
    return 0
