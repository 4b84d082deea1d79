"""What `emoji-reco serve` is told: `ServeSettings` (the command line's flags, the SageMaker environment),
what a worker makes of the machine's cores, and the settings SageMaker Batch Transform needs."""
import dataclasses
import os
from dataclasses import dataclass

from emoji_reco.errors import ConfigError
from emoji_reco.model.runtimes import RUNTIMES
from emoji_reco.serving import logs


@dataclass
class ServeSettings:
    # bundle folder, model.tar.gz, or s3://; None: the local endpoint's current version
    model: str | None = None
    # a missing `model`: /ping 503 until it is there (else the server refuses to start)
    wait_for_model: bool = False
    # an unscorable record gets an answer line saying so, not a 400 (Batch Transform)
    answer_every_record: bool = False
    endpoint: str = "emoji-reco"
    # the model's form to serve (model/runtimes.py): savedmodel, int8 or auto; the images read it from the
    # environment
    runtime: str = os.environ.get("EMOJI_RECO_RUNTIME") or "savedmodel"
    host: str = "127.0.0.1"
    port: int = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", 8080))
    # server processes; 0: per runtime (`default_workers`)
    workers: int = int(os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS") or 0)
    max_batch: int = 64  # texts per model call; 1 turns micro-batching off
    model_threads: int = 0  # model calls at once per worker; 0: one per CPU core of the worker's share
    max_wait_ms: float = 0.0
    max_texts: int = 256  # per request
    # per request: its texts' tokens after truncation (bench/RESULTS.md); 0: no cap
    max_request_tokens: int = 4096
    max_body_bytes: int = 1 << 20
    default_k: int = 3
    reload_seconds: float = 2.0
    # Overload: beyond these a request gets 503 + Retry-After at once (bench/RESULTS.md, "Reliability").
    # texts waiting for the model, per worker: 2 batches, enough to keep 2 cores busy
    max_queued_texts: int = 128
    max_open_requests: int = 256  # /invocations requests in progress, per worker
    deadline_ms: float = 2000.0  # a request not scored by then gets 503; the model never sees it
    # Slow and greedy clients (the connection layer, connections.py): a request's headers, then its body, must
    # arrive within these (else 408 and the connection closes); one client address holds at most this many
    # connections (0: no cap; behind a proxy all clients share its address).
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    max_connections_per_client: int = 256
    # open connections per worker past which all but /ping get 503 (file limit raised)
    max_connections: int = 4096
    max_refusals_per_client_s: float = 2.0  # 4xx answers per second per client address before 429s; 0: no cap
    # Who may call: Host names (None: loopback names when bound to loopback, else any) and cross-site
    # Origins (same-origin pages always may); ["*"] allows any.
    allowed_hosts: list | None = None
    allowed_origins: list = dataclasses.field(default_factory=list)
    log_format: str = "text"  # or "json": one object per line (logs.py)
    # Captured traffic (capture.py): this share (0-1) of the answered requests, with their answers, to this
    # folder or s3:// prefix, in SageMaker's data-capture layout; 0: off.
    capture_sample: float = 0.0
    capture_uri: str | None = None
    capture_flush_seconds: float = 60.0

    def __post_init__(self):
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"--runtime (serve.runtime, $EMOJI_RECO_RUNTIME) is one of "
                              f"{', '.join(RUNTIMES)}, not {self.runtime!r}.")
        self.workers = self.workers or default_workers(self.runtime)
        if not 0 <= self.capture_sample <= 1:
            raise ConfigError(f"The capture sample is a share of the requests, 0 to 1, not "
                              f"{self.capture_sample}.")
        if self.capture_sample and not self.capture_uri:
            raise ConfigError("Say where to write captured traffic: --capture-uri FOLDER or "
                              "s3://bucket/prefix.")
        if self.log_format not in logs.FORMATS:
            raise ConfigError(f"--log-format is one of {', '.join(logs.FORMATS)}, not {self.log_format!r}.")


def default_workers(runtime: str) -> int:
    """Server processes unless told: one per core for int8, whose model calls scale across processes and not
    across one process's threads (2.59x float32's requests/s at 16 clients, against 2.06x in one process);
    one for the others: a second float32 process (TensorFlow and the model again) takes 1.0 GB for 1.10x
    (bench/RESULTS.md). `auto` may serve either form, so it keeps one."""
    return len(os.sched_getaffinity(0)) if runtime == "int8" else 1


def model_threads(settings: ServeSettings) -> tuple[int, int]:
    """(model calls at once, threads per op in each) for one worker. On small models, concurrent
    single-threaded calls beat one call spread over the cores: measured on 2 cores, 1.41x the requests/s with
    16 clients, and a lone text no slower (bench/RESULTS.md)."""
    cores = max(1, len(os.sched_getaffinity(0)) // max(1, settings.workers))
    calls = settings.model_threads or cores
    return calls, max(1, cores // calls)


def for_batch_transform(settings: ServeSettings, environ) -> ServeSettings:
    """In SageMaker Batch Transform (SAGEMAKER_BATCH=true) every request is a mini-batch of up to
    MaxPayloadInMB of the job's own records, and the job waits for it (ModelClientConfig): admit a whole one,
    let it take its time (EMOJI_RECO_DEADLINE_MS, set by `emoji-reco aws batch-score`), and answer every
    record, one line each, those with nothing to score too. Elsewhere `settings` as they are."""
    if environ.get("SAGEMAKER_BATCH") != "true":
        return settings
    payload = int(float(environ.get("SAGEMAKER_MAX_PAYLOAD_IN_MB") or 6)
                  * (1 << 20)) or settings.max_body_bytes
    return dataclasses.replace(settings, max_body_bytes=max(settings.max_body_bytes, payload),
                               # a record is 2 bytes at least
                               max_texts=max(settings.max_texts, payload // 2),
                               max_request_tokens=0, answer_every_record=True,
                               deadline_ms=float(environ.get("EMOJI_RECO_DEADLINE_MS") or 600_000))
