"""Request bodies that count how much of them the server read."""

import io

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request


class CountingBody(io.RawIOBase):
    """A request body of ``size`` bytes that only counts how much the server read."""

    def __init__(self, size: int):
        self.remaining, self.read_bytes = size, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.remaining)
        buffer[:n] = b"x" * n
        self.remaining -= n
        self.read_bytes += n
        return n


def post_stream(client, stream: CountingBody, content_length: int | None, content_type: str = "application/json"):
    """POST ``stream`` as the body; without a length it is read like a chunked body, to its end."""
    environ = EnvironBuilder(path="/inference/image", method="POST", content_type=content_type).get_environ()
    environ["wsgi.input"] = stream
    if content_length is None:
        environ.pop("CONTENT_LENGTH", None)
        environ["wsgi.input_terminated"] = True
    else:
        environ["CONTENT_LENGTH"] = str(content_length)
    return client.open(Request(environ))
