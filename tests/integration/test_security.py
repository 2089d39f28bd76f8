"""Issue 10: each attack an outsider made on the served app, replayed against a real server.

Two real ``assistant serve`` processes: a locked one (API keys, a widget key, an origin allowlist) and an
open one (no keys, as the UI is served by default). Clients are httpx, gradio_client and raw sockets; each
test connects from its own loopback address (Linux routes all of 127.0.0.0/8 to lo) so that the per-client
limits of one test do not spill into another. Row numbers refer to the table in the issue.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import select
import shutil
import socket
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from tests.conftest import ARTICLE, ROOT
from tests.integration.servers import client_from, free_port, gradio_call, gradio_join, run_app, run_process

pytestmark = pytest.mark.integration

QUESTION = "Which Xiaomi executive announced the goal of 10,000 stores?"
KEYS = ("k-shared-prefix-one", "k-shared-prefix-two")  # the same first six characters
WIDGET_KEY = "pub-widget-key"
ORIGIN = "http://127.0.0.1:1"
RATE = 20
SECRET = "SECRET-MARKER-4711"
ERROR_HEADERS = ("x-content-type-options", "content-security-policy", "referrer-policy")


@contextlib.contextmanager
def assistant_serve(root: Path, **environment: str):
    """``assistant serve`` in a child process over a copy of the article, with ``ASSISTANT_*`` settings."""
    (root / "sources").mkdir(parents=True)
    shutil.copy(ARTICLE, root / "sources" / ARTICLE.name)
    (root / "tmp").mkdir()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANT_", "GRADIO_"))},
        "HF_HUB_OFFLINE": "1",
        "TMPDIR": str(root / "tmp"),  # where the server's temporary files (gradio's cache) go
        "ASSISTANT_SOURCES_DIR": str(root / "sources"),
        "ASSISTANT_INDEX_DIR": str(root / "index"),
        "ASSISTANT_PATHS__DATA_DIR": str(root / "data"),
        "ASSISTANT_SECURITY__RATE_LIMIT_PER_MINUTE": str(RATE),
        **environment,
    }
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)]
    with run_process(command, url + "/healthz", timeout_s=240, env=env, cwd=ROOT) as process:
        yield SimpleNamespace(url=url, root=root, process=process)


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    with assistant_serve(
        tmp_path_factory.mktemp("locked"),
        ASSISTANT_API_KEYS=",".join(KEYS),
        ASSISTANT_SECURITY__WIDGET_KEY=WIDGET_KEY,
        ASSISTANT_ALLOWED_ORIGINS=ORIGIN,
    ) as server:
        yield server


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    with assistant_serve(tmp_path_factory.mktemp("open")) as server:
        yield server


def ui_events(http: httpx.Client) -> SimpleNamespace:
    """Ids of the chat UI's events and components, read from the page's config as a browser does."""
    config = http.get("/config").json()
    types = {c["id"]: c["type"] for c in config["components"]}
    chat = next(d for d in config["dependencies"] if d.get("api_name") == "chat")
    rate = next(d for d in config["dependencies"] if any(t[1] == "like" for t in d["targets"]))
    chatbot = next(i for i, kind in types.items() if kind == "chatbot")
    return SimpleNamespace(chat=chat, rate=rate, chatbot=chatbot, box=chat["targets"][0][0])


def event_inputs(dependency: dict, **values: object) -> list:
    """The ``data`` list of a gradio event: ``values`` by component id (``c<id>``), None for the rest."""
    return [values.get(f"c{i}") for i in dependency["inputs"]]


def ask_and_rate(http, ui, question: str, *, liked: bool, session: str) -> tuple[dict, dict]:
    """Ask ``question`` in the UI, then rate the answer it got: the rating's event data and gradio's reply."""
    asked = gradio_join(
        http, ui.chat["id"], event_inputs(ui.chat, **{f"c{ui.box}": question, f"c{ui.chatbot}": []}),
        trigger_id=ui.box, session=session,
    )  # fmt: skip
    chat = asked["output"]["data"][0]
    like = {"index": 1, "value": chat[1]["content"], "liked": liked}
    rated = gradio_join(
        http, ui.rate["id"], event_inputs(ui.rate, **{f"c{ui.chatbot}": chat}), trigger_id=ui.chatbot,
        event_data=like, session=session,
    )  # fmt: skip
    return like, rated


def feedback_lines(server) -> list[str]:
    path = server.root / "data" / "feedback.jsonl"
    return path.read_text().splitlines() if path.exists() else []


def assert_error_shape(response: httpx.Response | http.client.HTTPResponse, body: bytes, status: int) -> None:
    assert (response.status_code if isinstance(response, httpx.Response) else response.status) == status
    error = json.loads(body)["error"]
    assert error["status"] == status and error["message"]
    for header in ERROR_HEADERS:
        assert response.headers.get(header), f"{header} missing on a {status}"


# --- 1: the chat history names files on the server ------------------------------------------------


def file_part(path: Path | str) -> dict:
    return {"type": "file", "file": {"path": str(path), "meta": {"_type": "gradio.FileData"}}}


def test_chat_history_cannot_make_the_server_serve_its_files(open_server):
    secret = open_server.root / "tmp" / "secret.env"  # in the system temp folder, which gradio trusts by default
    secret.write_text(f"API_KEY={SECRET}\n")
    component = {"type": "component", "component": "file", "constructor_args": {}, "props": {}}
    text = {"type": "text", "text": "ok"}
    parts = [
        [file_part(secret)],
        [text, file_part("/etc/passwd")],
        [file_part(ROOT / "pyproject.toml")],
        [{**component, "value": file_part(secret)["file"]}],
        [{**component, "value": {"path": str(secret)}}],
    ]
    histories = [[{"role": "user", "content": p}, {"role": "assistant", "content": [text]}] for p in parts]
    histories.append([{"role": "assistant", "content": [file_part(secret)]}])
    with client_from("127.0.0.11", open_server.url) as http:
        for history in histories:
            event, data = gradio_call(http, "chat", [QUESTION, history])
            reply = json.dumps(data)
            for url in re.findall(r'"url": "([^"]+)"', reply):
                served = http.get(url)
                assert SECRET not in served.text and "root:x:0:0" not in served.text and "[project]" not in served.text
            assert "gradio.FileData" not in reply and '"type": "file"' not in reply, (event, reply[:300])
        for path in (secret, "/etc/passwd", ROOT / "pyproject.toml"):
            served = http.get(f"/gradio_api/file={path}")
            assert served.status_code == 404 and SECRET not in served.text
    copies = [
        p for p in (open_server.root / "tmp").rglob("*")
        if p.is_file() and p != secret and p.stat().st_size < 2**20 and SECRET.encode() in p.read_bytes()
    ]  # fmt: skip
    assert copies == [], f"the secret was copied to {copies}"


def test_text_history_still_works_through_the_ui_api(open_server):
    history = [
        {"role": "user", "content": [{"type": "text", "text": "Where did Xiaomi hold its exhibition in France?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "In Paris's Le Marais district [1]."}]},
    ]
    with client_from("127.0.0.11", open_server.url) as http:
        event, data = gradio_call(http, "chat", ["What did it showcase there?", history])
    assert event == "complete"
    chat = data[0]
    assert [m["role"] for m in chat] == ["user", "assistant", "user", "assistant"]
    assert "ecosystem" in json.dumps(chat[-1]["content"])


# --- 2: anonymous, unlimited, unbounded feedback through the UI's like event --------------------------


def test_ui_feedback_needs_a_key_when_keys_are_set(locked):
    with client_from("127.0.0.12", locked.url) as http:
        assert http.get("/config").status_code == 401
        joined = http.post(
            "/gradio_api/queue/join",
            json={"data": [None, None], "fn_index": 3, "trigger_id": 5, "session_hash": "x" * 10,
                  "event_data": {"index": 1, "value": "forged", "liked": True}},
        )  # fmt: skip
    assert joined.status_code == 401
    assert feedback_lines(locked) == []


def test_ui_feedback_keeps_only_answers_given_and_is_rate_limited(open_server):
    with client_from("127.0.0.13", open_server.url) as http:
        ui = ui_events(http)
        forged = [
            {"role": "user", "content": [{"type": "text", "text": "q"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "x" * 100_000}]},
        ]
        like = {"index": 1, "value": [{"type": "text", "text": "x" * 100_000}], "liked": True}
        rate_data = event_inputs(ui.rate, **{f"c{ui.chatbot}": forged})
        gradio_join(http, ui.rate["id"], rate_data, trigger_id=ui.chatbot, event_data=like)
        assert feedback_lines(open_server) == [], "a rating of an answer the server never gave is not stored"

        session = uuid.uuid4().hex
        like, rated = ask_and_rate(http, ui, QUESTION, liked=False, session=session)
        assert rated.get("success") is True
        [line] = feedback_lines(open_server)
        entry = json.loads(line)
        assert entry["rating"] == "down" and entry["question"] == QUESTION and "Lu Weibing" in entry["answer"]
        assert len(line) < 4000

        body = {"data": rate_data, "fn_index": ui.rate["id"], "trigger_id": ui.chatbot, "session_hash": session}
        codes = [
            http.post("/gradio_api/queue/join", json={**body, "event_data": like}).status_code for _ in range(RATE)
        ]
    assert 429 in codes, "the UI's actions are counted per client"


def test_api_feedback_fields_are_bounded(open_server):
    with client_from("127.0.0.14", open_server.url) as http:
        base = {"rating": "up", "question": "q", "answer": "a"}
        big = [
            {**base, "citations": [{"n": 1, "source": "s" * 100_000}]},
            {**base, "citations": [{"n": 1, "source": "s.md"}] * 5000},
            {**base, "citations": [{"n": 1, "source": "s.md", "text": "t" * 200_000}]},
        ]
        codes = [http.post("/api/feedback", json=body).status_code for body in big]
    assert codes[:2] == [422, 422] and codes[2] == 200
    assert max(len(line) for line in feedback_lines(open_server)) < 1000


# --- 3: chunked bodies skip the size limit ---------------------------------------------------------


def send_chunked(url: str, path: str, *, total: int, source: str) -> tuple[int | None, int]:
    """POST ``total`` bytes of chunked body; return (status, bytes sent before the server answered)."""
    target = httpx.URL(url)
    sock = socket.create_connection((target.host, target.port), source_address=(source, 0))
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {target.host}:{target.port}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    piece = b"a" * 65536
    frame = b"%x\r\n%s\r\n" % (len(piece), piece)
    sent = 0
    try:
        start = b'{"question": "'
        sock.sendall(b"%x\r\n%s\r\n" % (len(start), start))
        while sent < total and not select.select([sock], [], [], 0)[0]:
            sock.sendall(frame)
            sent += len(piece)
            time.sleep(0.001)
        if sent >= total:
            sock.sendall(b"0\r\n\r\n")
        sock.settimeout(30)
        head = sock.recv(4096)
    except (BrokenPipeError, ConnectionResetError):
        head = b""
    finally:
        sock.close()
    match = re.match(rb"HTTP/1\.1 (\d{3})", head)
    return (int(match.group(1)) if match else None), sent


@pytest.mark.parametrize("path", ["/api/ask", "/api/feedback", "/v1/chat/completions", "/gradio_api/queue/join"])
def test_chunked_bodies_are_cut_off_at_the_limit(open_server, path):
    total = 64 * 2**20
    status, sent = send_chunked(open_server.url, path, total=total, source="127.0.0.15")
    assert sent < total / 4, f"the server read {sent} bytes of a body over the limit"
    assert status in (413, None), status  # None: the server closed the connection right after its 413


def test_uploads_are_turned_off(open_server):
    name = f"upload-{uuid.uuid4().hex}.bin"
    with client_from("127.0.0.16", open_server.url) as http:
        response = http.post("/gradio_api/upload", files={"files": (name, b"x" * 1000)})
    assert response.status_code == 404
    assert list((open_server.root / "tmp").rglob(name)) == []


# --- 4: the UI answers without a key and without a limit ------------------------------------------------


def test_ui_needs_a_key_when_keys_are_set(locked):
    from gradio_client import Client

    with client_from("127.0.0.21", locked.url) as http:
        assert http.post("/gradio_api/call/chat", json={"data": [QUESTION, []]}).status_code == 401
        assert http.post("/login", data={"username": "staff", "password": WIDGET_KEY}).status_code >= 400
    with pytest.raises(Exception):  # noqa: B017 - whichever error gradio_client raises for a 401
        Client(locked.url + "/", verbose=False)
    client = Client(locked.url + "/", auth=("staff", KEYS[0]), verbose=False)
    chat, box, _ = client.predict(QUESTION, [], api_name="/chat")
    assert "Lu Weibing" in str(chat[-1]["content"]) and box == ""


def test_ui_is_rate_limited_like_the_api(locked):
    with client_from("127.0.0.22", locked.url) as http:
        assert http.post("/login", data={"username": "staff", "password": KEYS[1]}).status_code == 200
        codes = [http.post("/gradio_api/call/chat", json={"data": [QUESTION, []]}).status_code for _ in range(RATE)]
        assert codes[: RATE - 1] == [200] * (RATE - 1)  # the login counted too
        assert codes[-1] == 429


# --- 5 and 8: shared rate buckets --------------------------------------------------------------------------


def test_widget_visitors_each_have_their_own_allowance(locked):
    widget = {"Authorization": f"Bearer {WIDGET_KEY}", "Origin": ORIGIN}
    with client_from("127.0.0.51", locked.url) as first, client_from("127.0.0.52", locked.url) as second:
        codes = [first.get("/api/widget/config", headers=widget).status_code for _ in range(RATE + 1)]
        assert codes == [200] * RATE + [429]
        assert second.get("/api/widget/config", headers=widget).status_code == 200


def test_keys_sharing_a_prefix_do_not_share_a_bucket(locked):
    with client_from("127.0.0.81", locked.url) as http:
        one, two = ({"Authorization": f"Bearer {key}"} for key in KEYS)
        codes = [http.get("/api/sources", headers=one).status_code for _ in range(RATE + 1)]
        assert codes == [200] * RATE + [429]
        assert http.get("/api/sources", headers=two).status_code == 200


# --- 9: X-Forwarded-For from loopback ----------------------------------------------------------------------


def test_forwarded_for_does_not_name_the_client_by_default(open_server):
    # From 127.0.0.1, the one address uvicorn believes X-Forwarded-For from unless told otherwise.
    with httpx.Client(base_url=open_server.url, timeout=30) as http:
        codes = [
            http.get("/api/sources", headers={"X-Forwarded-For": f"10.9.{i // 200}.{i % 200 + 1}"}).status_code
            for i in range(RATE + 1)
        ]
    assert codes == [200] * RATE + [429]


def test_a_configured_proxy_names_the_client(real_assistant):
    from assistant.api.server import create_app, uvicorn_options

    settings = real_assistant.settings.model_copy(deep=True)
    settings.server.trusted_proxies = "127.0.0.1"
    settings.security.rate_limit_per_minute = 3
    options = {k: v for k, v in uvicorn_options(settings).items() if k not in ("host", "port")}
    app = create_app(real_assistant, settings, with_ui=False)
    with run_app(app, free_port(), **options) as url, httpx.Client(base_url=url) as http:
        rotating = [http.get("/api/sources", headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code for i in range(6)]
        same = [http.get("/api/sources", headers={"X-Forwarded-For": "10.0.1.1"}).status_code for _ in range(4)]
    assert rotating == [200] * 6 and same == [200, 200, 200, 429]


# --- 10: wrong keys are never throttled -------------------------------------------------------------------


def test_failed_authentication_is_throttled(locked):
    wrong = {"Authorization": "Bearer not-a-key"}
    with client_from("127.0.0.101", locked.url) as attacker, client_from("127.0.0.102", locked.url) as other:
        codes = [attacker.get("/api/sources", headers=wrong).status_code for _ in range(30)]
        assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}
        right = {"Authorization": f"Bearer {KEYS[1]}"}
        assert attacker.get("/v1/models", headers=right).status_code == 429, "guessing stays blocked"
        assert other.get("/v1/models", headers=right).status_code == 200
    with client_from("127.0.0.103", locked.url) as guesser:
        logins = [guesser.post("/login", data={"username": "a", "password": f"k-{i}"}).status_code for i in range(15)]
    assert logins[-1] == 429 and set(logins[:10]) - {400, 401} == set()


# --- 7 and 11: malformed requests ---------------------------------------------------------------------


MALFORMED = [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "text", "text": ["a"]}]}]}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [5]}]}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "\ud800 price?"}]}),
    ("/v1/chat/completions", {"model": "\udfff", "messages": [{"role": "user", "content": "price?"}]}),
    ("/api/ask", {"question": "What is the price\ud800?"}),
    ("/api/ask", {"question": "price?", "history": [{"role": "user", "content": "\ud800"}]}),
    ("/api/feedback", {"rating": "up", "question": "\ud800", "answer": "a"}),
]


def test_malformed_content_gets_4xx_and_keeps_the_connection(open_server):
    target = httpx.URL(open_server.url)
    connection = http.client.HTTPConnection(target.host, target.port, timeout=30, source_address=("127.0.0.71", 0))
    for path, body in MALFORMED:
        connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
        assert 400 <= response.status < 500, (path, body, response.status, payload[:200])
        assert_error_shape(response, payload, response.status)
        assert not response.will_close, "the keep-alive connection survives"
    connection.close()


def test_a_lone_surrogate_in_the_ui_is_not_a_server_error(open_server):
    lone = {"type": "text", "text": "\udc00"}
    with client_from("127.0.0.72", open_server.url) as http:
        started = http.post(
            "/gradio_api/call/chat",
            content=json.dumps({"data": ["What is the price\ud800?", [{"role": "user", "content": [lone]}]]}),
            headers={"Content-Type": "application/json"},
        )
        assert started.status_code == 200
        with http.stream("GET", f"/gradio_api/call/chat/{started.json()['event_id']}") as response:
            events = [line for line in response.iter_lines() if line.startswith("event:")]
    assert events[-1] == "event: complete"


@pytest.mark.parametrize(
    "body",
    [
        b'{"question": "caf\xe9 \xff\xfe prices?"}',  # Latin-1, not UTF-8
        b'{"question": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=["not-utf8", "nested-5000", "nested-100000"],
)
@pytest.mark.parametrize("path", ["/api/ask", "/api/feedback", "/v1/chat/completions"])
def test_undecodable_bodies_get_the_error_shape(open_server, path, body):
    with client_from("127.0.0.73", open_server.url) as http:
        response = http.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 422), response.text[:200]
    assert_error_shape(response, response.content, response.status_code)


def test_unknown_api_routes_get_the_error_shape(open_server):
    with client_from("127.0.0.74", open_server.url) as http:
        for response in (http.get("/api/nope"), http.post("/v1/embeddings", json={})):
            assert_error_shape(response, response.content, 404)


def test_refusals_carry_the_error_shape_and_headers(locked):
    with client_from("127.0.0.111", locked.url) as http:
        unauthorized = http.post("/api/ask", json={"question": QUESTION})
        assert_error_shape(unauthorized, unauthorized.content, 401)
        too_large = http.post(
            "/api/ask", content=b"{" + b" " * 300_000 + b"}", headers={"Content-Type": "application/json"}
        )
        assert_error_shape(too_large, too_large.content, 413)
        key = {"Authorization": f"Bearer {KEYS[1]}"}
        limited = next(
            r for r in (http.get("/v1/models", headers=key) for _ in range(RATE + 1)) if r.status_code == 429
        )
        assert_error_shape(limited, limited.content, 429)


# --- rate buckets expire -----------------------------------------------------------------------------------


def test_idle_rate_buckets_are_dropped():
    from assistant.api.security import RateLimiter

    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    for i in range(1000):
        limiter.hit(f"addr:10.0.{i // 250}.{i % 250}")
    assert len(limiter) == 1000 and limiter.hit("addr:10.0.0.0") is None and limiter.hit("addr:10.0.0.0") == 60
    now[0] = 61.0
    assert limiter.hit("addr:10.0.0.0") is None
    assert len(limiter) == 1, "buckets idle for a whole minute are gone"


# --- gradio's file cache: private, and removed when the server stops (stops the open server: keep last) -----


def test_ui_cache_is_private_and_removed_on_exit(open_server):
    caches = list((open_server.root / "tmp").glob("assistant-ui-*"))
    assert len(caches) == 1 and caches[0].stat().st_mode & 0o077 == 0
    assert not (open_server.root / "tmp" / "gradio").exists(), "nothing in the shared gradio folder"
    open_server.process.terminate()
    assert open_server.process.wait(timeout=30) == 0
    assert list((open_server.root / "tmp").glob("assistant-ui-*")) == []
