"""One webhook POST to the vetted address: bounded in total time, no redirects, the answer barely read.

http.client is used because it connects where it is told: the TCP connection goes to the
address vetted by ``jobs.callbacks`` while the Host header and the TLS name (SNI and
certificate check) stay the URL's host. It never follows redirects.

A socket timeout bounds each read, not the exchange: a receiver trickling a byte a second
would hold the attempt for ever. So a timer shuts the socket down at the attempt's deadline,
which ends whatever read or write is waiting, and the attempt fails with TimeoutError.
"""

import http.client
import socket
import ssl
import threading
import time

from jobs.callbacks import Target

MAX_RESPONSE_BYTES = 4096  # of the receiver's answer, which is read only to end the exchange cleanly


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, connect_timeout: float, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self.address, self.connect_timeout = target.address, connect_timeout

    def connect(self):
        self.sock = self._open()

    def _open(self) -> socket.socket:
        sock = socket.create_connection((self.address, self.port), self.connect_timeout)
        sock.settimeout(self.timeout)
        return sock


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    default_port = http.client.HTTPS_PORT

    def connect(self):
        self.sock = ssl.create_default_context().wrap_socket(self._open(), server_hostname=self.host)


def post(target: Target, body: bytes, headers: dict, connect_timeout: float, deadline: float) -> int:
    """POST ``body`` and return the status code, all within ``deadline`` seconds; raises OSError
    (TimeoutError past the deadline) or HTTPException when no answer came."""
    started = time.monotonic()
    connection = (_PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection)(
        target, min(connect_timeout, deadline), deadline
    )
    cut = threading.Event()

    def cut_off():
        cut.set()
        sock = connection.sock
        if sock is not None:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the TCP socket, under any TLS layer
            except OSError:
                pass

    timer = threading.Timer(deadline, cut_off)
    timer.daemon = True
    timer.start()
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        status = response.status
    except (OSError, http.client.HTTPException):
        if cut.is_set():
            raise TimeoutError(f"no whole answer within {deadline:g} s") from None
        raise
    finally:
        timer.cancel()
        connection.close()
    if cut.is_set() or time.monotonic() - started > deadline:
        raise TimeoutError(f"no whole answer within {deadline:g} s")
    return status
