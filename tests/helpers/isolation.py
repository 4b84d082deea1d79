"""The test session's isolation, set before anything imports Metaflow (which reads its user once, at import):
Metaflow's local datastore (and its cards) is the .metaflow folder found from the working directory, the
endpoint home is $EMOJI_RECO_HOME, and runs have a user name (Metaflow refuses "root")."""
import os
import tempfile
from pathlib import Path

SESSION = Path(tempfile.mkdtemp(prefix="emoji-reco-tests-"))
(SESSION / ".metaflow").mkdir()
os.environ["EMOJI_RECO_HOME"] = str(SESSION / "home")
os.environ["METAFLOW_USER"] = "tester"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
