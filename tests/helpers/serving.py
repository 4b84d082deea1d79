"""Helpers for tests of the inference server: a real uvicorn server in this process, and a client."""
import json
import socket
import threading
import time
from contextlib import contextmanager

import httpx
import uvicorn

from emoji_reco.serving.serve_settings import ServeSettings
from emoji_reco.serving.server import Parts, create_app, uvicorn_options
from helpers.network import free_port

# serve.runtime → the form of the model that serves (/ping's and /metrics' `runtime`)
SERVED_FORMS = {"savedmodel": "savedmodel", "int8": "litert_int8"}


@contextmanager
def running(**settings):
    """A real server in this process, made of parts the test can watch (its batcher, its model); yields (url,
    parts)."""
    settings = ServeSettings(**{"reload_seconds": 0.2, "port": free_port(), **settings})
    parts = Parts.build(settings)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, parts),
                                           **uvicorn_options(settings, "warning")))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}", parts
    finally:
        server.should_exit = True
        thread.join(10)


def wait_ready(url, version=None, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        ping = httpx.get(f"{url}/ping")
        if ping.status_code == 200 and (version is None or ping.json()["version"] == version):
            return ping.json()
        time.sleep(0.1)
    raise AssertionError(f"not ready: {ping.status_code} {ping.text}")


def post(url, body, content_type="application/json", headers=(), **kwargs):
    data = json.dumps(body).encode() if content_type == "application/json" and not isinstance(body,
                                                                                              bytes) else body
    return httpx.post(f"{url}/invocations", content=data,
                      headers={"Content-Type": content_type, **dict(headers)},
                      **kwargs)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def connect(url: str, source: str = "127.0.0.1", timeout: float = 30) -> socket.socket:
    """A raw connection to the server from `source` (any 127.x.y.z is this machine, seen as another
    client)."""
    return socket.create_connection(("127.0.0.1", port_of(url)), timeout=timeout, source_address=(source, 0))


def read_answer(sock: socket.socket) -> tuple[int, bytes, bytes]:
    """(status, header block lower-cased, body) of the answer on `sock`, read until the server closes it."""
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head.lower(), body


def exchange(url: str, data: bytes, source: str = "127.0.0.1") -> tuple[int, bytes, bytes]:
    """Send `data` as is on a new connection; the answer as `read_answer` gives it."""
    with connect(url, source) as sock:
        sock.sendall(data)
        return read_answer(sock)


def scrape(url: str, **kwargs) -> dict:
    """/metrics as {(sample name, ((label, value), ...)): value}, parsed by prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    answer = httpx.get(f"{url}/metrics", **kwargs)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain"), answer.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def metric(samples: dict, name: str, **labels) -> float:
    """The value of one sample; a sample the server did not export fails the test, naming it."""
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"/metrics has no {name}{labels or ''} (it has {sorted({n for n, _ in samples})})"
    return samples[key]


def wait_serving(url: str, proc, timeout: float = 120) -> None:
    """Until the server process `proc` answers /ping with 200; fails with its output if it exits first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/ping").status_code == 200:
                return
        except httpx.TransportError:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read() if proc.stdout else "the server exited") from None
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer /ping within {timeout} s")
