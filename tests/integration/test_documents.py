"""Issue 12 part 1: documents managed from the app, against a real ``assistant serve`` process.

One server with API keys, a widget key, an allowed origin and an admin key; a small generic body limit
(16 KB) and a small document limit (``chunking.max_file_mb`` = 0.1) so the two caps can be told apart.
Clients are httpx from their own loopback addresses (so failed-auth throttling in one test does not
spill into another), raw sockets for chunked bodies, and headless Chromium for the Documents tab.
"""

from __future__ import annotations

import io
import time
import uuid
import zipfile

import httpx
import pytest

from assistant.feedback import LIMITS, FeedbackLog
from tests.conftest import ARTICLE
from tests.integration.servers import client_from, gradio_join
from tests.integration.test_security import ask_and_rate, assistant_serve, event_inputs, send_chunked, ui_events

pytestmark = pytest.mark.integration

KEY = "k-staff-7f3c"
WIDGET_KEY = "pub-widget-docs"
ADMIN_KEY = "adm-91ab-secret"
ORIGIN = "http://127.0.0.1:1"
ARTICLE_QUESTION = "Which Xiaomi executive announced the goal of 10,000 stores?"
PARKING_QUESTION = "How much does a staff parking permit cost per month?"


def parking(price: int) -> bytes:
    return (
        "---\ntitle: Staff parking policy\n---\n# Staff parking policy\n\n"
        f"Staff parking permits cost {price} euros per month. Permits are issued by the facilities desk in "
        "building C, which is open from 8:00 to 16:00 on weekdays.\n\n"
        "Visitors park free of charge for two hours in the public garage on Mill Street.\n"
    ).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with assistant_serve(
        tmp_path_factory.mktemp("documents"),
        ASSISTANT_API_KEYS=KEY,
        ASSISTANT_SECURITY__WIDGET_KEY=WIDGET_KEY,
        ASSISTANT_ALLOWED_ORIGINS=ORIGIN,
        ASSISTANT_SECURITY__ADMIN_KEYS=ADMIN_KEY,
        ASSISTANT_SECURITY__RATE_LIMIT_PER_MINUTE="600",
        ASSISTANT_SERVER__MAX_BODY_BYTES="16384",
        ASSISTANT_CHUNKING__MAX_FILE_MB="0.1",
    ) as running:
        yield running


def admin(server, address: str) -> httpx.Client:
    return client_from(address, server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"})


def ask(http: httpx.Client, question: str) -> dict:
    response = http.post("/api/ask", json={"question": question}, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200, response.text
    return response.json()


def cited(answer: dict) -> set[str]:
    return {c["source"] for c in answer["citations"]}


def listing(http: httpx.Client) -> dict[str, dict]:
    response = http.get("/api/documents")
    assert response.status_code == 200, response.text
    return {row["name"]: row for row in response.json()["documents"]}


def upload(http: httpx.Client, name: str, data: bytes) -> httpx.Response:
    return http.post("/api/documents", files={"file": (name, data, "application/octet-stream")})


def source_files(server) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((server.root / "sources").iterdir())}


# --- who may manage documents -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "address"),
    [
        ("GET", "/api/documents", "127.0.12.31"),
        ("POST", "/api/documents", "127.0.12.32"),
        ("DELETE", "/api/documents/x.md", "127.0.12.33"),
        ("GET", "/api/feedback", "127.0.12.34"),
    ],
)
def test_only_an_admin_key_manages_documents_and_reads_feedback(server, method, path, address):
    extra = {"file": ("probe.md", b"# Probe\n\nA probe document about nothing in particular.\n")}
    extra = extra if method == "POST" else None
    with client_from(address, server.url) as http:

        def call(**headers: str) -> int:
            return http.request(method, path, headers=headers, files=extra).status_code

        assert call() == 401
        assert call(Authorization="Bearer not-a-key") == 401
        assert call(Authorization=f"Bearer {KEY}") == 403
        # The widget key is public: 403 on the admin routes, and 401 like on every other non-chat route.
        assert call(Authorization=f"Bearer {WIDGET_KEY}", Origin=ORIGIN) == (401 if path == "/api/feedback" else 403)
        refused = http.request(method, path, headers={"Authorization": f"Bearer {KEY}"}, files=extra).json()
        assert "ASSISTANT_SECURITY__ADMIN_KEYS" in refused["error"]["message"]
        assert call(Authorization=f"Bearer {ADMIN_KEY}") in (200, 201, 404)  # 404: x.md is not a document
    assert "probe.md" not in source_files(server) or method == "POST"
    if method == "POST":
        with admin(server, "127.0.12.35") as http:
            assert http.delete("/api/documents/probe.md").status_code == 200


def test_an_unauthenticated_upload_is_refused_before_its_body_is_read(server):
    total = 64 * 2**20
    status, sent = send_chunked(server.url, "/api/documents", total=total, source="127.0.12.36")
    assert status in (401, None) and sent < total / 4, (status, sent)


# --- the upload, ask, replace, delete cycle ----------------------------------------------------------------


def test_upload_is_answered_replace_changes_the_answer_delete_removes_it(server, record_property):
    with admin(server, "127.0.12.41") as http, client_from("127.0.12.42", server.url) as staff:
        assert cited(ask(staff, PARKING_QUESTION)) <= {ARTICLE.name}

        started = time.perf_counter()
        created = upload(http, "staff parking.md", parking(35))
        answer = ask(staff, PARKING_QUESTION)
        upload_to_answer = time.perf_counter() - started
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["replaced"] is False and body["document"]["status"] == "indexed"
        assert "35 euros" in answer["answer"] and "staff parking.md" in cited(answer), answer
        record_property("upload_to_cited_answer_s", round(upload_to_answer, 2))
        print(f"\nupload to first cited answer: {upload_to_answer:.2f} s")

        row = listing(http)["staff parking.md"]
        assert row["title"] == "Staff parking policy" and row["type"] == "md" and row["size"] == len(parking(35))
        assert row["passages"] >= 1 and row["indexed_at"] and row["status"] == "indexed" and row["reason"] is None

        replaced = upload(http, "staff parking.md", parking(45))
        assert replaced.status_code == 200 and replaced.json()["replaced"] is True
        answer = ask(staff, PARKING_QUESTION)
        assert "45 euros" in answer["answer"] and "35 euros" not in answer["answer"], answer
        assert (server.root / "sources" / "staff parking.md").read_bytes() == parking(45)

        deleted = http.delete("/api/documents/staff parking.md")
        assert deleted.status_code == 200 and deleted.json()["ingest"]["removed"] == 1
        answer = ask(staff, PARKING_QUESTION)
        assert "staff parking.md" not in cited(answer) and "45 euros" not in answer["answer"], answer
        assert "staff parking.md" not in source_files(server) and "staff parking.md" not in listing(http)
        assert "Lu Weibing" in ask(staff, ARTICLE_QUESTION)["answer"]  # the other document never moved


# --- bad input ---------------------------------------------------------------------------------------------


def docx_without_text() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", "<broken")
    return out.getvalue()


BAD_FILES = [
    ("empty.md", b"", 422, "empty"),
    ("blank.txt", b"   \n\t\n", 422, "empty"),
    ("binary.txt", b"\x00\x01\x02" * 300, 422, "binary"),
    ("latin1.txt", "Caf\xe9 prices are listed at the counter.".encode("latin-1"), 422, "UTF-8"),
    ("frontmatter-only.md", b"---\ntitle: Nothing here\n---\n", 422, "no text"),
    ("broken.pdf", b"%PDF-1.4 this is not really a PDF", 422, "PDF"),
    ("broken.docx", docx_without_text(), 422, "Word"),
    ("program.exe", b"MZ fake program", 400, "unsupported file type"),
    ("noextension", b"plain words", 400, "unsupported file type"),
    ("large.txt", b"word " * 22_000, 413, "0.1 MB"),  # 110 KB: over the document limit, under the upload cap
    ("copy.md", ARTICLE.read_bytes(), 422, "duplicate"),
]


@pytest.mark.parametrize(("name", "data", "status", "reason"), BAD_FILES, ids=[f[0] for f in BAD_FILES])
def test_a_bad_file_gets_a_clear_4xx_and_nothing_else_is_lost(server, name, data, status, reason):
    before = source_files(server)
    with admin(server, "127.0.12.51") as http:
        documents = listing(http)
        response = upload(http, name, data)
        assert response.status_code == status, response.text
        assert reason in response.json()["error"]["message"]
        assert listing(http) == documents
    assert source_files(server) == before
    assert [p.name for p in (server.root / "sources").glob(".*")] == []  # no temporary file left behind


def test_a_bad_replacement_keeps_the_good_version(server):
    with admin(server, "127.0.12.52") as http, client_from("127.0.12.53", server.url) as staff:
        assert upload(http, "parking.md", parking(35)).status_code == 201
        refused = upload(http, "parking.md", b"\x00\xff" * 100)
        assert refused.status_code == 422
        assert (server.root / "sources" / "parking.md").read_bytes() == parking(35)
        assert "35 euros" in ask(staff, PARKING_QUESTION)["answer"]
        assert http.delete("/api/documents/parking.md").status_code == 200


def test_a_skipped_file_is_listed_with_its_reason(server):
    (server.root / "sources" / "notes.txt").write_bytes(b"\x00binary")
    try:
        with admin(server, "127.0.12.54") as http:
            deadline = time.time() + 10
            while (row := listing(http).get("notes.txt")) is None or row["status"] != "skipped":
                assert time.time() < deadline, row
                time.sleep(0.3)
        assert "binary" in row["reason"] and row["passages"] == 0
    finally:
        (server.root / "sources" / "notes.txt").unlink()


# --- names ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../escape.md", "..\\escape.md", "/tmp/escape.md", "sub/escape.md", "sub\\escape.md", ".hidden.md", ".."]
)
def test_upload_names_that_leave_the_folder_are_refused(server, name):
    with admin(server, "127.0.12.61") as http:
        response = upload(http, name, b"# Escape\n\nThis text must not land outside the sources folder.\n")
    assert response.status_code in (400, 422), response.text
    assert "error" in response.json()
    assert list(server.root.rglob("escape.md")) == [] and list(server.root.rglob(".hidden.md")) == []


def test_unusual_characters_in_a_name_are_replaced(server):
    with admin(server, "127.0.12.62") as http:
        response = upload(http, "q3 <plan>: draft?.md", b"# Plan\n\nThe third-quarter plan is due in May.\n")
        assert response.status_code == 201, response.text
        name = response.json()["document"]["name"]
        assert name == "q3 -plan-- draft-.md" and (server.root / "sources" / name).is_file()
        assert http.delete(f"/api/documents/{name}").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/documents/..%2Fsecret.md",
        "/api/documents/%2E%2E%2Fsecret.md",
        "/api/documents/%2Fetc%2Fhostname",
        "/api/documents/sub%2F..%2F..%2Fsecret.md",
        "/api/documents/.%2Fxiaomi-overseas-ev-expansion.md",
    ],
)
def test_delete_names_that_leave_the_folder_are_refused(server, path):
    secret = server.root / "secret.md"
    secret.write_text("# Secret\n\nOutside the sources folder.\n")
    with admin(server, "127.0.12.63") as http:
        response = http.delete(httpx.URL(server.url + path))
    assert response.status_code in (400, 404), response.text
    assert secret.exists() and (server.root / "sources" / ARTICLE.name).exists()


def test_delete_of_an_unknown_document_is_404(server):
    with admin(server, "127.0.12.64") as http:
        response = http.delete("/api/documents/never-uploaded.md")
    assert response.status_code == 404 and "GET /api/documents" in response.json()["error"]["message"]


# --- body limits -------------------------------------------------------------------------------------------


def test_uploads_have_their_own_cap_and_other_routes_keep_theirs(server):
    medium = ("# Medium\n\n" + "The archive keeps every signed contract for ten years. " * 900).encode()
    assert 16_384 < len(medium) < 0.1 * 2**20
    with admin(server, "127.0.12.71") as http:
        created = upload(http, "medium.md", medium)
        assert created.status_code == 201, created.text
        assert http.delete("/api/documents/medium.md").status_code == 200
        too_big = upload(http, "huge.md", b"# Huge\n\n" + b"word " * 60_000)  # 300 KB: over the upload cap
        assert too_big.status_code == 413
        asked = http.post("/api/ask", json={"question": "x" * 20_000})
        assert asked.status_code == 413  # the generic 16 KB limit still holds elsewhere
    assert "huge.md" not in source_files(server)


def test_a_chunked_upload_is_cut_off_at_the_upload_cap(server):
    import re
    import select
    import socket

    target = httpx.URL(server.url)
    sock = socket.create_connection((target.host, target.port), source_address=("127.0.12.72", 0))
    sock.sendall(
        f"POST /api/documents HTTP/1.1\r\nHost: {target.host}:{target.port}\r\nAuthorization: Bearer {ADMIN_KEY}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    )
    head = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="flood.txt"\r\n\r\n'
    sock.sendall(b"%x\r\n%s\r\n" % (len(head), head))
    piece = b"word " * 13_000
    frame = b"%x\r\n%s\r\n" % (len(piece), piece)
    sent, total = 0, 64 * 2**20
    try:
        while sent < total and not select.select([sock], [], [], 0)[0]:
            sock.sendall(frame)
            sent += len(piece)
            time.sleep(0.001)
        sock.settimeout(30)
        reply = sock.recv(4096)
    except (BrokenPipeError, ConnectionResetError):
        reply = b""
    finally:
        sock.close()
    status = re.match(rb"HTTP/1\.1 (\d{3})", reply)
    assert sent < 2 * 2**20, f"the server read {sent} bytes of an upload over its cap"
    assert status is None or status.group(1) == b"413", reply[:200]
    assert "flood.txt" not in source_files(server)


# --- the UI ---------------------------------------------------------------------------------------------------


def test_the_documents_tab_is_there_with_admin_keys(server):
    with client_from("127.0.12.81", server.url) as http:
        assert http.post("/login", data={"username": "staff", "password": KEY}).status_code == 200
        config = http.get("/config").json()
    labels = {c["props"].get("label") for c in config["components"] if c["type"] == "tabitem"}
    assert {"Chat", "Documents"} <= labels
    panel = next(c for c in config["components"] if c["props"].get("elem_id") == "documents-panel")
    assert "/api/documents" in panel["props"]["js_on_load"]


def test_upload_from_the_documents_tab_in_a_browser(server, tmp_path):
    from tests.integration.test_browser import CHROMIUM, FLAGS

    if not CHROMIUM:
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    pdf = tmp_path / "bike-policy.pdf"
    make_pdf(pdf, ["Bike policy", "Staff may borrow a company bike for up to three days at a time."])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server.url + "/")
        page.get_by_label("username").fill("staff")  # gradio's login form; an API key is the password
        page.get_by_label("password").fill(KEY)
        page.get_by_role("button", name="Login").click()
        page.get_by_role("tab", name="Documents").click()
        page.fill(".docs-key", ADMIN_KEY)
        page.click(".docs-load")
        page.wait_for_selector(f"tr[data-name='{ARTICLE.name}']", timeout=15_000)
        page.set_input_files(".docs-file", str(pdf))
        page.click(".docs-upload")
        page.wait_for_selector("tr[data-name='bike-policy.pdf'] .docs-state.indexed", timeout=30_000)
        status = page.inner_text(".docs-status")

        page.get_by_role("tab", name="Chat").click()
        box = page.get_by_placeholder("Ask a question about the sources")
        box.fill("For how many days may staff borrow a company bike?")
        box.press("Enter")
        page.wait_for_selector(".source-card", timeout=30_000)
        cards = page.locator(".source-card").all_inner_texts()
        link = page.locator(".source-card a.open-doc").first.get_attribute("href")
        opened = page.request.get(server.url + link.split("#")[0] if link.startswith("/") else link.split("#")[0])
        opened_body = opened.body()

        page.get_by_role("tab", name="Documents").click()
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("tr[data-name='bike-policy.pdf'] .docs-delete")
        page.wait_for_selector("tr[data-name='bike-policy.pdf']", state="detached", timeout=30_000)

        page.get_by_role("tab", name="Chat").click()
        before = page.locator(".message-row, [data-testid='bot']").count()
        box.fill("For how many days may staff borrow a company bike?")
        box.press("Enter")
        page.wait_for_function(
            "n => document.querySelectorAll(\".message-row, [data-testid='bot']\").length > n",
            arg=before,
            timeout=30_000,
        )
        page.wait_for_timeout(1500)
        last_answer = page.locator("[data-testid='bot']").last.inner_text()
        browser.close()
    assert status.startswith("Added bike-policy.pdf: indexed"), status
    assert any("bike-policy.pdf" in card and "three days" in card for card in cards), cards
    assert opened.status == 200 and opened.headers["content-type"] == "application/pdf", (link, opened.status)
    assert opened_body.startswith(b"%PDF")
    assert "bike-policy.pdf" not in source_files(server)
    assert "three days" not in last_answer and "The sources don" in last_answer, last_answer  # deleted: refused now


def test_copy_gives_the_text_shown_and_an_empty_question_is_ignored(server):
    from tests.integration.test_browser import CHROMIUM, FLAGS

    if not CHROMIUM:
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
        page = context.new_page()
        page.goto(server.url + "/")
        page.get_by_label("username").fill("staff")
        page.get_by_label("password").fill(KEY)
        page.get_by_role("button", name="Login").click()
        box = page.get_by_placeholder("Ask a question about the sources")
        box.fill("   ")
        box.press("Enter")
        page.wait_for_timeout(1500)
        bubbles_after_empty = page.locator("[data-testid=user], [data-testid=bot]").count()

        box.fill("What is the top speed of the SU7 on the moon?")
        box.press("Enter")
        page.wait_for_selector(".refused", timeout=30_000)
        page.wait_for_timeout(800)
        italic = page.locator("[data-testid=bot]").last.locator("em").count()
        box.fill("Which Xiaomi executive announced the goal of 10,000 stores?")
        box.press("Enter")
        page.wait_for_selector(".source-card", timeout=30_000)
        page.wait_for_timeout(800)
        copied = []
        for selector in (".bot-row + .message-buttons button[aria-label='Copy message']",):
            buttons = page.locator(selector)
            for i in range(buttons.count()):
                buttons.nth(i).hover()
                buttons.nth(i).click()
                page.wait_for_timeout(300)
                copied.append(page.evaluate("navigator.clipboard.readText()"))
        browser.close()
    assert bubbles_after_empty == 0
    assert italic == 1, "the refusal is shown in italics"
    refusal, answer = copied
    assert refusal and "*" not in refusal and "\\" not in refusal, refusal
    assert "Lu Weibing" in answer and answer.endswith("[1]") and "\\" not in answer, answer


def make_pdf(path, lines: list[str]) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=A4)
    pdf.setTitle(lines[0])
    y = 800
    for line in lines:
        pdf.drawString(72, y, line)
        y -= 20
    pdf.save()


def test_feedback_with_a_comment_is_read_back_by_admins_only(server):
    entry = {"rating": "down", "question": PARKING_QUESTION, "answer": "=HYPERLINK(1)", "comment": "out of date"}
    with client_from("127.0.12.91", server.url, headers={"Authorization": f"Bearer {KEY}"}) as staff:
        assert staff.post("/api/feedback", json=entry).status_code == 200
        assert staff.get("/api/feedback").status_code == 403
    with admin(server, "127.0.12.92") as http:
        stored = http.get("/api/feedback").json()["feedback"]
        csv_text = http.get("/api/feedback", params={"format": "csv"})
    assert any(e["comment"] == "out of date" and e["rating"] == "down" for e in stored)
    assert csv_text.headers["content-type"].startswith("text/csv")
    assert csv_text.text.splitlines()[0] == "time,id,rating,question,answer,comment,sources,citations"
    assert "'=HYPERLINK(1)" in csv_text.text  # a spreadsheet shows it as text instead of running it


def test_a_comment_from_the_ui_joins_the_rating_it_follows(server):
    with client_from("127.0.12.93", server.url) as http:
        assert http.post("/login", data={"username": "staff", "password": KEY}).status_code == 200
        ui = ui_events(http)
        dependencies = http.get("/config").json()["dependencies"]
        comment = next(d for d in dependencies if any(t[1] == "submit" and t[0] != ui.box for t in d["targets"]))
        comment_box = comment["targets"][0][0]

        def add_comment(text: str, session: str) -> dict:
            data = event_inputs(comment, **{f"c{comment_box}": text})
            return gradio_join(http, comment["id"], data, trigger_id=comment_box, session=session)

        assert add_comment("a comment on nothing", uuid.uuid4().hex).get("success") is True
        session = uuid.uuid4().hex
        _, rated = ask_and_rate(http, ui, ARTICLE_QUESTION, liked=True, session=session)
        assert rated.get("success") is True
        assert add_comment("Right person, but say when. " + "x" * 5000, session).get("success") is True
    lines = (server.root / "data" / "feedback.jsonl").read_text().splitlines()
    assert not any("a comment on nothing" in line for line in lines)
    [entry] = [
        e for e in FeedbackLog(server.root / "data" / "feedback.jsonl").entries() if e["question"] == ARTICLE_QUESTION
    ]
    assert entry["rating"] == "up" and "Lu Weibing" in entry["answer"]
    assert entry["comment"].startswith("Right person, but say when.") and len(entry["comment"]) == LIMITS["comment"]


def test_nothing_was_left_in_the_sources_folder(server):
    assert set(source_files(server)) == {ARTICLE.name}


def test_the_landing_hint_names_the_indexed_titles_when_no_examples_are_given():
    from types import SimpleNamespace

    from assistant.ui.chat import landing_hint

    def stub(titles: list[str], examples: list[str] | None = None) -> SimpleNamespace:
        passage = SimpleNamespace(metadata={"examples": examples} if examples else {})
        corpus = SimpleNamespace(ids=["a:0"], passage=lambda _pid: passage)
        return SimpleNamespace(corpus=corpus, sources=lambda: [{"title": t} for t in titles])

    hint = landing_hint(stub(["Leave policy", "VPN <setup>", *[f"Guide {i}" for i in range(8)]]))
    assert hint.startswith("<p class='hint'>Ask about <strong>Leave policy</strong>, <strong>VPN &lt;setup&gt;")
    assert hint.endswith(" and 4 more.</p>")
    assert landing_hint(stub(["Leave policy"], examples=["How many days of leave do I get?"])) == ""
    assert "No documents" in landing_hint(stub([]))
