"""The batch client's own logic: which files, which labels, accuracy, and what it prints."""

import shutil

import pytest

from client.__main__ import parse_args
from client.report import Outcome, accuracy, exchange_lines, find_images, read_labels, summary_table

UUID = "0b6f1c6e-8f2f-4c8e-9c1a-2f0e6b1f7a11"


def done(name, *labels, confidence=0.8):
    top5 = [{"label": label, "score": 0.1} for label in labels]
    return Outcome(
        name=name,
        post_status=202,
        post_body={"uuid": UUID},
        get_status=200,
        seconds=1.25,
        get_body={"uuid": UUID, "status": "done", "prediction": labels[0], "confidence": confidence, "top5": top5},
    )


def refused(name):
    return Outcome(name=name, post_status=422, post_body={"status": 422, "detail": "'data' is not valid base64."})


def test_find_images_takes_image_files_of_the_folder_only(tmp_path):
    for name in ("b.JPEG", "a.png", "labels.csv", "notes.txt", "c.webp"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "d.jpg").write_bytes(b"x")
    assert [p.name for p in find_images(tmp_path)] == ["a.png", "b.JPEG", "c.webp"]


def test_labels_come_from_labels_csv_when_there_is_one(tmp_path):
    assert read_labels(tmp_path) is None
    (tmp_path / "labels.csv").write_text("filename,class_index,wnid,label\nx.JPEG,386,n02504458,African_elephant\n")
    assert read_labels(tmp_path) == {"x.JPEG": "African_elephant"}


def test_accuracy_counts_top1_and_top5_over_labelled_images_and_misses_unanswered_ones():
    outcomes = [done("a", "tusker", "African_elephant"), done("b", "dogsled"), refused("c"), done("unlabelled", "x")]
    labels = {"a": "African_elephant", "b": "dogsled", "c": "tench"}
    result = accuracy(outcomes, labels)
    assert (result.labelled, result.top1, result.top5) == (3, 1, 2)
    assert str(result) == "top-1 accuracy: 1/3 (33.3%)   top-5 accuracy: 2/3 (66.7%)"


def test_each_image_prints_its_post_and_get_answers():
    lines = exchange_lines(done("a.jpg", "tusker"))
    assert lines[0] == f'a.jpg: POST 202 {{"uuid":"{UUID}"}}'
    assert lines[1].startswith(f'a.jpg: GET 200 {{"uuid":"{UUID}","status":"done","prediction":"tusker"')
    assert exchange_lines(refused("c.jpg")) == [
        'c.jpg: POST 422 {"status":422,"detail":"\'data\' is not valid base64."}'
    ]
    timed_out = Outcome(
        name="d.jpg",
        post_status=202,
        post_body={"uuid": UUID},
        get_status=202,
        get_body={"uuid": UUID, "status": "pending"},
        error="still pending after 5 s",
    )
    assert exchange_lines(timed_out)[-1] == "d.jpg: still pending after 5 s"
    assert timed_out.status == "error"


def test_summary_table_aligns_columns_and_marks_hits_against_labels():
    table = summary_table(
        [done("a.jpg", "tusker", "African_elephant"), refused("c.jpg")], {"a.jpg": "African_elephant", "c.jpg": "tench"}
    )
    header, rule, first, second = table.splitlines()
    assert header.split() == ["image", "status", "result", "confidence", "seconds", "expected", "top-1", "top-5"]
    assert first.split() == ["a.jpg", "done", "tusker", "0.800", "1.25", "African_elephant", "no", "yes"]
    assert second.startswith("c.jpg  refused  'data' is not valid base64.")
    assert second.split()[-3:] == ["tench", "no", "no"]
    assert header.index("status") == first.index("done") == second.index("refused") == rule.index(" -") + 1
    assert "expected" not in summary_table([refused("c.jpg")], None)


def test_the_command_line_needs_a_folder_and_a_positive_concurrency(tmp_path, capsys):
    args = parse_args(["batch", str(tmp_path), "--url", "http://127.0.0.1:8000", "--concurrency", "3", "--summary"])
    assert (args.folder, args.url, args.concurrency, args.summary) == (tmp_path, "http://127.0.0.1:8000", 3, True)
    for bad in (["batch", str(tmp_path / "missing")], ["batch", str(tmp_path), "--concurrency", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_post_image_sends_the_file_as_multipart_with_an_idempotency_key(app, tmp_path):
    import threading

    import requests
    from werkzeug.serving import make_server

    from client.batch import post_image
    from jobs.database import db
    from jobs.records import Prediction
    from tests.conftest import SAMPLES

    seen = []
    inner = app.wsgi_app

    def recording(environ, start_response):
        seen.append((environ.get("CONTENT_TYPE", ""), environ.get("HTTP_IDEMPOTENCY_KEY")))
        return inner(environ, start_response)

    app.wsgi_app = recording
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        response = post_image(requests.Session(), f"http://127.0.0.1:{server.server_port}", SAMPLES / "elephant.jpg")
    finally:
        server.shutdown()
    assert response.status_code == 202
    [(content_type, key)] = seen
    assert content_type.startswith("multipart/form-data") and key
    with app.app_context():
        row = db.session.get(Prediction, response.json()["uuid"])
        assert row.name == "elephant.jpg"
        assert app.extensions["image_store"].read(row.image_url) == (SAMPLES / "elephant.jpg").read_bytes()


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_results_written_by_one_run_are_read_back_by_the_next(tmp_path, suffix):
    from client.batches import ResultsFile, read_results

    out = tmp_path / f"results{suffix}"
    first = {"uuid": UUID, "name": "a.jpg", "status": "done", "prediction": "tench", "confidence": 0.5}
    first |= {"top5": [{"label": "tench", "score": 0.5}], "error": None}
    failed = {"uuid": UUID, "name": "b,\n.jpg", "status": "failed", "prediction": None, "confidence": None}
    failed |= {"top5": None, "error": "not an image"}
    ResultsFile(out).append([first])
    ResultsFile(out).append([failed])
    records = read_results(out)
    assert [record["name"] for record in records] == ["a.jpg", "b,\n.jpg"]
    assert records[0]["top5"] == first["top5"] and records[1]["error"] == "not an image"
    assert read_results(tmp_path / "absent.jsonl") == [] and read_results(None) == []


def test_each_image_goes_as_a_regular_tar_member_even_through_a_link(tmp_path):
    import io
    import os
    import tarfile

    from client.batches import chunks, write_tar

    (tmp_path / "real.jpg").write_bytes(b"abc")
    (tmp_path / "link.jpg").symlink_to(tmp_path / "real.jpg")
    os.link(tmp_path / "real.jpg", tmp_path / "hard.jpg")
    buffer = io.BytesIO()
    write_tar([tmp_path / "real.jpg", tmp_path / "link.jpg", tmp_path / "hard.jpg"], buffer)
    with tarfile.open(fileobj=buffer) as archive:
        members = archive.getmembers()
        assert [(m.name, m.isreg(), archive.extractfile(m).read()) for m in members] == [
            ("real.jpg", True, b"abc"),
            ("link.jpg", True, b"abc"),
            ("hard.jpg", True, b"abc"),
        ]
    assert chunks(list(range(5)), 2) == [[0, 1], [2, 3], [4]]


def test_the_output_file_must_be_jsonl_or_csv(tmp_path):
    assert parse_args(["batch", str(tmp_path), "--out", str(tmp_path / "r.csv")]).out.suffix == ".csv"
    assert parse_args(["batch", str(tmp_path)]).timeout == 3600
    assert parse_args(["batch", str(tmp_path), "--per-image"]).timeout == 180
    with pytest.raises(SystemExit):
        parse_args(["batch", str(tmp_path), "--out", str(tmp_path / "r.txt")])


def serve(app):
    """``app`` on a loopback port in a thread; returns its URL and a function that stops it."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server.shutdown


@pytest.mark.parametrize("how", ["option", "environment"])
def test_batch_sends_the_api_key_and_never_prints_it(make_app, tmp_path, monkeypatch, capsys, how):
    from client.__main__ import main
    from tests.conftest import SAMPLES

    key = "client-key-0123456789abcdef"
    shutil.copy(SAMPLES / "elephant.jpg", tmp_path)
    url, stop = serve(make_app(API_KEYS=(key,)))
    monkeypatch.delenv("API_KEY", raising=False)
    arguments = [str(tmp_path), "--url", url, "--timeout", "1", "--per-image"]
    if how == "option":
        arguments += ["--api-key", key]
    else:
        monkeypatch.setenv("API_KEY", key)
    try:
        main(["batch", *arguments])
    finally:
        stop()
    output = capsys.readouterr()
    assert ": POST 202" in output.out, output.out
    assert key not in output.out + output.err


@pytest.mark.parametrize("mode", [[], ["--per-image"]])
def test_batch_without_a_key_says_how_to_give_one(make_app, tmp_path, monkeypatch, capsys, mode):
    from client.__main__ import main
    from tests.conftest import SAMPLES

    shutil.copy(SAMPLES / "elephant.jpg", tmp_path)
    url, stop = serve(make_app(API_KEYS=("client-key-0123456789abcdef",)))
    monkeypatch.delenv("API_KEY", raising=False)
    try:
        assert main(["batch", str(tmp_path), "--url", url, *mode]) == 1
    finally:
        stop()
    output = capsys.readouterr()
    assert (": POST 401" in output.out) if mode else ("POST /batches answered 401" in output.err)
    assert "an API key is needed: pass --api-key KEY or set API_KEY" in output.err
