"""`emoji-reco serve`: the HTTP inference server (SageMaker's contract: /ping, /invocations) and its web
page."""


def _names(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


# Throughput and protection, per worker: (flag, ServeSettings field, type, help).
LIMITS = [
    ("--max-batch", "max_batch", int, "texts per model call (default 64; 1: no batching)"),
    ("--model-threads", "model_threads", int, "model calls at once per worker (default: one per CPU core)"),
    ("--max-wait-ms", "max_wait_ms", float, "wait for more requests when idle (default 0)"),
    ("--max-queued-texts", "max_queued_texts", int,
     "texts waiting for the model before new requests get 503 (default 128 per worker)"),
    ("--max-open-requests", "max_open_requests", int,
     "requests in progress before new ones get 503 (default 256 per worker)"),
    ("--deadline-ms", "deadline_ms", float, "a request not scored by then gets 503 and is "
                                            "dropped (default 2000)"),
    ("--max-request-tokens", "max_request_tokens", int,
     "tokens one request may cost the model (its texts' tokens after truncation), else 413; 0: "
     "no cap (default 4096)"),
    ("--header-timeout", "header_timeout_s", float,
     "seconds for a request's headers to arrive, else 408 and the connection closes (default 10)"),
    ("--body-timeout", "body_timeout_s", float,
     "seconds for a request's body to arrive after its headers, else 408 (default 10)"),
    ("--max-connections-per-client", "max_connections_per_client", int,
     "open connections one client address may hold, per worker; 0: no cap (default 256)"),
    ("--max-connections", "max_connections", int,
     "open connections per worker past which every route but /ping answers 503 (default 4096)"),
    ("--max-refusals-per-client", "max_refusals_per_client_s", float,
     "requests one client address may have refused (4xx) per second; past it 429 before the body is read; "
     "0: no cap (default 2)"),
]


def add(sub) -> None:
    se = sub.add_parser("serve", help="HTTP inference server (SageMaker contract: /ping, "
                                      "/invocations) and web page")
    se.add_argument("--model", help="bundle folder, model.tar.gz, or s3://; default: the local "
                                    "endpoint's current model")
    se.add_argument("--wait-for-model", dest="wait_for_model", action="store_true", default=None,
                    help="if --model is not there yet, answer /ping with 503 naming it until "
                         "it is (the image does)")
    se.add_argument("--endpoint", help="local endpoint to follow (default emoji-reco)")
    se.add_argument("--runtime", help="the model's form: savedmodel (float32, TensorFlow; default), int8 "
                                      "(LiteRT, no TensorFlow; the bundle must hold it), auto (int8 if the "
                                      "bundle holds a usable one, else savedmodel); default "
                                      "$EMOJI_RECO_RUNTIME")
    se.add_argument("--host", help="address to bind (default 127.0.0.1; 0.0.0.0 to accept other machines)")
    se.add_argument("--port", type=int, help="default $SAGEMAKER_BIND_TO_PORT or 8080")
    se.add_argument("--workers", type=int, help="server processes (default $SAGEMAKER_MODEL_SERVER_WORKERS, "
                                                "else one per core with --runtime int8 and 1 otherwise)")
    for flag, dest, kind, what in LIMITS:
        se.add_argument(flag, dest=dest, type=kind, help=what)
    se.add_argument("--allowed-hosts", dest="allowed_hosts", type=_names,
                    help="Host names to answer, comma-separated; '*' for any (default: "
                         "loopback names when bound "
                         "to loopback, else any). Set it behind a proxy.")
    se.add_argument("--allowed-origins", dest="allowed_origins", type=_names,
                    help="web origins (https://app.example.com) whose pages may call this server, "
                         "comma-separated; "
                         "'*' for any (default: same origin only)")
    se.add_argument("--log-format", dest="log_format", choices=("text", "json"),
                    help="text (default), or json: one object per line, an access record per request")
    se.add_argument("--capture-sample", dest="capture_sample", type=float,
                    help="share of answered requests (0-1) to capture with their answers (default 0: off)")
    se.add_argument("--capture-uri", dest="capture_uri",
                    help="folder or s3:// prefix for captured traffic, in SageMaker's data-capture layout")
    se.add_argument("--capture-flush-seconds", dest="capture_flush_seconds", type=float,
                    help="write captured traffic at least this often (default 60)")
    se.set_defaults(func=serve_cmd)


def serve_cmd(args) -> int:
    import os

    from emoji_reco.serving.serve_settings import ServeSettings, for_batch_transform
    from emoji_reco.serving.server import serve

    overrides = {k: v for k, v in vars(args).items() if k in ServeSettings.__dataclass_fields__
                 and v is not None}
    serve(for_batch_transform(ServeSettings(**overrides), os.environ))
    return 0
