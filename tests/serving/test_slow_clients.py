"""The connection layer and the cost of a request: slow headers and bodies are cut off with 408, one client
address can't take every connection, /ping answers while the server sheds, errors below the app are JSON with
a request id, and a request costs at most a token budget. Real uvicorn servers on 127.0.0.1, raw sockets, the
tiny model; other client addresses are other loopback addresses (127.0.0.2, ...)."""
import json
import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emoji_reco.model.bundle import Predictor
from emoji_reco.serving.connections import RefusalBudget
from helpers import examples
from helpers.serving import connect, exchange, post, read_answer, running, wait_ready

pytestmark = pytest.mark.timeout(300)
PING = b"GET /ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def folder(tiny_bundle):
    return tiny_bundle[1]


# uvicorn's loop (uvloop, on libuv) keeps its clock in whole milliseconds: a timer may fire up to a
# millisecond before the deadline by `time.monotonic` (CI saw a 1 s deadline cut at 0.99996 s).
TIMER_GRAIN = 0.002


def assert_json_error(answer, status):
    code, head, body = answer
    assert code == status, answer
    assert json.loads(body)["request_id"] in head.decode()


@pytest.mark.parametrize("sent, part", [
    (b"", "headers"),  # connects and says nothing
    (b"POST /invocations HTTP/1.1\r\nHost: loc", "headers"),  # a header line that never ends
    # a body that stalls
    (b"POST /invocations HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n[\"a", "body"),
])
def test_a_slow_request_is_cut_off_with_408_and_the_server_serves_on(folder, sent, part, runtime):
    with running(model=str(folder), runtime=runtime, header_timeout_s=1, body_timeout_s=1) as (url, parts):
        wait_ready(url)
        started = time.monotonic()  # before the connection opens: the headers' deadline may count from there
        with connect(url) as sock:
            sock.sendall(sent)
            answer = read_answer(sock)  # the server closes the connection
            took = time.monotonic() - started
        assert_json_error(answer, 408)
        assert part in json.loads(answer[2])["error"] and 1 - TIMER_GRAIN <= took < 3
        assert post(url, ["still here"]).status_code == 200


def test_a_slow_client_sending_a_byte_at_a_time_is_cut_off_at_the_body_deadline(folder, runtime):
    with running(model=str(folder), runtime=runtime, body_timeout_s=1.5) as (url, _):
        wait_ready(url)
        with connect(url) as sock:
            sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                         b"application/json\r\n"
                         b"Content-Length: 100000\r\n\r\n")
            started = time.monotonic()
            with pytest.raises(OSError):  # the server closes the connection while the client still sends
                for _ in range(40):
                    sock.sendall(b" ")
                    time.sleep(0.1)
            took = time.monotonic() - started
        assert 1.5 - TIMER_GRAIN <= took < 3


def test_slow_bodies_hold_no_place_among_the_requests_in_progress(folder, runtime):
    with running(model=str(folder), runtime=runtime, max_open_requests=1) as (url, _):
        wait_ready(url)
        stalled = [connect(url, "127.0.0.2") for _ in range(3)]
        try:
            for sock in stalled:
                sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: localhost\r\nContent-Length: 900\r\n\r\n[")
            time.sleep(0.3)
            assert post(url, ["served meanwhile"]).status_code == 200
        finally:
            for sock in stalled:
                sock.close()


def test_one_client_address_cannot_take_every_connection(folder, runtime):
    with running(model=str(folder), runtime=runtime, max_connections_per_client=4) as (url, _):
        wait_ready(url)
        held = [connect(url, "127.0.0.2") for _ in range(4)]
        try:
            assert_json_error(exchange(url, PING, "127.0.0.2"), 503)  # the fifth from that address
            assert exchange(url, PING)[0] == 200  # another address is served
            assert post(url, ["hello"]).status_code == 200
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.2)
        assert exchange(url, PING, "127.0.0.2")[0] == 200  # the address is served again once it lets go


def test_ping_answers_200_while_the_server_sheds_at_its_connection_cap(folder, runtime):
    with running(model=str(folder), runtime=runtime, max_connections=60,
                 max_connections_per_client=0) as (url, _):
        wait_ready(url)
        held = [connect(url, f"127.0.1.{i // 40 + 1}") for i in range(80)]
        try:
            time.sleep(0.2)
            assert exchange(url, PING)[0] == 200
            busy = exchange(url, b"POST /invocations HTTP/1.1\r\nHost: localhost\r\nContent-Length: "
                                 b"5\r\n\r\n[\"a\"]")
            assert_json_error(busy, 503)
            assert b"retry-after" in busy[1]
        finally:
            for sock in held:
                sock.close()


def test_a_client_that_keeps_being_refused_is_held_then_gets_429_and_others_are_served(folder, runtime):
    with running(model=str(folder), runtime=runtime, max_refusals_per_client_s=3) as (url, parts):
        wait_ready(url)
        bad = b'["not json'  # refused at once: each refusal counts one (see the test after this)
        request = (b"POST /invocations HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(bad)) + bad
        # its budget: 3 a second
        assert [exchange(url, request, "127.0.0.2")[0] for _ in range(3)] == [400] * 3
        with connect(url, "127.0.0.2") as held:
            started = time.monotonic()
            held.sendall(request)
            assert post(url, ["another client"]).status_code == 200  # served while that one is held
            answer = read_answer(held)
        assert_json_error(answer, 429)
        assert time.monotonic() - started >= 0.9 and b"retry-after: 1" in answer[1]
        assert exchange(url, request, "127.0.0.2")[0] == 400  # the budget refilled meanwhile


@pytest.mark.parametrize("request_bytes", [
    b"POST /invocations HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n",
    b"POST /invocations HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"BREW /invocations HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"GET /ping HTTP/9.9\r\nHost: localhost\r\n\r\n",
])
def test_malformed_http_is_answered_in_the_json_error_shape(folder, request_bytes, runtime):
    with running(model=str(folder), runtime=runtime) as (url, _):
        assert_json_error(exchange(url, request_bytes), 400)


def test_a_refusal_costs_its_client_one_or_the_cpu_it_took():
    budget = RefusalBudget(2)
    budget.charge("10.0.0.1", cpu_s=0.001)  # cheap: one
    budget.charge("10.0.0.2", cpu_s=0.02)  # 4 units of CPU: its next 1.5 s are spent
    assert not budget.spent("10.0.0.1") and budget.spent("10.0.0.2")


def test_a_request_over_the_token_budget_is_refused_before_the_model_sees_it(folder, runtime):
    with running(model=str(folder), runtime=runtime, max_request_tokens=100) as (url, parts):
        wait_ready(url)
        calls = parts.batcher.calls
        long_text = "word " * 500  # truncated to the model's max_length, so it counts that much
        refused = post(url, [long_text] * 10)
        assert refused.status_code == 413
        assert "at most 100" in refused.json()["error"]
        assert parts.batcher.calls == calls  # nothing reached the model
        assert post(url, ["short one", "and another"]).status_code == 200
        assert httpx.get(f"{url}/ping").status_code == 200


@pytest.fixture(scope="module")
def predictor(folder):
    return Predictor(folder)


# Text as tweets and attackers write it: words, and what cleaning removes or splits (URLs, mentions, entities,
# control characters, combining marks), beside any Unicode at all.
PIECES = st.sampled_from(["a", "word", "9", "_", " ", "  ", "\n", "@", "@bob", "&", "&amp;", "&#32;",
                          "http://", "https://x.co/a",
                          "www.", "WWW.", "://", "\x00", "\u0301", "\u200b", "\ufffd", "😂", "東京", ".",
                          "-"])
TEXTS = st.one_of(st.text(max_size=300), st.lists(PIECES, max_size=80).map("".join))


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=8), st.integers(0, 100))
def test_pricing_a_request_early_never_refuses_one_within_the_budget(predictor, texts, limit):
    exact = predictor.token_count(texts)
    assert (predictor.token_count(texts, limit) > limit) == (exact > limit)
