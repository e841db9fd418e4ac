"""Oversized bodies through the real proxy and Gunicorn: 413 before the body is read, whatever the client claims."""

import json
import select
import socket
from urllib.parse import urlsplit

CHUNK = b"x" * 65536


def connect(base_url: str) -> socket.socket:
    url = urlsplit(base_url)
    return socket.create_connection((url.hostname, url.port), timeout=10)


def read_response(sock: socket.socket) -> tuple[int, dict]:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:  # the server closed on a body it would not read; its answer came first
        pass
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"\r\ncontent-type: application/problem+json\r\n" in head.lower() + b"\r\n"
    return int(head.split()[1]), json.loads(body)


def request_head(headers: str) -> bytes:
    return (
        f"POST /inference/image HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n{headers}"
        "Connection: close\r\n\r\n"
    ).encode()


def test_a_declared_gigabyte_is_refused_before_any_of_it_is_sent(base_url):
    with connect(base_url) as sock:
        sock.sendall(request_head(f"Content-Length: {1024**3}\r\n"))
        status, problem = read_response(sock)  # the server answers without waiting for the body
    assert status == 413
    assert problem["status"] == 413


def test_an_endless_chunked_body_is_cut_off_with_413(base_url):
    sent = 0
    with connect(base_url) as sock:
        sock.sendall(request_head("Transfer-Encoding: chunked\r\n"))
        while sent < 16 * 1024 * 1024:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(CHUNK)
        status, problem = read_response(sock)
    assert status == 413
    assert problem["status"] == 413
    assert sent < 16 * 1024 * 1024, "the server must stop the body near its limit"
