"""`emoji-reco serve`: the HTTP inference server (SageMaker's contract: /ping, /invocations) and its web page."""


def _names(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def add(sub) -> None:
    se = sub.add_parser("serve", help="HTTP inference server (SageMaker contract: /ping, /invocations) and web page")
    se.add_argument("--model", help="bundle folder, model.tar.gz, or s3://; default: the local endpoint's current model")
    se.add_argument("--endpoint", help="local endpoint to follow (default emoji-reco)")
    se.add_argument("--host", help="address to bind (default 127.0.0.1; 0.0.0.0 to accept other machines)")
    se.add_argument("--port", type=int, help="default $SAGEMAKER_BIND_TO_PORT or 8080")
    se.add_argument("--workers", type=int, help="server processes (default $SAGEMAKER_MODEL_SERVER_WORKERS or 1)")
    se.add_argument("--max-batch", dest="max_batch", type=int, help="texts per model call (default 64; 1: no batching)")
    se.add_argument("--model-threads", dest="model_threads", type=int,
                    help="model calls at once per worker (default: one per CPU core)")
    se.add_argument("--max-wait-ms", dest="max_wait_ms", type=float, help="wait for more requests when idle (default 0)")
    se.add_argument("--max-queued-texts", dest="max_queued_texts", type=int,
                    help="texts waiting for the model before new requests get 503 (default 128 per worker)")
    se.add_argument("--max-open-requests", dest="max_open_requests", type=int,
                    help="requests in progress before new ones get 503 (default 256 per worker)")
    se.add_argument("--deadline-ms", dest="deadline_ms", type=float,
                    help="a request not scored by then gets 503 and is dropped (default 2000)")
    se.add_argument("--max-request-tokens", dest="max_request_tokens", type=int,
                    help="tokens one request may cost the model (its texts' tokens after truncation), else 413; "
                         "0: no cap (default 4096)")
    se.add_argument("--header-timeout", dest="header_timeout_s", type=float,
                    help="seconds for a request's headers to arrive, else 408 and the connection closes (default 10)")
    se.add_argument("--body-timeout", dest="body_timeout_s", type=float,
                    help="seconds for a request's body to arrive after its headers, else 408 (default 10)")
    se.add_argument("--max-connections-per-client", dest="max_connections_per_client", type=int,
                    help="open connections one client address may hold, per worker; 0: no cap (default 256)")
    se.add_argument("--max-connections", dest="max_connections", type=int,
                    help="open connections per worker past which every route but /ping answers 503 (default 4096)")
    se.add_argument("--max-refusals-per-client", dest="max_refusals_per_client_s", type=float,
                    help="requests one client address may have refused (4xx) per second; past it 429 before the "
                         "body is read; 0: no cap (default 10)")
    se.add_argument("--allowed-hosts", dest="allowed_hosts", type=_names,
                    help="Host names to answer, comma-separated; '*' for any (default: loopback names when bound "
                         "to loopback, else any). Set it behind a proxy.")
    se.add_argument("--allowed-origins", dest="allowed_origins", type=_names,
                    help="web origins (https://app.example.com) whose pages may call this server, comma-separated; "
                         "'*' for any (default: same origin only)")
    se.set_defaults(func=serve_cmd)


def serve_cmd(args) -> int:
    import os

    from emoji_reco.serving.server import ServeSettings, for_batch_transform, serve

    overrides = {k: v for k, v in vars(args).items() if k in ServeSettings.__dataclass_fields__ and v is not None}
    serve(for_batch_transform(ServeSettings(**overrides), os.environ))
    return 0
