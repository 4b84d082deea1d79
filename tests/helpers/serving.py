"""Helpers for tests of the inference server: a real uvicorn server in this process, and a client."""
import json
import threading
import time
from contextlib import contextmanager

import httpx
import uvicorn

from emoji_reco.serving.server import ServeSettings, create_app
from helpers.network import free_port


@contextmanager
def running(**settings):
    """A real server in this process (so the test can look at its batcher); yields (url, app)."""
    app = create_app(ServeSettings(**{"reload_seconds": 0.2, **settings}))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}", app
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
    data = json.dumps(body).encode() if content_type == "application/json" and not isinstance(body, bytes) else body
    return httpx.post(f"{url}/invocations", content=data, headers={"Content-Type": content_type, **dict(headers)},
                      **kwargs)
