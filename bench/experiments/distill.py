"""Distillation (issue 22): one encoder trained on the soft targets of several, at the default budget.

The teacher is the average of the encoder halves of finished runs (`bench/accuracy.py` runs on the same
split); its probabilities on the student run's training split are the artifact the student learns from, mixed
with the (label-smoothed) true labels: target = (1 − alpha) · labels + alpha · teacher. The student trains
with that run's settings (epochs, batch, schedule, pooling), then mixes with that run's n-gram half at a
weight chosen on validation by log-loss, as the flow does, and is scored once on the held-out tweets beside
the teacher.

    cd bench && python -m experiments.distill EmojiFlow/<student split run> EmojiFlow/<teacher> [...] [--alpha
    0.5]
"""
import argparse
import json
import tempfile
import time

import numpy as np
from common import OUT, headline, held_out


def _batches(ids: list[list[int]], targets: np.ndarray, batch: int, boundaries: list, shuffle: int,
             seed: int):
    """(features, target rows) in length buckets, as `tfrecords.dataset` batches records."""
    import tensorflow as tf

    def rows():
        for row, target in zip(ids, targets):
            yield {"input_ids": row, "attention_mask": [1] * len(row)}, target

    spec = tf.TensorSpec([None], tf.int32)
    ds = tf.data.Dataset.from_generator(rows, output_signature=(
        {"input_ids": spec, "attention_mask": spec}, tf.TensorSpec([targets.shape[1]], tf.float32)))
    if shuffle:
        ds = ds.shuffle(shuffle, seed=seed, reshuffle_each_iteration=True)
    ds = ds.bucket_by_sequence_length(lambda features, _t: tf.shape(features["input_ids"])[0],
                                      list(boundaries),
                                      [batch] * (len(boundaries) + 1))
    return ds.prefetch(tf.data.AUTOTUNE)


def _encoder_logits(model, ids: list[list[int]], batch: int = 64) -> np.ndarray:
    from emoji_reco.model import tokenization

    order = np.argsort([len(r) for r in ids], kind="stable")
    out = np.zeros((len(ids), model.config.num_labels), dtype=np.float32)
    for start in range(0, len(order), batch):
        rows = order[start : start + batch]
        input_ids, mask = tokenization.pad([ids[i] for i in rows])
        out[rows] = model(input_ids=input_ids, attention_mask=mask, training=False).logits.numpy()
    return out


def main(student_run: str, teachers: list[str], alpha: float) -> dict:
    import tensorflow as tf
    from metaflow import Run, namespace

    from emoji_reco import storage
    from emoji_reco.data.cleaning import clean_text
    from emoji_reco.model import base_model, bundle, ensemble, evaluation, tokenization, training
    from emoji_reco.settings import defaults, merge, typed

    namespace(None)
    run = Run(student_run)
    emojis, splits, settings = run.data.emojis, run["prepare"].task.data.splits, run.data.settings
    test = held_out(settings)
    out = {"student_split": student_run, "teachers": teachers, "alpha": alpha, "seconds": {}}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        teacher, held_teacher = [], []
        for i, pathspec in enumerate(teachers):
            predictor = bundle.Predictor(storage.get_dir(Run(pathspec).data.bundle_uri, f"{tmp}/teacher{i}"))
            assert predictor.emojis == emojis, "the teachers must share the student's label map"
            teacher.append(predictor.parts(splits["train"].text.tolist())["encoder"])
            held_teacher.append(predictor.parts(test.text.tolist()))
        out["seconds"]["teacher_targets"] = round(time.perf_counter() - started, 1)
        served = bundle.Predictor(storage.get_dir(run.data.bundle_uri, f"{tmp}/served"))
    teacher = np.mean(teacher, axis=0)
    labels = test.label.to_numpy()
    ngram_held = held_teacher[0]["ngram"]  # every run on this split fits the same n-gram half
    held_encoders = np.mean([p["encoder"] for p in held_teacher], axis=0)
    out["teacher_on_held_out"] = {
        "encoders averaged": headline(evaluation.score(held_encoders, labels, emojis)),
        "encoders averaged + n-gram half": headline(evaluation.score(
            ensemble.blend(held_encoders, ngram_held, served.metadata["ensemble"]["weight"]), labels,
            emojis))}
    print(json.dumps(out["teacher_on_held_out"]), flush=True)

    typed_settings = typed(merge(defaults(), settings))
    train_settings = typed_settings.train
    tok = served.tokenizer

    def ids(frame):
        return tokenization.encode(tok, [clean_text(t) for t in frame.text])

    train, validation = splits["train"], splits["validation"]
    classes, smoothing = len(emojis), train_settings.label_smoothing
    hard = np.eye(classes, dtype=np.float32)[train.label.to_numpy()] * (1 - smoothing) + smoothing / classes
    targets = ((1 - alpha) * hard + alpha * teacher).astype(np.float32)
    batch, boundaries = train_settings.batch_size, train_settings.bucket_boundaries
    train_ids = ids(train)
    train_ds = _batches(train_ids, targets, batch, boundaries, min(len(train), training.SHUFFLE_BUFFER),
                        train_settings.seed)
    tf.keras.utils.set_random_seed(train_settings.seed)
    model = training._compiled(base_model.resolve(typed_settings.model.base), emojis, typed_settings,
                               training.schedule_steps(len(train), batch, train_settings))
    model.compile(optimizer=model.optimizer, loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True),
                  metrics=[tf.keras.metrics.CategoricalAccuracy("accuracy")])
    progress = training.Progress(len(train), batch, train_settings.epochs)
    started = time.perf_counter()
    model.fit(train_ds, epochs=train_settings.epochs, callbacks=[progress], verbose=0)
    out["seconds"]["student_training"] = round(time.perf_counter() - started, 1)
    out["history"] = progress.history

    val_parts = served.parts(validation.text.tolist())
    student_val = _encoder_logits(model, ids(validation))
    weight = ensemble.choose_weight(student_val, np.log(val_parts["ngram"]),
                                    validation.label.to_numpy())["weight"]
    student_held = ensemble.softmax(_encoder_logits(model, ids(test)))
    out["weight"] = weight
    out["student_on_held_out"] = {
        "encoder alone": headline(evaluation.score(student_held, labels, emojis)),
        "encoder + n-gram half": headline(evaluation.score(ensemble.blend(student_held, ngram_held, weight),
                                                           labels, emojis))}
    held_served = served.parts(test.text.tolist())
    out["served_on_held_out"] = headline(evaluation.score(held_served["combined"], labels, emojis))
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("student_run")
    parser.add_argument("teachers", nargs="+")
    parser.add_argument("--alpha", type=float, default=0.5)
    args = parser.parse_args()
    result = main(args.student_run, args.teachers, args.alpha)
    print(json.dumps(result, indent=1, ensure_ascii=False))
    (OUT / f"distill_{args.alpha}.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
