"""Sequence packing: several short texts share one row of the model's input, each attending only to itself.

A micro-batch of tweets of mixed lengths, padded to its longest, is mostly padding (16 random shared tweets:
about half); packed into rows of the model's length it is not, so one call scores more texts per second.
Exact: each text gets its own position ids and an attention mask that only spans its own tokens, so its logits
equal those of the text alone. BERT-architecture classifiers only (the fine-tuned MiniLM is one)."""
import numpy as np

from emoji_reco.model.base_model import pooling_of

SIGNATURE = "packed"


def pack(rows: list[list[int]], width: int) -> dict:
    """Place token-id rows (each at most `width` long) into as few rows as first-fit-decreasing finds.
    `segments` numbers the texts within a row from 1 (0: padding); `starts` holds each text's (row,
    column)."""
    bins: list[list] = []  # [free slots, text indices]
    for i in sorted(range(len(rows)), key=lambda i: -len(rows[i])):
        target = next((b for b in bins if b[0] >= len(rows[i])), None)
        if target is None:
            target = [width, []]
            bins.append(target)
        target[0] -= len(rows[i])
        target[1].append(i)
    used = max((width - free for free, _ in bins), default=1)
    shape = (len(bins), used)
    out = {k: np.zeros(shape, np.int32) for k in ("input_ids", "position_ids", "segments")}
    starts = np.zeros((len(rows), 2), np.int32)
    for r, (_, members) in enumerate(bins):
        column = 0
        for segment, i in enumerate(members, 1):
            span = slice(column, column + len(rows[i]))
            out["input_ids"][r, span] = rows[i]
            out["position_ids"][r, span] = np.arange(len(rows[i]))
            out["segments"][r, span] = segment
            starts[i] = (r, column)
            column += len(rows[i])
    return {**out, "starts": starts}


def worth_packing(lengths: list[int]) -> bool:
    """Pad instead when padding wastes little (sorted or equal lengths, or a single text): those run
    faster."""
    return len(lengths) * max(lengths) > 1.25 * sum(lengths)


def encoder_logits(model):
    """A function scoring packed rows (input_ids, position_ids, segments, starts) with a TF BERT sequence
    classifier, one row of logits per text, or None for other architectures."""
    import tensorflow as tf

    bert = getattr(model, "bert", None)
    if bert is None or not hasattr(model, "classifier"):
        return None

    def logits(input_ids, position_ids, segments, starts):
        hidden = bert.embeddings(input_ids=input_ids, position_ids=position_ids,
                                 token_type_ids=tf.zeros_like(input_ids), training=False)
        own = tf.logical_and(tf.equal(segments[:, :, None], segments[:, None, :]), segments[:, None, :] > 0)
        # as BertMainLayer builds it, per text
        mask = (1.0 - tf.cast(own, hidden.dtype))[:, None, :, :] * -10000.0
        hidden = bert.encoder(hidden_states=hidden, attention_mask=mask, head_mask=[None]
                              * bert.config.num_hidden_layers,
                              encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None,
                              use_cache=False, output_attentions=False, output_hidden_states=False,
                              return_dict=True,
                              training=False).last_hidden_state
        if pooling_of(model) == "mean":
            from emoji_reco.model.pooling import segment_mean

            return model.classifier(segment_mean(hidden, segments, starts))
        return model.classifier(bert.pooler(tf.gather_nd(hidden, starts)[:, None, :]))  # each text's [CLS]

    return logits


def input_signature():
    """The `packed` signature's inputs."""
    import tensorflow as tf

    rows = [tf.TensorSpec([None, None], tf.int32, name=n) for n in ("input_ids", "position_ids", "segments")]
    return [*rows, tf.TensorSpec([None, 2], tf.int32, name="starts")]
