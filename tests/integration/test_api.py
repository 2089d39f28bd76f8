"""The HTTP API through real clients: httpx, the openai SDK, gradio_client, on a real uvicorn server."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.testclient import TestClient

from assistant.api.server import create_app
from assistant.api.sources import source_url
from assistant.ui.cards import passage_url
from tests.integration.servers import free_port, run_app

pytestmark = pytest.mark.integration

QUESTION = "Which Xiaomi executive announced the goal of 10,000 stores?"
HOST_ORIGIN = "http://127.0.0.1:1"  # an allowed origin that no test page uses


@pytest.fixture(scope="module")
def server(real_assistant, tmp_path_factory):
    settings = real_assistant.settings.model_copy(deep=True)
    settings.security.allowed_origins = HOST_ORIGIN
    settings.paths.data_dir = tmp_path_factory.mktemp("data")
    with run_app(create_app(real_assistant, settings), free_port()) as url:
        yield url, settings


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server[0], timeout=30) as client:
        yield client


def test_health_and_sources(http):
    health = http.get("/healthz").json()
    assert health["status"] == "ok" and health["sources"] == 1 and health["chunks"] > 0
    assert health["backend"] == "extractive"
    assert http.get("/api/sources").json()["sources"][0]["source"] == "xiaomi-overseas-ev-expansion.md"


def test_ask_returns_exactly_the_facade_answer(http, real_assistant):
    response = http.post("/api/ask", json={"question": QUESTION})
    assert response.status_code == 200
    body = response.json()
    expected = real_assistant.ask(QUESTION).to_dict()
    body.pop("timings_ms"), expected.pop("timings_ms")
    for citation in expected["citations"]:  # the one addition: where GET /api/sources/... opens the passage
        citation["open_url"] = passage_url(citation, source_url)
    assert body == expected
    assert "Lu Weibing" in body["answer"] and body["citations"][0]["n"] == 1


def test_ask_with_history(http):
    history = [
        {"role": "user", "content": "Where did Xiaomi hold its exhibition in France?"},
        {"role": "assistant", "content": "In Paris's Le Marais district [1]."},
    ]
    body = http.post("/api/ask", json={"question": "What did it showcase there?", "history": history}).json()
    assert "ecosystem" in body["answer"]


def test_stream_sends_text_then_a_final_event_with_citations(http):
    events = []
    with http.stream("POST", "/api/ask/stream", json={"question": QUESTION}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line[5:].strip())))
    tokens = [data["text"] for name, data in events if name == "token"]
    final = [data for name, data in events if name == "done"]
    assert tokens and len(final) == 1 and events[-1][0] == "done"
    assert "".join(tokens) == final[0]["answer"]
    assert final[0]["citations"] and final[0]["refused"] is False


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "not valid JSON"),
        ({"json": {}}, 422, "question"),
        ({"json": {"question": 5}}, 422, "question"),
        ({"json": {"question": "   "}}, 400, "empty"),
        ({"json": {"question": "why " * 25_000}}, 400, "too long"),
        ({"json": {"question": "x", "history": "nope"}}, 422, "history"),
        ({"json": {"question": "x", "history": [{"role": "robot", "content": "x"}]}}, 400, "role"),
        ({"json": {"question": "x", "extra": 1}}, 422, "extra"),
        ({"content": b"\xff\xfe\x00bad", "headers": {"content-type": "application/json"}}, 400, "JSON"),
        ({"content": b"{" + b" " * 400_000 + b"}", "headers": {"content-type": "application/json"}}, 413, "larger"),
    ],
)
def test_bad_requests_get_json_4xx(http, kwargs, status, message):
    response = http.post("/api/ask", **kwargs)
    assert response.status_code == status, response.text
    assert message.lower() in response.json()["error"]["message"].lower()


def test_unanswerable_question_is_refused_not_an_error(http):
    body = http.post("/api/ask", json={"question": "What is the top speed of the Xiaomi SU7?"}).json()
    assert body["refused"] is True and body["citations"] == []


def test_openai_sdk_non_stream_and_stream(server):
    from openai import OpenAI

    client = OpenAI(base_url=server[0] + "/v1", api_key="unused")
    assert [m.id for m in client.models.list().data] == ["assistant"]
    completion = client.chat.completions.create(model="assistant", messages=[{"role": "user", "content": QUESTION}])
    assert "Lu Weibing" in completion.choices[0].message.content
    assert completion.model_extra["citations"][0]["n"] == 1 and completion.model_extra["refused"] is False
    chunks = list(
        client.chat.completions.create(model="assistant", messages=[{"role": "user", "content": QUESTION}], stream=True)
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == completion.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].model_extra["citations"]


def test_openai_route_rejects_a_conversation_without_a_user_turn(http):
    response = http.post(
        "/v1/chat/completions", json={"model": "assistant", "messages": [{"role": "system", "content": "x"}]}
    )
    assert response.status_code == 400


def test_feedback_is_stored_durably(http, server):
    body = {"rating": "down", "question": "q?", "answer": "a [1]", "citations": [{"n": 1, "source": "s.md"}]}
    assert http.post("/api/feedback", json=body).json() == {"stored": True}
    lines = (server[1].paths.data_dir / "feedback.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["rating"] == "down"
    assert http.post("/api/feedback", json={**body, "rating": "meh"}).status_code == 422


def test_cors_and_security_headers(http):
    allowed = http.options("/api/ask", headers={"Origin": HOST_ORIGIN, "Access-Control-Request-Method": "POST"})
    assert allowed.headers.get("access-control-allow-origin") == HOST_ORIGIN
    denied = http.options(
        "/api/ask", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in denied.headers
    page = http.get("/healthz")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["content-security-policy"] == f"frame-ancestors 'self' {HOST_ORIGIN}"


def test_widget_script_is_small_and_open(http):
    response = http.get("/widget.js")
    assert response.status_code == 200 and "javascript" in response.headers["content-type"]
    assert len(response.content) <= 15 * 1024
    import re

    assert re.findall(r"https?://(?!HOST/|www\.w3\.org/2000/svg)", response.text) == [], "no third-party requests"
    assert "innerHTML" not in response.text, "server text must never be inserted as HTML"


def test_openapi_docs(http):
    assert http.get("/docs").status_code == 200
    paths = http.get("/openapi.json").json()["paths"]
    assert {"/api/ask", "/api/ask/stream", "/v1/chat/completions", "/healthz"} <= set(paths)


def test_gradio_client_chats_with_the_ui(server):
    from gradio_client import Client

    client = Client(server[0] + "/", verbose=False)
    chat, box, cards = client.predict(QUESTION, [], api_name="/chat")
    assert "Lu Weibing" in str(chat[-1]["content"]) and box == ""
    assert "[1]" in cards and "<mark>" in cards


# --- API keys and rate limits, on their own app instances ------------------------------------------


def _client(real_assistant, **security):
    settings = real_assistant.settings.model_copy(deep=True)
    for key, value in security.items():
        setattr(settings.security, key, value)
    return TestClient(create_app(real_assistant, settings, with_ui=False))


def test_api_keys_are_required_when_configured(real_assistant):
    client = _client(real_assistant, api_keys="k-one,k-two", widget_key="pub", allowed_origins="http://intra.example")
    assert client.post("/api/ask", json={"question": QUESTION}).status_code == 401
    assert (
        client.post("/api/ask", json={"question": QUESTION}, headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )
    assert (
        client.post("/api/ask", json={"question": QUESTION}, headers={"Authorization": "Bearer k-two"}).status_code
        == 200
    )
    assert client.get("/v1/models").status_code == 401
    assert client.get("/healthz").status_code == 200 and client.get("/widget.js").status_code == 200
    widget = {"Authorization": "Bearer pub", "Origin": "http://intra.example"}
    assert client.post("/api/ask", json={"question": QUESTION}, headers=widget).status_code == 200
    assert client.get("/v1/models", headers=widget).status_code == 401, "the widget key is chat-only"
    other = {"Authorization": "Bearer pub", "Origin": "http://evil.example"}
    assert client.post("/api/ask", json={"question": QUESTION}, headers=other).status_code == 401


def test_rate_limit_answers_429_with_retry_after(real_assistant):
    client = _client(real_assistant, rate_limit_per_minute=3)
    codes = [client.get("/api/sources").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = client.get("/api/sources")
    assert int(limited.headers["retry-after"]) >= 1 and "too many" in limited.json()["error"]["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/widget.js/..%2F..%2F..%2Fetc%2Fpasswd",
        "/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/gradio_api/file=/etc/passwd",
        "/gradio_api/file=..%2F..%2F..%2Fetc%2Fpasswd",
        "/file=/etc/passwd",
        "/static/..%2F..%2Fpyproject.toml",
        "/assets/..%2F..%2F..%2Fpyproject.toml",
    ],
)
def test_no_path_traversal_through_any_route(http, path):
    response = http.get(path)
    assert "root:x:0:0" not in response.text and "[project]" not in response.text
    assert response.status_code in (400, 403, 404, 405, 422) or response.headers["content-type"].startswith("text/html")


def test_hostile_questions_and_history_get_clean_4xx_or_answers(http):
    cases = [
        {"question": "\x00\x00\x00"},
        {"question": "what\x00 is the price\x00?"},
        {"question": "x", "history": [{"role": "user", "content": "y" * 300}] * 2000},
        {"question": "x", "history": [{"role": "user"}]},
        {"question": ["a list"]},
        {"question": None},
    ]
    for body in cases:
        response = http.post("/api/ask", json=body)
        assert response.status_code < 500, (body, response.text)
        assert response.headers["content-type"].startswith("application/json")
    wrong_type = http.post("/api/ask", content=b"question=hi", headers={"content-type": "text/plain"})
    assert 400 <= wrong_type.status_code < 500


def test_keys_never_reach_the_logs(real_assistant, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    client = _client(real_assistant, api_keys="secret-key-123456")
    client.post("/api/ask", json={"question": QUESTION}, headers={"Authorization": "Bearer secret-key-123456"})
    client.post("/api/ask", json={"question": QUESTION}, headers={"Authorization": "Bearer wrong-key-987654"})
    client.post("/api/ask", content=b"{broken", headers={"Authorization": "Bearer secret-key-123456"})
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "secret-key-123456" not in logged and "wrong-key-987654" not in logged
