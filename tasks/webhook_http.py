"""One webhook POST to the vetted address: bounded in time, no redirects, the answer barely read.

http.client is used because it connects where it is told: the TCP connection goes to the
address vetted by ``jobs.callbacks`` while the Host header and the TLS name (SNI and
certificate check) stay the URL's host. It never follows redirects.
"""

import http.client
import socket
import ssl

from jobs.callbacks import Target

CONNECT_TIMEOUT = 5  # seconds to open the connection
READ_TIMEOUT = 10  # seconds any one read or write may wait
MAX_RESPONSE_BYTES = 4096  # of the receiver's answer, which is read only to end the exchange cleanly


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target):
        super().__init__(target.host, target.port, timeout=READ_TIMEOUT)
        self.address = target.address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), CONNECT_TIMEOUT)
        self.sock.settimeout(self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target):
        super().__init__(target.host, target.port, timeout=READ_TIMEOUT, context=ssl.create_default_context())
        self.address = target.address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), CONNECT_TIMEOUT)
        sock.settimeout(self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(target: Target, body: bytes, headers: dict) -> int:
    """POST ``body`` and return the status code; raises OSError or HTTPException when no answer came."""
    connection = (_PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection)(target)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        return response.status
    finally:
        connection.close()
