"""The proxy in front of Gunicorn, with real nginx, Gunicorn, MariaDB and RabbitMQ.

Slow clients come from many loopback addresses (127.0.0.0/8 is all local), as an attack from many
hosts would; the connection budget and the rate limit are then per address.
"""

import json
import select
import socket
import sys
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from deploy.harness import Process, free_port, running_web
from tests.support.polling import until

HEADER_TIMEOUT = BODY_TIMEOUT = 4
BUDGET = 8
RATE = 5
SLOW = 32  # connections of each kind: 64 in all


@pytest.fixture(scope="module")
def proxied(service_env, tmp_path_factory):
    """A second web (Gunicorn behind nginx) with short timeouts, a small budget and a rate limit."""
    env = {
        **service_env,
        "PROXY_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "PROXY_BODY_TIMEOUT": str(BODY_TIMEOUT),
        "PROXY_CONNECTIONS_PER_CLIENT": str(BUDGET),
        "RATE_LIMIT": f"{RATE}/minute",
    }
    with running_web(env, tmp_path_factory.mktemp("proxied")) as (url, web, proxy):
        yield url, web, proxy


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


def connect(url: str, source: str) -> socket.socket:
    return socket.create_connection(address(url), timeout=5, source_address=(source, 0))


def exchange(url: str, request: bytes, source: str = "127.0.0.1") -> tuple[int, dict, bytes]:
    """Sends one whole request and reads the answer until the server closes."""
    with connect(url, source) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: test\r\n{extra}Connection: close\r\n\r\n".encode()


def assert_problem(status: int, headers: dict, body: bytes, expected: int):
    assert status == expected
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == expected and problem["title"] and problem["detail"]


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed (EOF, or a reset); anything it sent first must be a 408."""
    if not select.select([sock], [], [], 0)[0]:
        return False
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        return True
    assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:200]
    return True


def test_slow_clients_leave_health_answering_then_are_cut_off(proxied):
    """64 connections trickle their headers or their bodies while /health is probed: every probe
    answers 200 within 100 ms, and the proxy closes each slow connection after its timeout."""
    url, _, _ = proxied
    start = time.monotonic()
    header_trickles = [connect(url, f"127.0.1.{i + 1}") for i in range(SLOW)]
    body_trickles = [connect(url, f"127.0.2.{i + 1}") for i in range(SLOW)]
    for sock in body_trickles:
        sock.sendall(
            b"POST /inference/image HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000\r\n\r\n{"
        )
    closed_at = {}

    def trickle(socks):
        for sock in socks:
            if sock not in closed_at:
                try:
                    sock.sendall(b"a")  # header lines that never end, or body bytes
                except (BrokenPipeError, ConnectionResetError):
                    closed_at[sock] = time.monotonic()

    def note_closed():
        for sock in header_trickles + body_trickles:
            if sock not in closed_at and closed_by_server(sock):
                closed_at[sock] = time.monotonic()

    for sock in header_trickles:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: ")
    probes = []
    while time.monotonic() - start < HEADER_TIMEOUT - 0.5:  # both kinds trickle; none has timed out yet
        trickle(header_trickles + body_trickles)
        began = time.perf_counter()
        status = requests.get(f"{url}/health", timeout=5).status_code
        probes.append((status, time.perf_counter() - began))
        time.sleep(0.05)
    body_stopped = time.monotonic()
    assert not closed_at, "no slow connection is cut off before its timeout"
    assert len(probes) >= 10 and {status for status, _ in probes} == {200}
    assert max(seconds for _, seconds in probes) < 0.1, sorted(seconds for _, seconds in probes)[-5:]

    deadline = time.monotonic() + HEADER_TIMEOUT + BODY_TIMEOUT + 5
    while len(closed_at) < 2 * SLOW and time.monotonic() < deadline:
        trickle(header_trickles)  # headers still trickle; bodies have stopped
        note_closed()
        time.sleep(0.1)
    assert len(closed_at) == 2 * SLOW, f"{2 * SLOW - len(closed_at)} slow connections still open"
    # The header timeout counts from the connection's start, however steadily bytes arrive;
    # the body timeout from the last byte.
    assert all(HEADER_TIMEOUT - 0.5 < closed_at[sock] - start < HEADER_TIMEOUT + 2 for sock in header_trickles)
    assert all(BODY_TIMEOUT - 0.5 < closed_at[sock] - body_stopped < BODY_TIMEOUT + 2 for sock in body_trickles)
    for sock in header_trickles + body_trickles:
        sock.close()


def test_one_client_gets_its_budget_of_requests_in_progress(proxied):
    url, _, _ = proxied
    client = "127.0.3.1"
    held = []
    for _ in range(BUDGET - 1):  # requests in progress: whole headers, part of the body
        held.append(connect(url, client))
        held[-1].sendall(b"POST /inference/image HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n{")
    assert exchange(url, get("/health"), client)[0] == 200, "the last request within the budget passes"
    held.append(connect(url, client))
    held[-1].sendall(b"POST /inference/image HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n{")

    def refused():  # once nginx has read the last held request's headers
        answer = exchange(url, get("/health"), client)
        return answer if answer[0] != 200 else None

    answer = until(refused, "the request over the budget refused", 5, interval=0.05)
    assert_problem(*answer, 429)
    assert answer[1]["retry-after"] == "1"
    assert exchange(url, get("/health"), "127.0.3.2")[0] == 200, "another address has its own budget"
    for sock in held:
        sock.close()
    until(
        lambda: exchange(url, get("/health"), client)[0] == 200,
        "the budget is given back when the requests end",
        5,
        interval=0.05,
    )


def test_the_rate_limit_counts_each_client_by_the_address_the_proxy_saw(proxied):
    """Gunicorn sees every request come from nginx; the limiter must still tell clients apart, and a
    client cannot pose as another by sending its own X-Forwarded-For."""
    url, _, _ = proxied
    spoofing = [
        exchange(url, get(f"/predictions/{uuid.uuid4()}", f"X-Forwarded-For: 10.9.9.{i}\r\n"), "127.0.4.1")
        for i in range(3 * RATE)
    ]
    passed = [status for status, _, _ in spoofing if status != 429]
    assert passed and set(passed) == {404}
    assert len(passed) <= 2 * RATE, "at most RATE per Gunicorn worker (memory:// counts per worker), not one per XFF"
    assert_problem(*next(answer for answer in spoofing if answer[0] == 429), 429)
    assert exchange(url, get(f"/predictions/{uuid.uuid4()}"), "127.0.4.2")[0] == 404, "another client is not limited"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (get("/" + "a" * 9000), 414),
        (get("/health", f"X-Big: {'a' * 9000}\r\n"), 431),
        # Within nginx's old 8 KiB buffers but beyond Gunicorn's default limits (4094-byte request line,
        # 8190-byte header): nginx must refuse these itself, or Gunicorn would answer in HTML.
        (get("/" + "a" * 5000), 414),
        (get("/health", f"X-Big: {'a' * 8150}\r\n"), 431),
        (get("/health", "".join(f"X-Many-{i}: {'a' * 200}\r\n" for i in range(90))), 431),
        (
            b"POST /inference/image HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 999999999\r\nConnection: close\r\n\r\n",
            413,
        ),
        (b"POST /inference/image HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET /health HTTP/3.0\r\nHost: test\r\n\r\n", 505),
        (b"TRACE /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", 405),
        (get("/_problems/413"), 404),  # the proxy's own error pages are not reachable from outside
    ],
)
def test_errors_of_the_proxy_itself_are_problem_documents(base_url, request_bytes, status):
    assert_problem(*exchange(base_url, request_bytes), status)


@pytest.mark.parametrize(
    "request_bytes",
    [
        get("/health?" + "a" * 4000),
        get("/health", f"X-Big: {'a' * 4000}\r\n"),
        get("/health", "".join(f"X{i}: a\r\n" for i in range(800))),
        get("/health", f"X-Forwarded-For: {'1.2.3.4, ' * 440}5.6.7.8\r\n"),
    ],
    ids=["long-line", "long-header", "800-headers", "long-forwarded-for"],
)
def test_requests_within_the_proxys_limits_are_not_refused_by_gunicorn(base_url, request_bytes):
    status, headers, body = exchange(base_url, request_bytes)
    assert status == 200, body[:300]


def test_each_request_is_logged_once_by_the_proxy(proxied):
    url, web, proxy = proxied
    marker = uuid.uuid4().hex
    assert requests.get(f"{url}/health?probe={marker}", timeout=5).status_code == 200
    lines = until(  # the access log is buffered for up to a second
        lambda: [line for line in proxy.output().splitlines() if marker in line], "the proxy logs the request", 5
    )
    entry = json.loads(lines[0])
    assert len(lines) == 1 and entry["status"] == 200 and entry["logger"] == "nginx.access"
    assert marker not in web.output(), "Gunicorn does not log it a second time"


def test_an_upstream_that_fails_gets_a_problem_document(tmp_path):
    """502 when nothing listens behind the proxy, 504 when Gunicorn would not answer in time."""
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections (backlog) and never answers
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHON_DOTENV_DISABLED": "1",
        "INSTANCE_PATH": str(tmp_path),
        "PORT": str(port),
        "WEB_BIND": f"127.0.0.1:{silent.getsockname()[1]}",
        "PROXY_READ_TIMEOUT": "1",
    }
    proxy = Process([sys.executable, "-m", "deploy.proxy"], env, tmp_path / "proxy.log")
    url = f"http://127.0.0.1:{port}"
    try:

        def up():
            assert proxy.popen.poll() is None, proxy.output()
            return listening(port)

        until(up, lambda: f"the proxy listening on {port}:\n{proxy.output()}", 10)
        assert_problem(*exchange(url, get("/health")), 504)
        silent.close()
        status, headers, body = exchange(url, get("/health"))
        assert_problem(status, headers, body, 502)
        assert headers["retry-after"] == "5"
    finally:
        proxy.stop()
        silent.close()


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except ConnectionRefusedError:
        return False


def test_a_large_body_refused_before_it_is_read_gets_the_apps_answer_not_a_502(base_url):
    """Gunicorn's sync worker closes the connection after answering; the app reads what is left of the
    body first, so the proxy relays the refusal instead of a reset (502)."""
    body = b'{"name": "x", "data": "' + b"A" * 1_000_000 + b'"}'
    for _ in range(3):
        response = requests.post(
            f"{base_url}/inference/image?bogus=1", data=body, headers={"Content-Type": "application/json"}, timeout=30
        )
        assert response.status_code == 400, response.text
        assert "Unknown query parameter 'bogus'" in response.json()["detail"]
