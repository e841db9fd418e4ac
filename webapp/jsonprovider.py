"""JSON in and out through orjson: several times cheaper than the standard library per request."""

import orjson
from flask.json.provider import JSONProvider


class OrjsonProvider(JSONProvider):
    """Flask's ``jsonify`` and ``request.get_json`` through orjson (keys stay in insertion order)."""

    def dumps(self, obj, **kwargs) -> str:
        return orjson.dumps(obj).decode()

    def loads(self, s, **kwargs):
        return orjson.loads(s)

    def response(self, *args, **kwargs):
        return self._app.response_class(
            orjson.dumps(self._prepare_response_obj(args, kwargs)), mimetype="application/json"
        )
