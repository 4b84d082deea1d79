"""model.tar.gz for the SageMaker TensorFlow Serving image: `1/` (the SavedModel) plus `code/` (our handlers,
their requirements, the tokenizer, labels and metadata)."""
import json
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path

from emoji_reco.data import cleaning
from emoji_reco.model import bundle
from emoji_reco.serving import payloads

HANDLERS = Path(__file__).resolve().parent / "tfserving_code" / "inference.py"
# What code/inference.py needs in the serving image, pinned to the versions we train with.
REQUIREMENTS = [f"tokenizers=={version('tokenizers')}"]


def layout(bundle_dir: Path, out_dir: Path, model_version: str) -> Path:
    """Lay a bundle out the way the TF Serving image expects it, in `out_dir`."""
    bundle_dir, out_dir = Path(bundle_dir), Path(out_dir)
    shutil.copytree(bundle_dir / bundle.SAVED_MODEL, out_dir / "1")
    code = out_dir / "code"
    code.mkdir(parents=True)
    shutil.copy(HANDLERS, code / "inference.py")
    for module in (payloads, cleaning):
        shutil.copy(module.__file__, code / Path(module.__file__).name)
    (code / "requirements.txt").write_text("\n".join(REQUIREMENTS) + "\n")
    shutil.copytree(bundle_dir / bundle.TOKENIZER, code / "tokenizer")
    shutil.copy(bundle_dir / bundle.LABELS, code / bundle.LABELS)
    metadata = {**bundle.read_metadata(bundle_dir), "version": model_version}
    (code / bundle.METADATA).write_text(json.dumps(metadata, ensure_ascii=False), encoding="utf-8")
    return out_dir


def archive(bundle_dir: Path, tarball: Path, model_version: str) -> Path:
    """model.tar.gz with the layout above at its root."""
    from emoji_reco.serving.sources import make_tarball

    with tempfile.TemporaryDirectory() as tmp:
        return make_tarball(layout(bundle_dir, Path(tmp) / "model", model_version), tarball)
