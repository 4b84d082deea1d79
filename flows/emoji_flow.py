"""EmojiFlow: tweets → cleaned splits → TFRecord shards → fine-tuned BERT → evaluation and gate → registry →
endpoint."""
from metaflow import Parameter, card, config_expr, current, resources, retry, step

from emoji_reco.flowkit.base import BaseFlow
from emoji_reco.flowkit.placement import Scheduled


@Scheduled("platform")
class EmojiFlow(BaseFlow):
    """Learn which emoji fits a tweet and serve the best model."""

    MULTINODE = False  # MultiNodeEmojiFlow trains on `train.workers` nodes

    data = Parameter("data", default=config_expr("config.data.path"),
                     help="Tweets: a CSV, JSON Lines or Parquet file or folder, local or s3://. "
                          "Empty: the demo set.")
    base_model = Parameter("base_model", default=config_expr("config.model.base"),
                           help="'bundled' (all-MiniLM-L6-v2), a folder, an s3:// prefix "
                                "or a Hugging Face id.")
    epochs = Parameter("epochs", type=int, default=config_expr("config.train.epochs"),
                       help="Training epochs.")
    learning_rate = Parameter("learning_rate", type=float, default=config_expr("config.train.learning_rate"),
                              help="Peak learning rate.")
    sample = Parameter("sample", type=int, default=config_expr("config.data.sample"),
                       help="Use at most this many rows (0: all).")

    @retry(times=0)  # no I/O: a failure here is a mistake in the config or the parameters
    @step
    def start(self):
        """Fix this run's settings: the config file plus this run's parameters."""
        from emoji_reco.flowkit import placement

        self.settings = self.settings_with({
            "data.path": self.data, "data.sample": self.sample, "model.base": self.base_model,
            "train.epochs": self.epochs, "train.learning_rate": self.learning_rate})
        self.nodes = placement.training_nodes(self.run_settings.train, self.MULTINODE)
        self.next(self.prepare)

    @card(id="data")
    @step
    def prepare(self):
        """Load, clean, label and split the tweets."""
        from emoji_reco.data import dataset
        from emoji_reco.flowkit import cards

        prepared = dataset.prepare(self.run_settings.data, self.run_settings.demo)
        self.splits, self.emojis, self.data_report = prepared.splits, prepared.emojis, prepared.report
        print(f"kept {self.data_report['rows_kept']} of {self.data_report['rows_read']} rows; "
              f"dropped {self.data_report['dropped']}")
        cards.data_card(current.card["data"], self.data_report, self.splits, self.emojis)
        self.shards = list(range(self.run_settings.convert.shards))
        self.next(self.convert, foreach="shards")

    @resources(cpu=config_expr("config.convert.cpu"), memory=config_expr("config.convert.memory_mb"))
    @step
    def convert(self):
        """Tokenize one shard of every split into TFRecord files."""
        import tempfile

        from emoji_reco import storage
        from emoji_reco.model import base_model, tfrecords, tokenization

        with tempfile.TemporaryDirectory() as tmp:
            tok_dir = tokenization.save_fast_tokenizer(base_model.resolve(self.run_settings.model.base), tmp)
            self.shard_files = tfrecords.convert_shard(
                self.splits, self.input, len(self.shards), tok_dir, self.run_settings.model.max_length,
                self.run_settings.convert.batch_size, storage.join(storage.run_root(self), "tfrecords"),
                cpus=self.run_settings.convert.cpu)
        self.next(self.join_convert)

    @card(id="convert")
    @step
    def join_convert(self, inputs):
        """Gather the TFRecord files of every shard."""
        self.gather_shards(inputs)
        self.next(self.train)

    @card(id="train", refresh_interval=5)
    @resources(cpu=config_expr("config.train.cpu"), memory=config_expr("config.train.memory_mb"),
               gpu=config_expr("config.train.gpu"))
    @step
    def train(self):
        """Fine-tune the base model on the TFRecords into a model bundle, where `train.backend` says."""
        self.fine_tune()
        self.next(self.evaluate)

    def gather_shards(self, inputs):
        """join_convert's work: the shards' TFRecord files in one list, and their card."""
        from emoji_reco.flowkit import cards

        self.tfrecords = sorted((f for i in inputs for f in i.shard_files), key=lambda f: f["uri"])
        self.merge_artifacts(inputs, exclude=["shard_files"])
        cards.conversion_card(current.card["convert"], self.tfrecords)

    def fine_tune(self):
        """train's work, on one node or on each node of a `@parallel` step (MultiNodeEmojiFlow)."""
        from emoji_reco import backends
        from emoji_reco.backends.contract import RunInfo, TrainingData
        from emoji_reco.flowkit import cards

        card = cards.TrainCard(current.card["train"], self.run_settings.train)

        def live(history, steps):
            card.update(history, steps)
            current.card["train"].refresh()

        training = backends.trainer(self.run_settings).train(
            RunInfo.of(self), TrainingData(self.tfrecords, self.emojis, self.data_report["source"]),
            on_update=live)
        self.training, self.bundle_uri = training.as_dict(), training.bundle_uri
        card.update(training.history, training.steps, final={
            "seconds": training.seconds, "examples_per_second": training.examples_per_second,
            "distribution": training.distribution, "ensemble": training.ensemble})

    @card(id="evaluation")
    @step
    def evaluate(self):
        """Score the candidate and the champion on the test split and apply the quality gate."""
        import tempfile

        from emoji_reco import backends, storage
        from emoji_reco.flowkit import cards
        from emoji_reco.model import evaluation
        from emoji_reco.model.layout import METADATA

        with tempfile.TemporaryDirectory() as tmp:
            candidate = storage.get_dir(self.bundle_uri, f"{tmp}/candidate")
            self.evaluation = evaluation.assess(
                candidate, self.splits["test"], self.emojis,
                backends.target(self.run_settings).champion(f"{tmp}/champion"), self.run_settings.gate,
                self.run_settings.serve.max_int8_top3_drop)
            # the verdict on the int8 form travels in the bundle's metadata, where every server reads it (a
            # local bundle was written in place)
            if self.evaluation["int8"] and candidate != self.bundle_uri:
                storage.put_file(f"{candidate}/{METADATA}", storage.join(self.bundle_uri, METADATA))
        self.metrics, self.verdict = self.evaluation["metrics"], self.evaluation["verdict"]
        print(evaluation.summary(self.evaluation))
        cards.evaluation_card(current.card["evaluation"], self.metrics, self.evaluation["champion"],
                              self.verdict, self.evaluation["int8"])
        self.next(self.register)

    @step
    def register(self):
        """Record the gate's verdict: the run's tags, and the deploy target's model registry if it has one."""
        from emoji_reco import backends, registry
        from emoji_reco.backends.contract import RunInfo

        run = RunInfo.of(self)
        self.registry_tag = registry.tag_verdict(run.pathspec, self.verdict)
        target = backends.target(self.run_settings)
        self.model_package = target.register(run, self.bundle_uri, self.metrics, self.verdict)
        self.next(self.deploy)

    @card(id="deployment")
    @step
    def deploy(self):
        """Serve what should serve, after a smoke prediction, where `deploy.target` says; crown this run if it
        is it."""
        from emoji_reco import backends, registry
        from emoji_reco.backends.contract import RunInfo
        from emoji_reco.flowkit import cards
        from emoji_reco.model import evaluation

        run = RunInfo.of(self)
        recheck = evaluation.Recheck(self.splits["test"], self.emojis, self.metrics, self.run_settings.gate,
                                     (self.evaluation["champion"] or {}).get("version"))
        deployment = backends.target(self.run_settings).deploy(
            run, self.bundle_uri, self.verdict, self.splits["test"].text.head(3).tolist(), recheck)
        if deployment.deployed and deployment.version == run.run_id:
            registry.make_champion(run.pathspec, self.run_settings.deploy.endpoint)
        self.deployment = deployment.as_dict()
        cards.deployment_card(current.card["deployment"], self.deployment)
        self.next(self.end)

    @card(id="summary")
    @step
    def end(self):
        """Summarise: metrics, verdict, where the model serves and how to ask it."""
        from emoji_reco import registry, storage
        from emoji_reco.flowkit import cards

        cards.summary_card(current.card["summary"], self.metrics, self.deployment,
                           registry.history(current.flow_name, storage.datastore_root(self)))
        m = self.metrics
        print(f"test top-1 {m['top1']:.1%}, top-3 {m['top3']:.1%}, macro-F1 {m['macro_f1']:.3f} on "
              f"{m['examples']} tweets")
        if self.deployment["deployed"]:
            print(f"deployed version {self.deployment['version']} to {self.deployment['path']}\n"
                  f"ask it: {self.deployment['query']}")
        else:
            print(f"not deployed: {self.deployment['reason']}")


if __name__ == "__main__":
    EmojiFlow()
