"""The combined model: the fine-tuned encoder's probabilities mixed with the n-gram model's,
p = (1 - w) p_encoder + w p_ngram, with w chosen on the validation split."""
import numpy as np

GRID = np.round(np.arange(0.0, 1.0001, 0.05), 2)


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.mean(np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-12))))


def blend(encoder_probs: np.ndarray, ngram_probs: np.ndarray, weight: float) -> np.ndarray:
    """The mixture's probabilities."""
    return (1 - weight) * encoder_probs + weight * ngram_probs


def choose_weight(encoder_logits: np.ndarray, ngram_logits: np.ndarray, labels: np.ndarray) -> dict:
    """The n-gram weight on GRID with the lowest validation log-loss (smoother than accuracy on a small
    split), and every weight's loss."""
    labels = np.asarray(labels)
    encoder, ngram = softmax(encoder_logits), softmax(ngram_logits)
    losses = {float(w): log_loss(blend(encoder, ngram, w), labels) for w in GRID}
    best = min(losses, key=losses.get)
    return {"weight": best, "log_loss": {str(w): round(v, 5) for w, v in losses.items()}}


def mix(encoder_logits, ngram_logits, weight: float):
    """log((1 - w) softmax(encoder) + w softmax(ngram)) in TensorFlow: logits whose softmax is the mixture."""
    import tensorflow as tf

    parts = tf.stack([tf.nn.log_softmax(encoder_logits) + tf.math.log(1.0 - weight),
                      tf.nn.log_softmax(ngram_logits) + tf.math.log(weight)])
    return tf.reduce_logsumexp(parts, axis=0)
