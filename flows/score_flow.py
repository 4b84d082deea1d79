"""ScoreFlow: score a file, a folder or an s3:// prefix of any size with the endpoint's champion (or a given
model), in shards that run in a `foreach` where the config places the `score` step (here, AWS Batch or
Kubernetes), into one output per shard and a manifest. A run with the same input, model and output keeps the
shards scored before."""
from metaflow import Parameter, config_expr, resources, step

from emoji_reco.flowkit.base import BaseFlow


class ScoreFlow(BaseFlow):
    """Score a large file of texts."""

    source = Parameter("input", required=True, help="CSV, JSON Lines or Parquet file, "
                                                    "folder or s3:// prefix.")
    output = Parameter("output", required=True, help="A folder or s3:// prefix for "
                                                     "part-NNNNN.csv and manifest.json.")
    model = Parameter("model", default="", help="A bundle folder or s3:// prefix, or a run (EmojiFlow/1234); "
                                                "default: the champion on `deploy.endpoint`.")

    @step
    def start(self):
        """Pin the model into the run and split the input into shards of `score.shard_rows` rows."""
        from emoji_reco import backends, storage
        from emoji_reco.scoring import shards

        self.settings = self.settings_with({})
        self.destination = storage.absolute(self.output)
        self.model_uri = shards.pin_model(self.model, backends.target(self.run_settings),
                                          storage.run_root(self))
        self.shards = shards.split(storage.absolute(self.source),
                                   storage.join(storage.run_root(self), "shards"),
                                   self.run_settings.score.shard_rows)
        print(f"{len(self.shards)} shards, {sum(s['rows'] for s in self.shards)} rows")
        self.next(self.score, foreach="shards")

    @resources(cpu=config_expr("config.score.cpu"), memory=config_expr("config.score.memory_mb"))
    @step
    def score(self):
        """Score one shard into the output, unless an earlier run scored the same rows with the same model."""
        from emoji_reco.scoring import shards

        self.record = shards.score_shard(self.input, self.model_uri, self.destination,
                                         self.run_settings.score)
        self.next(self.join)

    @step
    def join(self, inputs):
        """Write the manifest: rows in and out, rows not scored and dropped, by reason."""
        from emoji_reco.scoring import shards

        self.merge_artifacts(inputs, exclude=["record"])
        self.manifest = shards.manifest(self.source, self.destination, self.model_uri,
                                        [i.record for i in inputs])
        self.next(self.end)

    @step
    def end(self):
        """Say what was scored and where it is."""
        m = self.manifest
        print(f"scored {m['scored']} of {m['rows_in']} rows into {m['shards']} files in {self.destination} "
              f"({m['reused_shards']} shards kept from an earlier run); not scored {m['not_scored']}, "
              f"dropped {m['dropped']}")


if __name__ == "__main__":
    ScoreFlow()
