"""The batch API's logic on SQLite and the in-memory broker: body parsing, limits, counts, results, cancel."""

import io
import json
import tarfile
import tempfile

import pytest

from jobs.batches import batch_status
from jobs.imagestore import DirectoryImageStore, ImageNotFound, part_url, split_part
from tests.conftest import image_bytes
from webapp.batches.parsing import BatchBodyRefused, multipart_body, spool, tar_body

GOOD = image_bytes()


def spooled(data: bytes):
    file = tempfile.TemporaryFile()  # noqa: SIM115 -- returned open, closed when the test drops it
    file.write(data)
    file.flush()
    return file


def multipart(parts, boundary="b0undary", preamble=b"") -> bytes:
    body = preamble
    for field, filename, data in parts:
        disposition = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename is not None else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def tar(members) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def slices(body: bytes, parts):
    return [body[part.offset : part.offset + part.length] for part in parts]


@pytest.mark.parametrize("preamble", [b"", b"\r\n", b"a preamble\r\n"])
def test_multipart_parts_are_byte_ranges_of_the_body(preamble):
    body = multipart(
        [("image", "a.jpg", GOOD), ("callback_url", None, b"https://example.com/hook"), ("image", "b.png", b"x")],
        preamble=preamble,
    )
    parsed = multipart_body(spooled(body), "b0undary", 10)
    assert [part.name for part in parsed.parts] == ["a.jpg", "b.png"]
    assert slices(body, parsed.parts) == [GOOD, b"x"]
    assert parsed.fields == {"callback_url": "https://example.com/hook"}


def test_an_image_whose_bytes_contain_crlf_and_dashes_is_kept_whole():
    tricky = b"\r\n--b0undar\r\n--" + GOOD + b"\r\n"
    body = multipart([("image", "t.jpg", tricky)])
    assert slices(body, multipart_body(spooled(body), "b0undary", 10).parts) == [tricky]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", 400),
        (b"no boundary here", 400),
        (b'--b0undary\r\nContent-Disposition: form-data; name="image"; filename="a"\r\n\r\nabc', 400),
        (b"--b0undary\r\nX: y\r\n\r\nabc\r\n--b0undary--", 400),
        (multipart([("other", None, b"x")]), 422),
        (multipart([("image", None, b"x")]), 422),
        (multipart([("callback_url", None, b"a"), ("callback_url", None, b"b")]), 422),
        (multipart([("image", "a", b"1")] * 3), 413),
    ],
)
def test_a_malformed_or_oversized_multipart_body_is_refused(body, status):
    with pytest.raises(BatchBodyRefused) as refusal:
        multipart_body(spooled(body), "b0undary", 2)
    assert refusal.value.status == status and refusal.value.detail


def test_tar_members_are_byte_ranges_named_by_their_path_and_directories_are_skipped():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        directory = tarfile.TarInfo("photos")
        directory.type = tarfile.DIRTYPE
        archive.addfile(directory)
        for name, data in (("photos/a.jpg", GOOD), ("b.png", b"xyz")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    body = buffer.getvalue()
    parts = tar_body(spooled(body), 10).parts
    assert [part.name for part in parts] == ["photos/a.jpg", "b.png", "link.jpg"]
    assert slices(body, parts[:2]) == [GOOD, b"xyz"]
    assert parts[2].problem == "this tar member is not a regular file"


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"not a tar" * 100, 400), (tar([("a", b"1")] * 3), 413), (tar([("a", GOOD)])[:1024], 400)],
)
def test_a_malformed_or_oversized_tar_is_refused(body, status):
    with pytest.raises(BatchBodyRefused) as refusal:
        tar_body(spooled(body), 2)
    assert refusal.value.status == status


def test_spool_stops_past_the_byte_limit():
    target = io.BytesIO()
    assert spool(io.BytesIO(b"x" * 100), target, 100) == 100
    with pytest.raises(BatchBodyRefused) as refusal:
        spool(io.BytesIO(b"x" * 101), io.BytesIO(), 100)
    assert refusal.value.status == 413


def test_part_urls_read_their_range_and_deleting_one_keeps_the_upload(tmp_path):
    store = DirectoryImageStore(tmp_path / "images")
    source = tmp_path / "spool"
    source.write_bytes(b"head" + GOOD + b"tail")
    url = store.save_file("ab.batch", source)
    assert not source.exists()
    part = part_url(url, 4, len(GOOD))
    assert split_part(part) == (url, (4, len(GOOD)))
    assert store.read(part) == GOOD
    store.delete(part)
    assert store.read(part) == GOOD
    with pytest.raises(ImageNotFound):
        store.read(part_url(url, 4, len(GOOD) + 100))  # past the end
    store.delete(url)
    with pytest.raises(ImageNotFound):
        store.read(part)


def test_status_follows_pending_rows_and_cancel():
    assert [batch_status(False, 3), batch_status(False, 0), batch_status(True, 3), batch_status(True, 0)] == [
        "in_progress",
        "completed",
        "cancelling",
        "cancelled",
    ]


def post(client, pairs, **fields):
    data = {"image": [(io.BytesIO(content), name) for name, content in pairs], **fields}
    return client.post("/batches", data=data)


def test_post_records_each_image_and_publishes_the_good_ones_in_one_go(app, client):
    from config.settings import current_settings
    from jobs.queue import queue_for
    from tests.conftest import drain_queue

    response = post(client, [("a.jpg", GOOD), ("junk.jpg", b"junk"), ("c.jpg", GOOD)])
    assert response.status_code == 202, response.json
    body = response.json
    assert body["request_counts"] == {"total": 3, "pending": 2, "done": 0, "failed": 1, "cancelled": 0}
    assert response.headers["Location"] == f"/batches/{body['id']}"
    with app.app_context():  # bulk work, on the batch's own lane (no API keys: the batch is the client)
        lane = queue_for(current_settings(), bulk=True, client=body["id"])
    [message] = drain_queue(app, lane)  # the batch's jobs travel BULK_CHUNK to a message
    jobs = message.payload[0][0]
    assert len(jobs) == 2
    store = app.extensions["image_store"]
    assert [store.read(image_url) for _, image_url in jobs] == [GOOD, GOOD]
    state = client.get(f"/batches/{body['id']}").json
    assert state["status"] == "in_progress" and state["completed_at"] is None
    # Each image is an ordinary job.
    failed = json.loads(client.get(f"/batches/{body['id']}/results").data)
    assert failed["name"] == "junk.jpg" and failed["status"] == "failed" and "not a supported image" in failed["error"]
    assert client.get(f"/predictions/{failed['uuid']}").json["status"] == "failed"


def test_a_batch_of_refused_images_completes_at_once(client, published):
    body = post(client, [("a", b"\xff\xd8\xff"), ("b", b"junk")]).json
    state = client.get(f"/batches/{body['id']}").json
    assert state["status"] == "completed" and state["completed_at"] and state["request_counts"]["failed"] == 2
    assert published() == []


def test_limits_refuse_the_whole_batch_and_store_nothing(make_app, tmp_path):
    app = make_app(BATCH_MAX_IMAGES=2, BATCH_MAX_BYTES=4 * len(GOOD))
    client = app.test_client()
    too_many = post(client, [("a", GOOD)] * 3)
    assert too_many.status_code == 413 and "BATCH_MAX_IMAGES" in too_many.json["detail"]
    too_large = post(client, [("a", GOOD + b"x" * 4 * len(GOOD))])
    assert too_large.status_code == 413 and "BATCH_MAX_BYTES" in too_large.json["detail"]
    assert not list((tmp_path / "images").rglob("*.batch"))
    assert not list((tmp_path / "instance" / "spool").iterdir())


def test_results_in_order_as_jsonl_and_csv_across_pages(app, client, monkeypatch):
    import jobs.batches
    from jobs.records import done_outcome, record_outcomes

    body = post(client, [(f"{index:02d}.jpg", GOOD) for index in range(7)]).json
    lines = client.get(f"/batches/{body['id']}/results").data.decode().splitlines()
    assert lines == []  # nothing has ended yet
    with app.app_context():
        from jobs.database import db
        from jobs.records import Prediction

        uuids = [row.uuid for row in db.session.query(Prediction).order_by(Prediction.batch_index)]
        record_outcomes({u: done_outcome("tench", 0.9, [{"label": "tench", "score": 0.9}]) for u in uuids[::2]})
    monkeypatch.setattr(jobs.batches, "RESULT_PAGE", 2)
    lines = [json.loads(line) for line in client.get(f"/batches/{body['id']}/results").data.splitlines()]
    assert [line["name"] for line in lines] == ["00.jpg", "02.jpg", "04.jpg", "06.jpg"]
    assert lines[0] == {
        "uuid": uuids[0],
        "name": "00.jpg",
        "status": "done",
        "prediction": "tench",
        "confidence": 0.9,
        "top5": [{"label": "tench", "score": 0.9}],
        "error": None,
    }
    csv_text = client.get(f"/batches/{body['id']}/results?format=csv").data.decode().splitlines()
    assert csv_text[0] == "uuid,name,status,prediction,confidence,top5,error"
    assert len(csv_text) == 5 and csv_text[1].startswith(f"{uuids[0]},00.jpg,done,tench,0.9,")
    assert client.get(f"/batches/{body['id']}/results?format=xml").status_code == 422


def test_cancel_is_idempotent_and_completes_the_batch(client):
    body = post(client, [("a", GOOD), ("b", GOOD)]).json
    first = client.delete(f"/batches/{body['id']}")
    assert first.status_code == 200 and first.json["status"] == "cancelled"
    assert first.json["request_counts"]["cancelled"] == 2 and first.json["completed_at"]
    again = client.delete(f"/batches/{body['id']}")
    assert again.status_code == 200 and again.json == first.json


def test_another_key_does_not_find_a_batch(make_app):
    client = make_app(API_KEYS=("key-a", "key-b")).test_client()
    a, b = {"Authorization": "Bearer key-a"}, {"Authorization": "Bearer key-b"}
    assert client.post("/batches", data={"image": [(io.BytesIO(GOOD), "a")]}).status_code == 401
    batch_id = client.post("/batches", data={"image": [(io.BytesIO(GOOD), "a")]}, headers=a).json["id"]
    for path in (f"/batches/{batch_id}", f"/batches/{batch_id}/results"):
        assert client.get(path, headers=a).status_code == 200
        assert client.get(path, headers=b).status_code == 404
    assert client.delete(f"/batches/{batch_id}", headers=b).status_code == 404
    assert client.get(f"/batches/{batch_id}", headers=a).json["status"] == "in_progress"


def test_unknown_types_and_ids_are_problems(client):
    assert client.post("/batches", data=b"{}", content_type="application/json").status_code == 415
    assert client.post("/batches?x=1", data=tar([("a", GOOD)]), content_type="application/x-tar").status_code == 400
    assert client.get("/batches/not-a-uuid").status_code == 404
    assert client.get("/batches/4b4a63a5-4a0b-4b55-9f7a-8b8f0c39c6f1").status_code == 404


def test_retention_deletes_a_batch_upload_once_its_jobs_are_gone(make_app, tmp_path):
    from datetime import timedelta

    from sqlalchemy import update

    from jobs.batches import Batch
    from jobs.database import db
    from jobs.records import Prediction, utcnow
    from tasks import retention

    app = make_app(RETENTION_DAYS=30, ORPHAN_GRACE_SECONDS=0)
    client = app.test_client()
    old, new = (post(client, [("a", GOOD), ("b", GOOD)]).json["id"] for _ in range(2))
    with app.app_context():
        upload = {row.id: row.upload_url for row in db.session.query(Batch)}
        path = {batch_id: tmp_path / "images" / batch_id[:2] / f"{batch_id}.batch" for batch_id in upload}
        assert all(p.exists() for p in path.values())
        # The orphan sweep knows an upload its batch points at is not an orphan.
        assert retention.purge_orphan_images(utcnow() + timedelta(seconds=1)) == 0
        long_ago = utcnow() - timedelta(days=31)
        db.session.execute(update(Prediction).where(Prediction.batch_id == old).values(created_at=long_ago))
        db.session.execute(update(Batch).where(Batch.id == old).values(created_at=long_ago))
        db.session.commit()
        counts = retention.purge_expired()
        assert counts["jobs"] == 2 and counts["batches"] == 1
        assert {row.id for row in db.session.query(Batch)} == {new}
    assert not path[old].exists() and path[new].exists()
    assert client.get(f"/batches/{old}").status_code == 404


def test_the_last_ended_image_queues_the_batch_webhook_once_and_a_get_claims_an_unclaimed_end(make_app):
    from jobs.broker import DELIVER_BATCH_TASK, webhook_queue
    from jobs.database import db
    from jobs.endings import announce_ended
    from jobs.records import Prediction, failed_outcome, record_outcomes
    from tests.conftest import drain_queue

    app = make_app(WEBHOOK_SECRET="s", WEBHOOK_ALLOW_PRIVATE=True)
    client = app.test_client()
    hook = "http://127.0.0.1:9/hook"
    ids = [post(client, [("a", GOOD), ("b", GOOD)], callback_url=hook).json["id"] for _ in range(2)]
    with app.app_context():
        rows = {
            batch_id: [row.uuid for row in db.session.query(Prediction).filter_by(batch_id=batch_id)]
            for batch_id in ids
        }
        first, second = rows[ids[0]], rows[ids[1]]
        record_outcomes({first[0]: failed_outcome("x")})
        announce_ended({first[0]: "failed"})
        assert drain_queue(app, webhook_queue("inference").name) == []  # one image is still pending
        record_outcomes({first[1]: failed_outcome("x")})
        announce_ended({first[1]: "failed"})
        announce_ended({first[1]: "failed"})  # a duplicate announcement claims nothing
        [message] = drain_queue(app, webhook_queue("inference").name)
        assert message.headers["task"] == DELIVER_BATCH_TASK and message.payload[0] == [ids[0], 1]
        # The second batch's last worker died between its commit and its announcement: a GET claims it.
        record_outcomes({uuid: failed_outcome("x") for uuid in second})
    state = client.get(f"/batches/{ids[1]}").json
    assert state["status"] == "completed" and state["completed_at"]
    [message] = drain_queue(app, webhook_queue("inference").name)
    assert message.payload[0] == [ids[1], 1]
    assert client.get(f"/batches/{ids[1]}").json == state
    assert drain_queue(app, webhook_queue("inference").name) == []
