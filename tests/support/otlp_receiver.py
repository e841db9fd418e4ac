"""An OTLP/HTTP trace receiver for tests: decodes what exporters POST to /v1/traces with the real
protobuf messages (opentelemetry-proto) and keeps every span."""

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


class OtlpReceiver:
    """``spans``: one dict per span received (hex ids, name, service, kind, parent, links, attributes)."""

    def __init__(self):
        self.spans, self._lock = [], threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                with receiver._lock:
                    receiver.spans.extend(decoded(request))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def trace(self, trace_id: str) -> list[dict]:
        with self._lock:
            return [span for span in self.spans if span["trace_id"] == trace_id]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def decoded(request: ExportTraceServiceRequest):
    for resource_spans in request.resource_spans:
        resource = {item.key: item.value.string_value for item in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield {
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex() or None,
                    "name": span.name,
                    "kind": span.kind,
                    "service": resource.get("service.name"),
                    "links": [(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                    "attributes": {item.key: _value(item.value) for item in span.attributes},
                }


def _value(value):
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None
