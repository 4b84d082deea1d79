"""A deterministic demo set of short tweet-like texts over 10 emojis.

Demo data only: made-up texts with overlapping vocabularies and label noise, so a model
can learn something without the task being trivial.
"""
import random

import pandas as pd

EMOJIS = ["❤", "💕", "🔥", "😂", "😊", "😍", "😩", "😭", "🙄", "🤔"]

# Each emoji gets cue phrases; neighbours (❤/💕/😍, 😂/😭, 😩/😭/🙄) share some on purpose.
_CUES = {
    "❤": ["love you", "my family", "thank you all", "forever grateful", "love this", "my heart",
          "so proud of you"],
    "💕": ["my bestie", "love you", "cutest couple", "girls night", "sending hugs", "so sweet", "miss you"],
    "🔥": ["this track", "new album", "that game", "on fire", "lit tonight", "goals", "killed it",
           "new drop"],
    "😂": ["i can't", "dead", "lmao", "this meme", "so funny", "i'm crying", "who did this", "hilarious"],
    "😊": ["good morning", "nice day", "thank you", "feeling good", "smile", "happy weekend", "so kind"],
    "😍": ["so beautiful", "this dress", "gorgeous", "obsessed", "that view", "need this", "love this"],
    "😩": ["monday again", "so tired", "need sleep", "homework", "exams", "ugh work", "why me", "so hungry"],
    "😭": ["i'm crying", "so sad", "miss you", "can't stop crying", "this hurts", "why", "so emotional"],
    "🙄": ["whatever", "of course", "sure jan", "not this again", "people these days", "really", "ugh"],
    "🤔": ["hmm", "what if", "thinking about", "who knows", "makes you think", "wondering", "really"],
}
_FILLERS = ["today", "tonight", "lol", "omg", "honestly", "literally", "this week", "rn", "again", "so",
            "just",
            "the best", "you guys", "at school", "with friends", "on twitter", "right now", "ever"]
_STARTS = ["", "", "", "omg ", "when ", "me: ", "", "y'all ", "", "honestly "]


def demo_tweets(rows: int = 3000, seed: int = 7, noise: float = 0.15) -> pd.DataFrame:
    """Labeled demo tweets as a `TWEET,LABEL` frame with emoji labels."""
    rng = random.Random(seed)
    records = []
    for i in range(rows):
        label = EMOJIS[i % len(EMOJIS)]
        cues = rng.sample(_CUES[label], k=rng.choice([1, 1, 2]))
        words = cues + rng.sample(_FILLERS, k=rng.randint(1, 3))
        rng.shuffle(words)
        text = rng.choice(_STARTS) + " ".join(words)
        if rng.random() < noise:
            label = rng.choice(EMOJIS)
        records.append((text, label))
    return pd.DataFrame(records, columns=["TWEET", "LABEL"])


def demo_raw_tweets(rows: int = 3000, seed: int = 7) -> pd.DataFrame:
    """The same demo tweets with their emoji still inside the text (the raw shape)."""
    frame = demo_tweets(rows, seed)
    return pd.DataFrame({"text": [f"{t} {e}" for t, e in zip(frame.TWEET, frame.LABEL)]})
