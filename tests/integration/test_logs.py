"""Log lines of a real server: JSON, one request id per request (echoed in X-Request-ID), no question or key."""

from __future__ import annotations

import io
import json
import logging
import re

import httpx
import pytest

from assistant.api.server import create_app
from assistant.config import LogSettings
from assistant.logs import setup_logging
from tests.integration.servers import free_port, run_app

pytestmark = pytest.mark.integration

KEY = "sk-logtest-5b1e9c0d7a"
MARKER = "zebracorn-3141"  # in every question asked; it must never reach the log
QUESTION = f"Which Xiaomi executive announced the goal of 10,000 stores? {MARKER}"
GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def log_lines():
    """Root logging into a buffer, as ``assistant serve`` sets it up (JSON, INFO); restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    setup_logging(LogSettings(format="json", level="INFO"), stream=buffer)
    try:
        yield lambda: buffer.getvalue().splitlines()
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def test_every_line_is_json_with_the_request_id_the_client_got_back(real_assistant, real_settings, log_lines):
    settings = real_settings.model_copy(deep=True)
    settings.security.api_keys = KEY
    app = create_app(real_assistant, settings, with_ui=False)

    @app.get("/api/log-probe")
    def probe() -> dict:  # a sync route runs on a worker thread: the id must follow it there
        logging.getLogger("assistant.probe").warning("inside the route")
        return {}

    app.router.routes.insert(0, app.router.routes.pop())  # ahead of the API's catch-all 404 route

    auth = {"Authorization": f"Bearer {KEY}"}
    with run_app(app, free_port()) as url, httpx.Client(base_url=url, timeout=120) as client:
        chosen = client.post("/api/ask", json={"question": QUESTION}, headers={**auth, "X-Request-ID": "client-id-42"})
        made = client.post("/api/ask", json={"question": QUESTION}, headers=auth)
        insane = client.post("/api/ask", json={"question": QUESTION}, headers={**auth, "X-Request-ID": 'a b"c'})
        refused = client.post(
            "/api/ask", json={"question": QUESTION}, headers={"Authorization": "Bearer sk-wrong-e4d2a9"}
        )
        probed = client.get("/api/log-probe", headers={**auth, "X-Request-ID": "probe-1"})
    assert [r.status_code for r in (chosen, made, insane, refused, probed)] == [200, 200, 200, 401, 200]
    assert chosen.headers["x-request-id"] == "client-id-42"
    assert GENERATED.fullmatch(made.headers["x-request-id"])
    assert GENERATED.fullmatch(insane.headers["x-request-id"]), "an id with spaces or quotes is replaced"
    assert GENERATED.fullmatch(refused.headers["x-request-id"]), "refusals carry an id too"
    assert len({r.headers["x-request-id"] for r in (made, insane, refused)}) == 3

    lines = log_lines()
    records = [json.loads(line) for line in lines]  # every line parses
    assert all({"time", "level", "logger", "message", "request_id"} <= set(r) for r in records)
    requests = {r["request_id"]: r for r in records if r["logger"] == "assistant.access"}
    for response in (chosen, made, insane, refused, probed):
        line = requests[response.headers["x-request-id"]]
        assert line["status"] == response.status_code and line["path"] == response.request.url.path
        assert line["method"] == response.request.method and line["duration_ms"] >= 0
    inside = [r for r in records if r["logger"] == "assistant.probe"]
    assert [r["request_id"] for r in inside] == ["probe-1"]

    text = "\n".join(lines)
    assert MARKER not in text, "a question's text reached the log"
    assert KEY not in text and "sk-wrong-e4d2a9" not in text, "a key reached the log"
