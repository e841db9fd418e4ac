"""The page at ``/`` is self-contained: labelled controls, and every asset served by Flask."""

import re

import pytest


def test_page_has_a_labelled_file_input_and_live_regions(client):
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert re.search(r'<input id="image"[^>]*type="file"', html)
    assert '<label for="image"' in html
    assert 'role="status"' in html and 'role="alert"' in html
    assert 'data-max-bytes="1048576"' in html and 'data-submit-url="/inference/image"' in html


def test_every_asset_is_local_no_cdn(client):
    html = client.get("/").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(url.startswith("/static/") for url in assets)
    for url in assets:
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"http://" not in response.data and b"https://" not in response.data
        response.close()


def test_the_page_takes_many_files_as_one_batch(client):
    html = client.get("/").get_data(as_text=True)
    assert re.search(r'<input id="image"[^>]*multiple', html)
    assert 'data-batch-url="/batches"' in html and 'data-batch-max-images="1000"' in html
    assert re.search(r'<progress id="batch-progress"', html)
    assert 'id="batch-jsonl"' in html and 'id="batch-csv"' in html


@pytest.mark.parametrize(
    "limit, shown",
    [(50_000, "48.8 KiB"), (51_200, "50 KiB"), (1_048_576, "1 MiB"), (1_572_864, "1.5 MiB"), (900, "900 bytes")],
)
def test_the_size_limit_is_shown_readably(make_app, limit, shown):
    html = make_app(MAX_IMAGE_BYTES=limit).test_client().get("/").get_data(as_text=True)
    assert f"at most {shown}</span>" in html
