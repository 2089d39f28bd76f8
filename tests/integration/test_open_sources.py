"""Issue 12 part 4, the server side: citations name their page or section and open the indexed file read-only.

A real Assistant (bundled model, embedded Chroma) over a small library of every format, served by uvicorn and
called with httpx: a cited source opens with the right type and headers, anything outside the index is 404,
and the route takes the same keys and rate limits as the rest of ``/api``.
"""

from __future__ import annotations

import io
import shutil

import httpx
import pytest

from assistant.api.server import create_app
from assistant.config import Settings
from assistant.facade import Assistant
from assistant.store import PassageStore, make_client
from tests.conftest import ARTICLE
from tests.integration.servers import free_port, run_app
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
    assert cited[0]["location"].startswith("page") and cited[0]["open_url"] == "/api/sources/policy.pdf"
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
    assert parking["open_url"] == "/api/sources/notes/parking.md" and parking["location"] == "Parking"
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
