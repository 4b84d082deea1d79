"""emoji-reco: learn which emoji fits a text, and serve it."""
import os

# transformers' TF classes need Keras 2; set before anything imports TensorFlow.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from emoji_reco import quiet_tensorflow  # noqa: E402

quiet_tensorflow.install()

__version__ = "0.1.0"

# Metaflow ships this package in the code package of every run, so remote tasks (AWS Batch, Step Functions)
# import the same emoji_reco the run was started with.
METAFLOW_PACKAGE_POLICY = "include"
