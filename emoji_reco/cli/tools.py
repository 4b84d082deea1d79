"""`emoji-reco cards` and `emoji-reco demo-data`: PNG snapshots of a run's cards, and the demo data set as files."""
import json
from pathlib import Path


def add(sub) -> None:
    ca = sub.add_parser("cards", help="PNG snapshots of a run's cards (needs Chromium and the [browser] extra)")
    ca.add_argument("action", choices=["snapshot"])
    ca.add_argument("run", help="run pathspec, e.g. EmojiFlow/1234")
    ca.add_argument("--output", default="cards", help="folder for the PNGs")
    ca.set_defaults(func=cards_cmd)

    dd = sub.add_parser("demo-data", help="write the demo data set to a folder")
    dd.add_argument("--output", required=True)
    dd.add_argument("--rows", type=int, default=3000)
    dd.add_argument("--seed", type=int, default=7)
    dd.add_argument("--raw", action="store_true", help="raw tweets with the emoji inside the text")
    dd.set_defaults(func=demo_data_cmd)


def cards_cmd(args) -> int:
    from emoji_reco.pipeline.card_images import snapshot_run

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
        (out / "labels.json").write_text(json.dumps(dict(enumerate(EMOJIS)), ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"wrote demo data to {out}")
    return 0
