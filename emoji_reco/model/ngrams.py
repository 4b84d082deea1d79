"""A TF-IDF linear model over the encoder's own WordPiece ids, the n-gram half of the combined model.

Features: every token id and every adjacent pair (hashed into `buckets` slots), counted sublinearly (1 + ln
n), weighted by smoothed idf (features seen in fewer than two training texts weigh 0), L2-normalised per text;
scores are a linear layer over them. It is fitted with scikit-learn and scored inside the SavedModel by
`Head`, on padded rows and on packed rows alike (pairs never span two texts), from exactly the ids the encoder
sees.
"""
import numpy as np

MIN_DF = 2


def feature_ids(row, vocab: int, buckets: int) -> np.ndarray:
    """One text's feature ids: its token ids, then its token pairs hashed into [vocab, vocab + buckets)."""
    row = np.asarray(row, np.int64)
    return np.concatenate([row, (row[:-1] * vocab + row[1:]) % buckets + vocab])


def matrix(rows: list, vocab: int, buckets: int, idf: np.ndarray | None = None):
    """The TF-IDF matrix (scipy CSR) of token-id rows, and the idf it used (computed from these rows if not
    given)."""
    import scipy.sparse as sp

    features = [feature_ids(r, vocab, buckets) for r in rows]
    indptr = np.cumsum([0] + [len(f) for f in features])
    counts = sp.csr_matrix((np.ones(indptr[-1]), np.concatenate(features), indptr),
                           shape=(len(rows), vocab + buckets))
    counts.sum_duplicates()
    counts.data = 1 + np.log(counts.data)
    if idf is None:
        df = np.bincount(counts.indices, minlength=vocab + buckets)
        idf = np.log((1 + len(rows)) / (1 + df)) + 1
        idf[df < MIN_DF] = 0
    weighted = counts @ sp.diags(idf)
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    return (sp.diags(1 / np.maximum(norms, 1e-12)) @ weighted).tocsr(), idf


def fit(rows: list, labels, classes: int, vocab: int, buckets: int, regularization: float) -> dict:
    """Fit the model on token-id rows: {idf, coef, intercept, vocab, buckets} (numpy arrays and ints)."""
    from sklearn.linear_model import LogisticRegression

    x, idf = matrix(rows, vocab, buckets)
    # the solver needs only the features in use (the rest weigh 0 either way): 25x faster
    live = np.flatnonzero(idf)
    model = LogisticRegression(C=regularization, max_iter=2000).fit(x[:, live], np.asarray(labels))
    weights, biases = model.coef_, model.intercept_
    # scikit-learn's binary form: one score, for the second class against the first
    if len(model.classes_) == 2:
        weights, biases = np.vstack([np.zeros_like(weights), weights]), np.array([0.0, biases[0]])
    coef, intercept = np.zeros((len(idf), classes), np.float32), np.full(classes, -1e4, np.float32)
    coef[np.ix_(live, model.classes_)] = weights.T  # a class missing from training never scores
    intercept[model.classes_] = biases
    return {"idf": idf.astype(np.float32), "coef": coef, "intercept": intercept, "vocab": vocab,
            "buckets": buckets}


def head(params: dict):
    """A tf.Module scoring token ids with fitted `params` inside a TensorFlow graph."""
    import tensorflow as tf

    class Head(tf.Module):
        def __init__(self):
            super().__init__(name="ngram_head")
            self.idf = tf.Variable(params["idf"], trainable=False, name="idf")
            self.kernel = tf.Variable(params["coef"], trainable=False, name="kernel")
            self.bias = tf.Variable(params["intercept"], trainable=False, name="bias")
            self.vocab, self.buckets = params["vocab"], params["buckets"]

        def __call__(self, input_ids, segments):
            """Logits per (row, segment): [rows, 1 + most segments in a row, classes]. `segments` numbers each
            row's texts from 1 (0: padding); a padded batch passes its attention mask."""
            ids = tf.cast(input_ids, tf.int64)
            pairs = (ids[:, :-1] * self.vocab + ids[:, 1:]) % self.buckets + self.vocab
            same = tf.equal(segments[:, :-1], segments[:, 1:])
            features = tf.concat([ids, pairs], axis=1)
            owner = tf.concat([segments, tf.where(same, segments[:, :-1],
                                                  tf.zeros_like(same, segments.dtype))], 1)
            live = owner > 0
            # expand_dims, matmul: the forms TF Lite converts (not x[:, None], einsum)
            match = tf.logical_and(tf.equal(tf.expand_dims(features, 2), tf.expand_dims(features, 1)),
                                   tf.equal(tf.expand_dims(owner, 2), tf.expand_dims(owner, 1)))
            count = tf.reduce_sum(tf.cast(tf.logical_and(match, tf.expand_dims(live, 1)), tf.float32), axis=2)
            count = tf.maximum(count, 1.0)
            value = tf.gather(self.idf, features) * (1.0 + tf.math.log(count)) * tf.cast(live, tf.float32)
            # Each occurrence carries 1/count of its feature's weight, so sums over occurrences are sums over
            # features.
            spread = tf.one_hot(owner, tf.reduce_max(owner) + 1)  # [rows, features, segments]
            sums = tf.matmul(spread, tf.expand_dims(value / count, -1) * tf.gather(self.kernel, features),
                             transpose_a=True)  # [rows, segments, classes]
            norms = tf.sqrt(tf.matmul(spread, tf.expand_dims(value * value / count, -1), transpose_a=True))
            return sums / tf.maximum(norms, 1e-12) + self.bias

    return Head()
