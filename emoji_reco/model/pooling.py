"""Mean pooling: the sentence embedding all-MiniLM-L6-v2 was trained to give, as the classifier's input, in
place of the BERT pooler over [CLS] that its sentence training never used."""
import tensorflow as tf
from transformers import TFBertForSequenceClassification
from transformers.modeling_tf_outputs import TFSequenceClassifierOutput
from transformers.modeling_tf_utils import unpack_inputs


def masked_mean(hidden, mask):
    """The mean of each row's hidden states over its unmasked tokens."""
    # expand_dims, not [:, :, None]: TF Lite converts it
    mask = tf.expand_dims(tf.cast(mask, hidden.dtype), -1)
    return tf.reduce_sum(hidden * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)


def segment_mean(hidden, segments, starts):
    """`masked_mean` of packed rows (see `packing`): one row per text, the mean over its own segment's
    tokens."""
    per_row = tf.reduce_max(segments) + 1
    rows = tf.shape(segments)[0]
    flat = tf.reshape(segments + tf.range(rows)[:, None] * per_row, [-1])
    means = tf.math.unsorted_segment_mean(tf.reshape(hidden, [-1, tf.shape(hidden)[-1]]), flat, rows
                                          * per_row)
    return tf.gather(means, starts[:, 0] * per_row + tf.gather_nd(segments, starts))


class MeanPooledBert(TFBertForSequenceClassification):
    """A BERT sequence classifier over the masked mean of the last hidden states; the pooler stays unused."""

    pooling = "mean"

    def __init__(self, config, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.bert.pooler.trainable = False

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
             head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None,
             labels=None,
             training=False):
        if attention_mask is None:
            attention_mask = tf.ones_like(input_ids)
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                           position_ids=position_ids, training=training).last_hidden_state
        pooled = self.dropout(masked_mean(hidden, attention_mask), training=training)
        return TFSequenceClassifierOutput(logits=self.classifier(pooled))
