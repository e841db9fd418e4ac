"""A webhook receiver for tests: an HTTP server on 127.0.0.1 that records every POST it gets."""

import select
import socket
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


class SlowReceivers:
    """``count`` receivers on 127.0.0.1 that accept every connection and never answer it, or, with
    ``trickle``, answer one byte of a status line every 0.2 s and never finish. One thread serves all."""

    TRICKLE = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100_000

    def __init__(self, count: int, trickle: bool = False):
        self.trickle, self.connections, self._sent = trickle, [], {}
        self.accepted = [0] * count  # connections each receiver has accepted so far
        self.listeners = [socket.create_server(("127.0.0.1", 0), backlog=64) for _ in range(count)]
        self.urls = [f"http://127.0.0.1:{sock.getsockname()[1]}/hook" for sock in self.listeners]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            readable, _, _ = select.select(self.listeners + self.connections, [], [], 0.2)
            for sock in readable:
                if sock in self.listeners:
                    self.accepted[self.listeners.index(sock)] += 1
                    self.connections.append(sock.accept()[0])
                    self._sent[self.connections[-1]] = 0
                elif not sock.recv(65536):  # the sender gave up
                    self.connections.remove(sock)
                    sock.close()
            if self.trickle:
                for sock in list(self.connections):
                    sent = self._sent[sock]
                    try:
                        self._sent[sock] += sock.send(self.TRICKLE[sent : sent + 1])
                    except OSError:
                        self.connections.remove(sock)

    def bytes_sent(self) -> int:
        return sum(self._sent.values())

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def close(self):
        self._stop.set()
        self._thread.join()
        for sock in self.listeners + self.connections:
            sock.close()
