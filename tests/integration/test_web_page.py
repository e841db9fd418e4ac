"""The web page in a real browser: Debian's chromium driven by Playwright against the deployment.

Screenshots go to ``ARTIFACTS_DIR`` (default ``tmp/artifacts``) for a person to look at.
"""

import base64

import pytest

from tests.conftest import SAMPLES, SHARED_IMAGES
from tests.support.browser import ARTIFACTS
from webapp.apidocs import load_spec

RESULT_TIMEOUT_MS = 120_000
# Runs before the page's own scripts (and outside its CSP): records every violation the browser reports.
RECORD_CSP_VIOLATIONS = """window.cspViolations = [];
document.addEventListener("securitypolicyviolation",
    (event) => window.cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI}`));"""


def open_page(context, url: str):
    """A new tab at ``url`` that records CSP violations, from events and from the console."""
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    page.goto(url)
    return page


def csp_violations(page) -> list[str]:
    return page.evaluate("window.cspViolations") + [text for text in page.console_errors if "Content Security" in text]


@pytest.fixture
def page(browser_context, base_url):
    page = open_page(browser_context, base_url + "/")
    yield page
    page.close()


def test_upload_shows_preview_status_and_top5_bars(page):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "image", "the file chooser is the first stop for the keyboard"

    with page.expect_request(lambda request: request.method == "POST") as posted:
        page.get_by_label("Drop images here, or choose files").set_input_files(SAMPLES / "soccer_ball.jpg")
    assert posted.value.headers["content-type"].startswith("multipart/form-data"), "the file goes as is, no base64"
    assert page.get_by_role("img", name="Preview of soccer_ball.jpg").is_visible()
    page.get_by_role("heading", name="Prediction").wait_for(timeout=RESULT_TIMEOUT_MS)

    assert page.locator("#prediction").inner_text() == "soccer ball"
    assert page.get_by_role("status").inner_text() == "Done."
    rows = page.locator("#top5 li")
    assert rows.count() == 5
    assert rows.first.locator(".label").inner_text() == "soccer ball"
    assert page.locator("#provenance").inner_text().startswith("mobilenet_v1_0.75_224 on litert, weights ")
    widths = [row.locator(".fill").evaluate("e => e.getBoundingClientRect().width") for row in rows.all()]
    assert widths == sorted(widths, reverse=True) and widths[0] > widths[-1]
    page.screenshot(path=ARTIFACTS / "web-page-result.png", full_page=True)
    assert csp_violations(page) == []


def test_a_refused_upload_is_explained_in_words(page):
    page.get_by_label("Drop images here, or choose files").set_input_files(SHARED_IMAGES / "labels.csv")
    alert = page.get_by_role("alert")
    alert.wait_for(timeout=RESULT_TIMEOUT_MS)
    assert alert.inner_text() == "This is not a supported image format; send a JPEG, PNG, GIF, WebP, BMP or TIFF."
    assert page.locator("#result").is_hidden()
    page.screenshot(path=ARTIFACTS / "web-page-error.png", full_page=True)


def test_an_image_dropped_on_the_zone_is_classified(page):
    data = base64.b64encode((SAMPLES / "elephant.jpg").read_bytes()).decode()
    dropped = page.evaluate_handle(
        """(data) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], "elephant.jpg", {type: "image/jpeg"}));
        return transfer;
    }""",
        data,
    )
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": dropped})
    page.get_by_role("heading", name="Prediction").wait_for(timeout=RESULT_TIMEOUT_MS)
    assert page.locator("#prediction").inner_text() in {"tusker", "African elephant", "Indian elephant"}


def test_many_files_go_as_one_batch_with_progress_and_a_results_file(page, base_url):
    import requests

    files = sorted(SHARED_IMAGES.glob("*.JPEG"))[:6]
    with page.expect_response(lambda response: response.request.method == "POST") as posted:
        page.get_by_label("Drop images here, or choose files").set_input_files(files)
    assert posted.value.url.endswith("/batches") and posted.value.status == 202
    page.get_by_role("status").filter(has_text="Done: download the results file").wait_for(timeout=RESULT_TIMEOUT_MS)
    assert page.locator("#batch-counts").inner_text() == f"{len(files)} of {len(files)} ended, {len(files)} classified"
    assert page.locator("#batch-progress").evaluate("e => e.value === e.max")
    csv_link = page.get_by_role("link", name="CSV").get_attribute("href")
    lines = requests.get(base_url + csv_link, timeout=10).text.splitlines()
    assert lines[0].startswith("uuid,name,status") and [line.split(",")[1] for line in lines[1:]] == [
        file.name for file in files
    ]
    page.screenshot(path=ARTIFACTS / "web-page-batch.png", full_page=True)
    assert csp_violations(page) == []


@pytest.fixture(scope="module")
def idle_url(tmp_path_factory, new_queue):
    """The web alone, with no worker: a job stays pending until it is cancelled."""
    import sys

    from deploy.harness import Process, create_database, deployment_env, drop_database, free_port

    database_url = create_database("imgsvc_page")
    env = deployment_env(tmp_path_factory.mktemp("idle-instance"), database_url, new_queue())
    port = free_port()
    web = Process(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        env,
        tmp_path_factory.mktemp("idle-logs") / "web.log",
    )
    try:
        web.wait_for("Booting worker")
        yield f"http://127.0.0.1:{port}"
    finally:
        web.stop()
        drop_database(database_url)


def test_a_pending_job_can_be_cancelled_from_the_page(browser_context, idle_url):
    import requests

    page = open_page(browser_context, idle_url + "/")
    with page.expect_response(lambda response: response.request.method == "POST") as posted:
        page.get_by_label("Drop images here, or choose files").set_input_files(SAMPLES / "bmw.png")
    job = posted.value.json()["uuid"]
    page.get_by_role("status").filter(has_text="Waiting for a worker").wait_for(timeout=30_000)
    page.get_by_role("button", name="Cancel this job").click()
    page.get_by_role("status").filter(has_text="Cancelled").wait_for(timeout=30_000)
    assert page.get_by_role("button", name="Cancel this job").is_hidden()
    assert requests.get(f"{idle_url}/predictions/{job}", timeout=10).json() == {"uuid": job, "status": "cancelled"}
    page.screenshot(path=ARTIFACTS / "web-page-cancelled.png", full_page=True)
    assert csp_violations(page) == []
    page.close()


def test_docs_renders_every_operation_under_the_csp(browser_context, base_url):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    docs = open_page(browser_context, base_url + "/docs")
    try:
        operations = docs.locator(".opblock-summary")
        operations.first.wait_for(timeout=30_000)
        summaries = {" ".join(text.split()[:2]) for text in operations.all_inner_texts()}
        assert summaries == {
            f"{method.upper()} {path}" for path, methods in load_spec()["paths"].items() for method in methods
        }
        operations.first.click()  # expanded: parameters, example bodies and responses render too
        docs.locator(".opblock-body .responses-wrapper").first.wait_for()
        docs.screenshot(path=ARTIFACTS / "docs-page.png", full_page=True)
        assert csp_violations(docs) == []
    finally:
        docs.close()


PAGE_KEY = "page-key-0123456789abcdef"


@pytest.fixture(scope="module")
def keyed_url(service, service_env, tmp_path_factory):
    """The proxy, web and waiter with API_KEYS set, on the session's database and queue (its worker classifies)."""
    from deploy.harness import running_web

    with running_web({**service_env, "API_KEYS": PAGE_KEY}, tmp_path_factory.mktemp("keyed-web")) as (url, _, _):
        yield url


def test_the_page_asks_for_a_key_when_the_service_needs_one(browser_context, keyed_url):
    page = open_page(browser_context, keyed_url + "/")
    page.get_by_label("Drop images here, or choose files").set_input_files(SAMPLES / "elephant.jpg")
    key_field = page.get_by_label("This service needs an API key.")
    key_field.wait_for(timeout=30_000)
    key_field.fill("not-the-key")
    page.get_by_role("button", name="Use this key").click()
    page.get_by_label("That API key was not accepted; enter another.").fill(PAGE_KEY)
    with page.expect_request(lambda request: request.method == "POST") as posted:
        page.get_by_role("button", name="Use this key").click()
    assert posted.value.headers["authorization"] == f"Bearer {PAGE_KEY}"
    page.get_by_role("heading", name="Prediction").wait_for(timeout=RESULT_TIMEOUT_MS)
    assert page.locator("#prediction").inner_text() in {"tusker", "African elephant", "Indian elephant"}
    assert PAGE_KEY not in page.content(), "the key is never written into the page"
    page.screenshot(path=ARTIFACTS / "web-page-api-key.png", full_page=True)
    assert csp_violations(page) == []
    page.close()
