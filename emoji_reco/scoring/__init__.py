"""Batch scoring: a frame of texts to a table of top emojis (`emoji-reco predict --input`), and a large input
in shards that can be scored anywhere and resumed (ScoreFlow)."""
