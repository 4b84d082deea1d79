"""The settings' types: one frozen model per config section, its fields in `config/base.json`'s order. The
values live in `config/base.json` (the one place for defaults); these say what each key takes, so a wrong key
or type is refused when the config loads, not deep in a step. Numbers are strict (true is not 1, "2" is not
2); a whole number is a number."""
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Share = Annotated[float, Field(ge=0.0, le=0.9)]
Runtime = Literal["savedmodel", "int8", "auto"]  # the model's form a server runs (model/runtimes.py)
# a mapping of step names or decorator arguments, replaced whole by a config that sets it
FreeForm = dict[str, Any]


class DataSettings(Section):
    path: str
    test_path: str
    format: str
    shape: str
    text_column: str | None
    label_column: str | None
    labels: str | None
    top_emojis: int
    min_examples_per_class: int
    sample: int
    validation_fraction: Share
    test_fraction: Share
    seed: int


class DemoSettings(Section):
    rows: int
    seed: int


class NgramSettings(Section):
    enabled: bool
    buckets: int
    regularization: float
    weight: Fraction | None


class ModelSettings(Section):
    base: str
    max_length: int
    pooling: Literal["auto", "cls", "mean"]
    ngram: NgramSettings


class ConvertSettings(Section):
    shards: int
    batch_size: int
    cpu: int
    memory_mb: int


class DistributionSettings(Section):
    port: int
    start_timeout_seconds: int
    timeout_seconds: int
    bundle_timeout_seconds: int


class TrainSettings(Section):
    epochs: int
    batch_size: int
    learning_rate: float
    warmup_fraction: float
    weight_decay: float
    label_smoothing: Annotated[float, Field(ge=0.0, le=0.5)]
    bucket_boundaries: list[int]
    pad_to_length: int | None
    seed: int
    cpu: int
    memory_mb: int
    gpu: int
    precision: Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"]
    workers: int
    distribution: DistributionSettings
    backend: str


class ScoreSettings(Section):
    shard_rows: int
    batch_size: int
    top_k: int
    format: str
    cpu: int
    memory_mb: int


class GateSettings(Section):
    metric: str
    min_score: float
    max_regression: float


class CaptureSettings(Section):
    sample: Fraction
    uri: str | None


class ServeSection(Section):
    capture: CaptureSettings
    runtime: Runtime
    # points of top-3 the int8 form may lose against the SavedModel, else the version serves its SavedModel
    max_int8_top3_drop: Annotated[float, Field(ge=0.0, le=100.0)]


class MonitorSettings(Section):
    window_days: int
    min_texts: int
    psi_threshold: float
    js_threshold: float
    reference_rows: int
    retrain_event: str
    retrain_data: str | None
    schedule: FreeForm | None


class DeploySettings(Section):
    target: str
    endpoint: str
    keep_versions: int
    flow: str


class PlatformSettings(Section):
    datastore: str | None
    batch_steps: list[str]
    batch_queue: str | None
    batch_image: str | None
    kubernetes_steps: list[str]
    remote_environment: FreeForm
    retries: int
    retry_minutes: int
    timeout_minutes: FreeForm
    schedule: FreeForm | None
    trigger: FreeForm | None
    project: str


class TrainingJobSettings(Section):
    mode: str
    image: str | None
    framework_version: str
    py_version: str
    instance_type: str
    instance_count: int
    spot: bool
    max_run_minutes: int
    max_wait_minutes: int
    poll_seconds: float


class BlueGreenSettings(Section):
    traffic: str
    step_percent: int
    bake_seconds: int
    termination_wait_seconds: int
    default_alarms: bool
    max_5xx_percent: float
    max_p99_latency_ms: int
    alarms: list[str]


class AutoscalingSettings(Section):
    enabled: bool
    min_instances: int
    max_instances: int
    invocations_per_instance: int
    scale_in_cooldown_seconds: int
    scale_out_cooldown_seconds: int


class EndpointSettings(Section):
    image: str
    framework_version: str
    instance_type: str
    instance_count: int
    wait_minutes: int
    poll_seconds: float
    blue_green: BlueGreenSettings
    autoscaling: AutoscalingSettings


class TransformSettings(Section):
    image: str | None
    instance_type: str
    instance_count: int
    content_type: str
    max_payload_mb: int
    max_concurrent: int
    invocation_timeout_seconds: int
    invocation_retries: int
    wait_minutes: int
    poll_seconds: float


class RegistrySettings(Section):
    group: str
    approval: str


class SageMakerSettings(Section):
    role: str | None
    training: TrainingJobSettings
    endpoint: EndpointSettings
    transform: TransformSettings
    registry: RegistrySettings


class Settings(Section):
    """Every setting of a run, typed: `settings.train.precision`,
    `settings.sagemaker.endpoint.instance_type`."""

    data: DataSettings
    demo: DemoSettings
    model: ModelSettings
    convert: ConvertSettings
    train: TrainSettings
    score: ScoreSettings
    gate: GateSettings
    serve: ServeSection
    monitor: MonitorSettings
    deploy: DeploySettings
    platform: PlatformSettings
    sagemaker: SageMakerSettings


def _free_form(model: type[BaseModel], prefix: str = "") -> set[str]:
    found = set()
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found |= _free_form(kind, f"{prefix}{name}.")
        elif dict in (get_origin(kind), *map(get_origin, get_args(kind))):
            found.add(f"{prefix}{name}")
    return found


FREE_FORM = _free_form(Settings)  # dotted keys whose value is one mapping, not a section of keys
