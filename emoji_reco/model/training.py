"""Fine-tune a BERT-family classifier on TFRecord shards with Keras, reporting progress as it goes."""
import math
import time

import numpy as np
import tensorflow as tf
from transformers import create_optimizer

from emoji_reco.errors import ModelError
from emoji_reco.model import base_model, distribution, tfrecords
from emoji_reco.settings import Settings
from emoji_reco.settings.sections import NgramSettings, TrainSettings

SHUFFLE_BUFFER = 20000  # training records shuffled at a time


class Progress(tf.keras.callbacks.Callback):
    """Prints training progress every few seconds and keeps per-epoch metrics; `on_update` sees both."""

    def __init__(self, records: int, batch_size: int, epochs: int, every: float = 10.0, on_update=None):
        super().__init__()
        self.records, self.batch_size, self.epochs, self.every = records, batch_size, epochs, every
        self.on_update = on_update
        self.history, self.steps = [], []
        self._epoch_start = self._last = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._last = time.perf_counter()
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if now - self._last < self.every:
            return
        self._last = now
        seen = min((batch + 1) * self.batch_size, self.records)
        rate = seen / (now - self._epoch_start)
        point = {"epoch": self._epoch + 1, "at": round(self._epoch + seen / self.records, 3),
                 "examples": seen,
                 "loss": float(logs["loss"]), "accuracy": float(logs["accuracy"]),
                 "examples_per_second": round(rate, 1)}
        self.steps.append(point)
        print(f"epoch {self._epoch + 1}/{self.epochs}: {seen}/{self.records} examples "
              f"({100 * seen / self.records:.0f}%), "
              f"{rate:.0f} ex/s, loss {point['loss']:.4f}, accuracy {point['accuracy']:.4f}", flush=True)
        self._notify()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._epoch_start
        row = {"epoch": epoch + 1, "seconds": round(seconds, 2),
               "examples_per_second": round(self.records / seconds, 1)}
        row.update({k: round(float(v), 5) for k, v in (logs or {}).items()})
        self.history.append(row)
        print("epoch {epoch}/{n} done in {seconds}s: ".format(n=self.epochs, **row)
              + ", ".join(f"{k} {v}" for k, v in row.items() if k not in ("epoch", "seconds")), flush=True)
        self._notify()

    def _notify(self):
        if self.on_update:
            self.on_update(self.history, self.steps)


def schedule_steps(records: int, global_batch: int, train: TrainSettings) -> int:
    """The learning-rate schedule's length: the steps one process takes at most over the epochs (bucketing
    leaves up to one partial batch per bucket each epoch); the same for a run spread over replicas, so it
    learns alike."""
    return (math.ceil(records / global_batch) + len(train.bucket_boundaries) + 1) * train.epochs


def _loss(classes: int, smoothing: float):
    """Cross-entropy on the label ids; with `smoothing`, against targets of 1 − smoothing + smoothing /
    classes."""
    if not smoothing:
        return tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def smoothed(labels, logits):
        targets = tf.one_hot(tf.cast(tf.reshape(labels, [-1]), tf.int32), classes)
        return tf.keras.losses.categorical_crossentropy(targets, logits, from_logits=True,
                                                        label_smoothing=smoothing)

    return smoothed


def _compiled(base_dir, emojis: list, settings: Settings, steps: int):
    train = settings.train
    optimizer, _ = create_optimizer(init_lr=train.learning_rate, num_train_steps=steps,
                                    num_warmup_steps=int(steps * train.warmup_fraction),
                                    weight_decay_rate=train.weight_decay)
    model = base_model.load_classifier(base_dir, emojis, settings.model.pooling)
    model.compile(optimizer=optimizer, loss=_loss(len(emojis), train.label_smoothing),
                  metrics=[tf.keras.metrics.SparseCategoricalAccuracy("accuracy"),
                           tf.keras.metrics.SparseTopKCategoricalAccuracy(min(3, len(emojis)), "top3")])
    return model


def fine_tune(files: dict, records: int, emojis: list, base_dir, settings: Settings, on_update=None,
              plan: distribution.Plan | None = None, per_file: dict | None = None):
    """Train on `files['train']`, validate on `files['validation']`; return (model, per-epoch history, steps).
    Under a `plan` with a strategy, across its replicas; `per_file` (each file's record count, by split) lets
    the workers share the files."""
    train = settings.train
    tf.keras.utils.set_random_seed(train.seed)
    plan = plan or distribution.plan(train)
    if plan.strategy is not None:
        return _fine_tune_distributed(files, emojis, base_dir, settings, on_update, plan, per_file)
    batch, epochs, boundaries, pad_to = (train.batch_size, train.epochs, train.bucket_boundaries,
                                         train.pad_to_length)
    train_ds = tfrecords.dataset(files["train"], batch, boundaries, shuffle=min(records, SHUFFLE_BUFFER),
                                 seed=train.seed, pad_to=pad_to)
    val_ds = tfrecords.dataset(files["validation"], batch, boundaries, pad_to=pad_to)
    model = _compiled(base_dir, emojis, settings, schedule_steps(records, batch, train))
    progress = Progress(records, batch, epochs, on_update=on_update)
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=[progress], verbose=0)
    return model, progress.history, progress.steps


def _fine_tune_distributed(files: dict, emojis: list, base_dir, settings: Settings, on_update, plan,
                           per_file: dict):
    """`fine_tune` across the plan's replicas: every worker takes the same number of steps an epoch over its
    own share of the files (repeated as needed); a lost worker ends it with ModelError within the collective
    timeout."""
    per_worker_batch, train = plan.global_batch // plan.workers, settings.train

    def inputs(split: str, shuffle: bool):
        shares = [{"path": path, "records": n} for path, n in zip(files[split], per_file[split])]

        def make(context):
            own, shard = distribution.worker_share(shares, context.num_input_pipelines,
                                                   context.input_pipeline_id)
            # as one process does
            buffer = min(sum(r["records"] for r in own), SHUFFLE_BUFFER) if shuffle else 0
            return tfrecords.dataset([r["path"] for r in own],
                                     context.get_per_replica_batch_size(plan.global_batch),
                                     train.bucket_boundaries, shuffle=buffer, seed=train.seed,
                                     pad_to=train.pad_to_length, shard=shard).repeat()

        steps = distribution.steps_per_epoch(shares, plan.workers, per_worker_batch)
        return plan.strategy.distribute_datasets_from_function(make), steps

    (train_ds, steps), (val_ds, val_steps) = inputs("train", True), inputs("validation", False)
    epochs = train.epochs
    with plan.strategy.scope():
        model = _compiled(base_dir, emojis, settings,
                          schedule_steps(sum(per_file["train"]), plan.global_batch, train))
    progress = Progress(steps * plan.global_batch, plan.global_batch, epochs, on_update=on_update)
    try:
        model.fit(train_ds, validation_data=val_ds, epochs=epochs, steps_per_epoch=steps,
                  validation_steps=val_steps,
                  callbacks=[progress], verbose=0)
    except tf.errors.OpError as exc:
        raise ModelError(f"Training across {plan.workers} workers stopped: {exc.message.splitlines()[0]} "
                         "(a worker was lost or unreachable; each worker's log says more).") from exc
    return model, progress.history, progress.steps


def fit_ngram(model, files: dict, emojis: list, ngram_settings: NgramSettings, batch_size: int):
    """The combined model's n-gram half: fitted on the training split, its weight chosen on the validation
    split (or the configured one). Returns (its `ngrams.Head`, a report of the weight and each part's
    validation scores)."""
    from emoji_reco.model import ensemble, evaluation, ngrams

    started = time.perf_counter()
    ids, labels = tfrecords.read_all(files["train"])
    head = ngrams.head(ngrams.fit(ids, labels, len(emojis), model.config.vocab_size, ngram_settings.buckets,
                                        ngram_settings.regularization))
    encoder, ngram, truth = [], [], []
    for features, label in tfrecords.dataset(files["validation"], batch_size, None):
        encoder.append(model(**features, training=False).logits.numpy())
        ngram.append(head(features["input_ids"], features["attention_mask"])[:, 1].numpy())
        truth.append(label.numpy())
    encoder, ngram, truth = (np.concatenate(x) for x in (encoder, ngram, truth))
    choice = ensemble.choose_weight(encoder, ngram, truth)
    weight = choice["weight"] if ngram_settings.weight is None else ngram_settings.weight
    parts = {"encoder": ensemble.softmax(encoder), "ngram": ensemble.softmax(ngram)}
    parts["combined"] = ensemble.blend(parts["encoder"], parts["ngram"], weight)
    scores = {name: {k: round(evaluation.score(p, truth, emojis)[k], 4) for k in evaluation.HEADLINE}
              for name, p in parts.items()}
    report = {"weight": weight, "chosen": "configured" if ngram_settings.weight is not None
              else "validation log-loss",
              "validation": scores, "validation_log_loss": choice["log_loss"],
              "buckets": ngram_settings.buckets,
              "regularization": ngram_settings.regularization,
              "seconds": round(time.perf_counter() - started, 1)}
    print(f"n-gram half fitted on {len(ids)} texts in {report['seconds']} s; weight {weight} "
          f"({report['chosen']}); "
          "validation top-1: " + ", ".join(f"{n} {s['top1']:.4f}" for n, s in scores.items()), flush=True)
    return head, report


def train_bundle(records: list[dict], emojis: list, settings: Settings, out_uri: str, provenance: dict,
                 on_update=None) -> dict:
    """The whole train step: fetch the TFRecords, fine-tune (across the devices and workers
    `distribution.plan` finds), export the bundle to `out_uri` (the chief alone, when there are several
    workers)."""
    import tempfile
    from pathlib import Path

    from emoji_reco import storage
    from emoji_reco.model import bundle, int8, tokenization

    base_dir = base_model.resolve(settings.model.base)
    plan = distribution.plan(settings.train)
    with tempfile.TemporaryDirectory(prefix="emoji-reco-train-") as tmp:
        by_split = {split: [r for r in records if r["split"] == split] for split in ("train", "validation")}
        files = {split: storage.get_files([r["uri"] for r in rows],
                                          f"{tmp}/{split}") for split, rows in by_split.items()}
        per_file = {split: [r["records"] for r in rows] for split, rows in by_split.items()}
        n_train = sum(per_file["train"])
        started = time.perf_counter()
        model, history, steps = fine_tune(files, n_train, emojis, base_dir, settings, on_update, plan,
                                          per_file)
        seconds = time.perf_counter() - started
        # One device: the step's whole rate; several: the epochs' mean rate over every worker's examples.
        rate = (n_train * settings.train.epochs / seconds if plan.strategy is None
                else sum(h["examples_per_second"] for h in history) / len(history))
        result = {"bundle_uri": out_uri if plan.chief else None, "history": history, "steps": steps,
                  "seconds": round(seconds, 1), "examples_per_second": round(rate, 1), "ensemble": None,
                  "distribution": plan.describe()}
        if not plan.chief:  # the chief writes the one bundle
            distribution.wait_for_chief(plan, settings.train.distribution.bundle_timeout_seconds)
            return result
        try:
            # The rest runs on the chief alone, on a copy outside any strategy (no collectives) and without
            # the optimizer, whose slots would be two thirds of the bundle's bytes.
            model = _local_copy(model, base_dir, emojis)
            if settings.model.ngram.enabled:
                head, result["ensemble"] = fit_ngram(model, files, emojis, settings.model.ngram,
                                                     settings.train.batch_size)
            else:
                head = None
            tokenizer_dir = tokenization.save_fast_tokenizer(base_dir, Path(tmp) / "tokenizer")
            metadata = {"base_model": settings.model.base, "max_length": settings.model.max_length,
                        "pooling": base_model.pooling_of(model),
                        "emojis": emojis, "history": history, "ensemble": result["ensemble"],
                        "distribution": result["distribution"], **provenance}
            local = bundle.export(model, tokenizer_dir, emojis, metadata, Path(tmp) / "bundle", head,
                                  result["ensemble"]["weight"] if result["ensemble"] else 0.0)
            started = time.perf_counter()
            result["forms"] = int8.export(local, head)
            print(f"int8 form written in {time.perf_counter() - started:.1f} s", flush=True)
            storage.put_dir(str(local), out_uri)
        finally:
            distribution.release_workers(plan)
    return result


def _local_copy(model, base_dir, emojis: list):
    """The trained weights in a model of their own: outside any strategy, no optimizer, and float32 whatever
    precision trained them (mixed precision keeps its variables in float32), so bundles serve in float32."""
    import tensorflow as tf

    policy = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("float32")
    try:
        copy = base_model.load_classifier(base_dir, emojis, base_model.pooling_of(model))
        copy(copy.dummy_inputs)
    finally:
        tf.keras.mixed_precision.set_global_policy(policy)
    copy.set_weights(model.get_weights())
    return copy
