"""Issue 12 part 4, the server side: citations name their page or section and open the indexed file read-only.

A real Assistant (bundled model, embedded Chroma) over a small library of every format, served by uvicorn and
called with httpx: a cited source opens with the right type and headers, anything outside the index is 404,
and the route takes the same keys and rate limits as the rest of ``/api``.
"""

from __future__ import annotations

import html
import io
import json
import re
import shutil
import time

import httpx
import pytest

from assistant.api.server import create_app
from assistant.config import Settings
from assistant.facade import Assistant
from assistant.store import PassageStore, make_client
from tests.conftest import ARTICLE
from tests.integration.servers import free_port, run_app, serve_folder, write_host_page
from tests.integration.test_browser import browser  # noqa: F401 - the fixture is used by name
from tests.unit.test_locations import POLICY, pdf_bytes

pytestmark = pytest.mark.integration

KEY = "k-open-docs-5d1e"
WIDGET_KEY = "pub-widget-open"
ORIGIN = "http://127.0.0.1:1"
WORD_NAME = "Reisekosten Übersicht.docx"
PAGE = (
    "<html><head><title>Canteen</title><script>document.title = 'ran'</script></head><body>"
    "<h1>Canteen</h1><p>The staff canteen opens at eight in the morning and closes at three.</p>"
    "<img src=x onerror=\"alert('ran')\"></body></html>"
)


def word_bytes() -> bytes:
    from docx import Document

    doc = Document()
    doc.add_heading("Travel costs", level=1)
    doc.add_paragraph("Train tickets are booked through the travel desk on the second floor.")
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def library(real_assistant, tmp_path_factory) -> Assistant:
    root = tmp_path_factory.mktemp("open-sources")
    sources = root / "sources"
    (sources / "notes").mkdir(parents=True)
    shutil.copy(ARTICLE, sources / ARTICLE.name)
    (sources / "policy.pdf").write_bytes(pdf_bytes(POLICY))
    (sources / "canteen.html").write_text(PAGE, encoding="utf-8")
    (sources / WORD_NAME).write_bytes(word_bytes())
    (sources / "notes" / "parking.md").write_text(
        "# Parking\n\nStaff parking permits cost twelve euros per month.\n", encoding="utf-8"
    )
    (sources / ".hidden.md").write_text("# Hidden\n\nNot for indexing.\n", encoding="utf-8")
    (root / "secret.txt").write_text("the server's own secret\n", encoding="utf-8")
    (sources / "link.txt").symlink_to(root / "secret.txt")  # leads out of the folder: never indexed
    settings = Settings(sources_dir=sources, index_dir=root / "index", _env_file=None)
    settings.paths.data_dir = root / "data"
    bot = Assistant(settings, real_assistant.embedder, PassageStore(make_client(settings), settings.collection_name))
    report = bot.ingest()
    assert report.added == 5, report
    return bot


@pytest.fixture(scope="module")
def open_server(library):
    with run_app(create_app(library, with_ui=False), free_port()) as url:
        yield url


@pytest.fixture
def http(open_server):
    with httpx.Client(base_url=open_server, timeout=30) as client:
        yield client


def test_a_cited_pdf_names_its_page_and_opens_inline(http, library):
    answer = http.post("/api/ask", json={"question": "How many days of annual leave do staff get?"}).json()
    cited = [c for c in answer["citations"] if c["source"] == "policy.pdf"]
    assert cited, answer
    page = re.match(r"pages? (\d+)", cited[0]["location"])[1]  # the first page the passage is on
    assert cited[0]["location"].startswith("page") and cited[0]["open_url"] == f"/api/sources/policy.pdf#page={page}"
    response = http.get(cited[0]["open_url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'inline; filename="policy.pdf"'
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert response.content == (library.settings.paths.sources_dir / "policy.pdf").read_bytes()


def test_every_citation_carries_its_open_url_in_every_answer_shape(http):
    question = "How much does a staff parking permit cost?"
    answer = http.post("/api/ask", json={"question": question}).json()
    assert answer["citations"]
    for citation in answer["citations"]:
        assert http.get(citation["open_url"]).status_code == 200
    parking = next(c for c in answer["citations"] if c["source"] == "notes/parking.md")
    assert parking["open_url"].startswith("/api/sources/notes/parking.md#:~:text=") and parking["location"] == "Parking"
    chat = http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": question}]}).json()
    assert [c["open_url"] for c in chat["citations"]] == [c["open_url"] for c in answer["citations"]]


def test_stored_html_is_served_as_plain_text_in_a_sandbox(http, library):
    response = http.get("/api/sources/canteen.html")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-disposition"] == 'inline; filename="canteen.html"'
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy and "frame-ancestors 'self'" in policy
    assert response.text == PAGE, "served as it is stored, offsets and all"


def test_a_word_file_is_a_download_with_its_unicode_name(http, library):
    response = http.get(f"/api/sources/{WORD_NAME}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument")
    assert response.headers["content-disposition"] == "attachment; filename*=utf-8''Reisekosten%20%C3%9Cbersicht.docx"
    assert response.content == (library.settings.paths.sources_dir / WORD_NAME).read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/api/sources/missing.pdf",
        "/api/sources/link.txt",  # a link out of the sources folder: skipped by ingest, not served
        "/api/sources/.hidden.md",
        "/api/sources/%2e%2e/secret.txt",
        "/api/sources/..%2fsecret.txt",
        "/api/sources/notes/..%2f..%2fsecret.txt",
        "/api/sources/%2fetc%2fpasswd",
        "/api/sources//etc/passwd",
        "/api/sources/notes",
        "/api/sources/",
    ],
)
def test_anything_outside_the_index_is_not_found(open_server, path):
    with httpx.Client(base_url=open_server, timeout=30) as client:
        response = client.send(client.build_request("GET", httpx.URL(open_server + path)))
    assert response.status_code == 404, (path, response.text)
    assert response.headers["content-type"] == "application/json"
    assert "secret" not in response.text or "secret.txt" in path


def test_the_index_decides_not_the_folder(library, tmp_path):
    # A file copied in after the last ingest is not served until it is indexed.
    late = library.settings.paths.sources_dir / "late.txt"
    late.write_text("Added after the last ingest.\n", encoding="utf-8")
    try:
        with run_app(create_app(library, with_ui=False), free_port()) as url:
            assert httpx.get(f"{url}/api/sources/late.txt").status_code == 404
    finally:
        late.unlink()


@pytest.fixture(scope="module")
def keyed_server(library):
    settings = library.settings.model_copy(deep=True)
    settings.security.api_keys = KEY
    settings.security.widget_key = WIDGET_KEY
    settings.security.allowed_origins = ORIGIN
    with run_app(create_app(library, settings, with_ui=False), free_port()) as url:
        yield url


def test_with_keys_set_opening_a_document_needs_an_api_key(keyed_server):
    url = f"{keyed_server}/api/sources/policy.pdf"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    widget = {"Authorization": f"Bearer {WIDGET_KEY}", "Origin": ORIGIN}
    assert httpx.get(url, headers=widget).status_code == 401, "the public widget key opens no documents"
    response = httpx.get(url, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"


def test_opening_documents_counts_against_the_rate_limit(library):
    settings = library.settings.model_copy(deep=True)
    settings.security.rate_limit_per_minute = 2
    with run_app(create_app(library, settings, with_ui=False), free_port()) as url:
        statuses = [httpx.get(f"{url}/api/sources/policy.pdf").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert httpx.get(f"{url}/api/sources/policy.pdf").headers["retry-after"]


# --- Signed links: with keys set, a browser opens a cited document without sending a key -------------------

LINK_SECRET = "open-docs-link-secret-2026"
PARKING = "How much does a staff parking permit cost?"


@pytest.fixture(scope="module")
def signing_server(library):
    """Keys on, a configured link secret (so a test can sign links of its own), the chat UI mounted."""
    settings = library.settings.model_copy(deep=True)
    security = settings.security
    security.api_keys, security.widget_key, security.allowed_origins = KEY, WIDGET_KEY, ORIGIN
    security.link_secret = LINK_SECRET
    security.failed_auth_per_minute = 100  # every refused link counts as a failed authentication of 127.0.0.1
    with run_app(create_app(library, settings), free_port()) as url:
        yield url


def keyed_answer(url: str, question: str, headers: dict[str, str] | None = None) -> dict:
    headers = headers or {"Authorization": f"Bearer {KEY}"}
    response = httpx.post(f"{url}/api/ask", json={"question": question}, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_with_keys_set_every_answer_shape_carries_links_that_open_without_a_key(signing_server, library):
    answer = keyed_answer(signing_server, PARKING)
    parking = next(c for c in answer["citations"] if c["source"] == "notes/parking.md")
    assert parking["open_url"].startswith("/api/sources/notes/parking.md?exp=") and "&sig=" in parking["open_url"]
    opened = httpx.get(signing_server + parking["open_url"])  # no Authorization header, as a browser sends it
    assert opened.status_code == 200 and "twelve euros" in opened.text
    assert opened.headers["cache-control"] == "no-store" and opened.headers["x-content-type-options"] == "nosniff"

    staff = {"Authorization": f"Bearer {KEY}"}
    body = {"messages": [{"role": "user", "content": PARKING}]}
    chat = httpx.post(f"{signing_server}/v1/chat/completions", json=body, headers=staff, timeout=30).json()
    done = None
    with httpx.stream("POST", f"{signing_server}/api/ask/stream", json={"question": PARKING}, headers=staff,
                      timeout=30) as events:  # fmt: skip
        lines = list(events.iter_lines())
    done = json.loads(lines[lines.index("event: done") + 1].removeprefix("data: "))
    for citations in (chat["citations"], done["citations"]):
        assert citations and all("&sig=" in c["open_url"] for c in citations)
        for citation in citations:
            assert httpx.get(signing_server + citation["open_url"]).status_code == 200, citation["open_url"]

    # A Unicode name, percent-encoded in the link, opens too: the signature is over the decoded id.
    word = keyed_answer(signing_server, "Where are train tickets booked?")
    link = next(c["open_url"] for c in word["citations"] if c["source"] == WORD_NAME)
    response = httpx.get(signing_server + link)
    assert response.status_code == 200
    assert response.content == (library.settings.paths.sources_dir / WORD_NAME).read_bytes()


def test_a_signature_opens_nothing_else(signing_server):
    answer = keyed_answer(signing_server, "How many days of annual leave do staff get?")
    link = next(c["open_url"] for c in answer["citations"] if c["source"] == "policy.pdf").split("#")[0]
    path, query = link.split("?")
    params = dict(pair.split("=") for pair in query.split("&"))
    sig = params["sig"]
    tampered = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")
    for url in [
        f"{path}?exp={params['exp']}&sig={tampered}",  # a tampered signature
        f"{path}?exp={int(params['exp']) + 60}&sig={sig}",  # a later expiry
        f"{path}?sig={sig}",  # no expiry
        f"/api/sources/canteen.html?{query}",  # another source with the same signature
        f"/api/sources/notes/parking.md?{query}",
        f"/api/sources?{query}",  # other routes
        f"/api/feedback?{query}",
        f"/v1/models?{query}",
        f"/metrics?{query}",
    ]:
        assert httpx.get(signing_server + url).status_code == 401, url
    assert httpx.get(f"{signing_server}/api/documents?{query}").status_code == 403, "admin routes stay off"
    assert httpx.post(f"{signing_server}{link}").status_code == 401, "only GET opens a document"
    ask = httpx.post(f"{signing_server}/api/ask?{query}", json={"question": PARKING}, timeout=30)
    assert ask.status_code == 401, "a signature is no key for the chat routes"
    assert httpx.get(signing_server + link).status_code == 200, "the link itself still opens"


def test_an_expired_link_is_refused(signing_server):
    from assistant.api.security import LinkSigner
    from assistant.api.sources import source_url

    # Links this server would have signed (it shares LINK_SECRET) two hours ago, and for longer than it allows.
    expired = source_url("policy.pdf", LinkSigner(LINK_SECRET, 3600, clock=lambda: time.time() - 7200))
    too_long = source_url("policy.pdf", LinkSigner(LINK_SECRET, 30 * 86_400))
    fresh = source_url("policy.pdf", LinkSigner(LINK_SECRET, 3600))
    assert httpx.get(signing_server + expired).status_code == 401
    assert httpx.get(signing_server + too_long).status_code == 401
    assert httpx.get(signing_server + fresh).status_code == 200, "the same secret and lifetime do open it"


def test_a_tiny_lifetime_expires_the_servers_own_links(library):
    settings = library.settings.model_copy(deep=True)
    settings.security.api_keys, settings.security.link_lifetime_s = KEY, 1
    with run_app(create_app(library, settings, with_ui=False), free_port()) as url:
        link = next(c["open_url"] for c in keyed_answer(url, PARKING)["citations"])
        time.sleep(2.1)
        assert httpx.get(url + link).status_code == 401


def test_the_widgets_answer_carries_a_working_signed_link(signing_server):
    widget = {"Authorization": f"Bearer {WIDGET_KEY}", "Origin": ORIGIN}
    answer = keyed_answer(signing_server, PARKING, widget)
    link = next(c["open_url"] for c in answer["citations"] if c["source"] == "notes/parking.md")
    assert httpx.get(signing_server + link).status_code == 200, "opened as a browser tab would: no key"
    assert httpx.get(signing_server + link, headers=widget).status_code == 200, "or from the widget's page"
    assert httpx.get(signing_server + link.split("?")[0], headers=widget).status_code == 401, "the key alone: no"


def test_signed_links_are_rate_limited_per_address(library):
    settings = library.settings.model_copy(deep=True)
    settings.security.api_keys, settings.security.rate_limit_per_minute = KEY, 3
    with run_app(create_app(library, settings, with_ui=False), free_port()) as url:
        link = next(c["open_url"] for c in keyed_answer(url, PARKING)["citations"])  # the key's own bucket
        assert [httpx.get(url + link).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_the_ui_cards_open_document_link_opens_without_a_key(signing_server):
    from gradio_client import Client

    client = Client(signing_server + "/", auth=("staff", KEY), verbose=False)
    _, _, cards = client.predict(PARKING, [], api_name="/chat")
    hrefs = [html.unescape(h) for h in re.findall(r"class='open-doc' href='([^']+)'", cards)]
    parking = next(h for h in hrefs if h.startswith("/api/sources/notes/parking.md?exp="))
    assert "#:~:text=" in parking, "the fragment still points at the passage"
    response = httpx.get(signing_server + parking.split("#")[0])
    assert response.status_code == 200 and "twelve euros" in response.text


@pytest.fixture(scope="module")
def widget_page(library, tmp_path_factory):
    """A keyed server and the example host page, on an allowed origin, carrying the widget key."""
    app_port, page_port = free_port(), free_port()
    pages = tmp_path_factory.mktemp("widget-open-pages")
    write_host_page(pages, app_port, WIDGET_KEY)
    settings = library.settings.model_copy(deep=True)
    security = settings.security
    security.api_keys, security.widget_key = KEY, WIDGET_KEY
    security.allowed_origins = f"http://127.0.0.1:{page_port}"
    app = create_app(library, settings, with_ui=False)
    with run_app(app, app_port) as url, serve_folder(pages, page_port) as host:
        yield {"app": url, "page": host + "/host.html"}


def test_the_widgets_open_document_link_opens_the_document_in_a_browser(browser, widget_page):  # noqa: F811
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    page = context.new_page()
    page.goto(widget_page["page"])
    page.click("#assistant-widget >> button.launch")
    page.fill("#assistant-widget >> input", PARKING)
    page.press("#assistant-widget >> input", "Enter")
    page.wait_for_selector("#assistant-widget >> .msg.bot .acts", timeout=30_000)
    card = page.locator("#assistant-widget >> details", has_text="notes/parking.md").first
    if card.get_attribute("open") is None:  # only the first card starts open
        card.locator("summary").click()
    link = card.locator("a.open-doc")
    href = link.get_attribute("href")
    assert href.startswith(widget_page["app"] + "/api/sources/notes/parking.md?exp=") and "&sig=" in href
    assert link.get_attribute("target") == "_blank" and "noopener" in link.get_attribute("rel")
    with context.expect_page() as opened:
        link.click()
    document = opened.value
    document.wait_for_load_state()
    assert "twelve euros" in document.inner_text("body"), "the document opens in a new tab, without a key"
    context.close()
