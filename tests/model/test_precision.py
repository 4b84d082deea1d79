"""Every precision `train.precision` accepts trains, exports and serves: the bundle is float32 whatever
trained it, and answers as the trained model did, within the precision's rounding."""
import numpy as np
import pytest

from emoji_reco.model import bundle
from helpers.datasets import SAMPLE_TEXTS

# Largest difference in any probability between the trained model (in its precision) and its float32 bundle:
# float16 keeps 11 significant bits, bfloat16 8; float32 is the same computation.
TOLERANCE = {"float32": 1e-5, "mixed_float16": 5e-3, "mixed_bfloat16": 3e-2}


@pytest.mark.slow
@pytest.mark.parametrize("precision", sorted(TOLERANCE))
def test_a_model_trained_in_any_precision_exports_a_float32_bundle_that_answers_as_it_did(
        precision_bundles, precision):
    import tensorflow as tf

    folder, trained = precision_bundles[precision]
    served = tf.saved_model.load(str(folder / bundle.SAVED_MODEL)).signatures["serving_default"]
    assert {spec.dtype for spec in served.structured_outputs.values()} == {tf.float32}
    encoder = bundle.Predictor(folder).parts(SAMPLE_TEXTS)["encoder"]
    np.testing.assert_allclose(encoder, trained, atol=TOLERANCE[precision])
    # the texts get different answers: the comparison means something
    assert not np.allclose(trained, trained[0])
