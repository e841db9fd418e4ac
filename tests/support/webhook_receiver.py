"""A webhook receiver for tests: an HTTP server on 127.0.0.1 that records every POST it gets."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """Answers the given statuses in turn (the last one after that), with ``headers`` and a body of
    ``body_size`` bytes; ``received`` holds each POST's path, headers, body and arrival time."""

    def __init__(self, statuses=(200,), headers=(), body_size=0, path="/hook"):
        self.statuses, self.received = list(statuses), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body, "at": time.time()}
                )
                self.send_response(receiver.statuses[min(len(receiver.received), len(receiver.statuses)) - 1])
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(body_size))
                self.end_headers()
                self.wfile.write(b"x" * body_size)

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
