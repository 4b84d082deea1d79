"""MultiNodeEmojiFlow: EmojiFlow with its train step on `train.workers` nodes of a Metaflow `@parallel` gang
(multi-node AWS Batch jobs with `platform.batch_steps: [train]`, a Kubernetes JobSet on Argo Workflows, local
processes on one machine), training one model through `MultiWorkerMirroredStrategy`. Every other step is
EmojiFlow's. Step Functions cannot run `@parallel` steps, so EmojiFlow itself stays one node."""
from emoji_flow import EmojiFlow
from metaflow import card, config_expr, parallel, resources, step


class MultiNodeEmojiFlow(EmojiFlow):
    """Learn which emoji fits a tweet on several training nodes, and serve the best model."""

    MULTINODE = True

    @card(id="convert")
    @step
    def join_convert(self, inputs):
        """Gather the TFRecord files of every shard."""
        self.gather_shards(inputs)
        self.next(self.start_workers)

    @step
    def start_workers(self):
        """Start `train.workers` training nodes (a join step cannot also fan out)."""
        self.next(self.train, num_parallel=self.nodes)

    @card(id="train", refresh_interval=5)
    @parallel
    @resources(cpu=config_expr("config.train.cpu"), memory=config_expr("config.train.memory_mb"),
               gpu=config_expr("config.train.gpu"))
    @step
    def train(self):
        """Fine-tune one model together, each node a worker of its share of the TFRecords; node 0 writes the
        bundle."""
        self.fine_tune()
        self.next(self.join_train)

    @step
    def join_train(self, inputs):
        """Keep the bundle and training record of node 0, the chief."""
        chief = next(i for i in inputs if i.bundle_uri)
        self.training, self.bundle_uri = chief.training, chief.bundle_uri
        self.merge_artifacts(inputs, exclude=["training", "bundle_uri"])
        self.next(self.evaluate)


if __name__ == "__main__":
    MultiNodeEmojiFlow()
