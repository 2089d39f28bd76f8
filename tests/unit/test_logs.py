"""Log setup: request ids, the JSON and plain formats, and ``assistant serve`` installing them."""

from __future__ import annotations

import io
import json
import logging

import pytest

from assistant import cli
from assistant.config import LogSettings, Settings
from assistant.logs import JsonFormatter, PlainFormatter, new_request_id, request_id, setup_logging


@pytest.fixture
def restore_root():
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    yield
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


@pytest.mark.parametrize("incoming", ["req-1", "0f8e2c4a-3b1d-4e5f-9a8b-7c6d5e4f3a2b", "Root=1-abc:def.2"])
def test_a_sane_incoming_id_is_kept(incoming):
    assert new_request_id(incoming) == incoming


@pytest.mark.parametrize("incoming", [None, "", "has space", 'quote"', "x" * 129, "-starts-with-dash", "nl\nx"])
def test_anything_else_gets_a_fresh_id(incoming):
    made = new_request_id(incoming)
    assert made != incoming and len(made) == 32 and int(made, 16) >= 0


def test_json_lines_carry_the_request_id_and_extras(restore_root):
    buffer = io.StringIO()
    setup_logging(LogSettings(format="json", level="INFO"), stream=buffer)
    log = logging.getLogger("assistant.test")
    log.info("outside")
    token = request_id.set("rid-7")
    try:
        log.info("inside", extra={"status": 200})
        log.debug("too low")
        logging.getLogger("bm25s").info("library chatter")  # quiet library, below WARNING: dropped
        logging.getLogger("bm25s").warning("library warning")
    finally:
        request_id.reset(token)
    records = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert [(r["message"], r["request_id"]) for r in records] == [
        ("outside", None), ("inside", "rid-7"), ("library warning", "rid-7")
    ]  # fmt: skip
    assert records[1]["status"] == 200 and records[1]["level"] == "INFO"


def test_plain_lines_name_the_request(restore_root):
    buffer = io.StringIO()
    setup_logging(LogSettings(format="plain", level="WARNING"), stream=buffer)
    token = request_id.set("rid-9")
    try:
        logging.getLogger("assistant.test").warning("careful", extra={"status": 503})
        logging.getLogger("assistant.test").info("not shown")
    finally:
        request_id.reset(token)
    (line,) = buffer.getvalue().splitlines()
    assert "WARNING assistant.test [rid-9] careful status=503" in line


def test_setting_up_twice_does_not_double_lines(restore_root):
    buffer = io.StringIO()
    setup_logging(LogSettings(), stream=buffer)
    setup_logging(LogSettings(), stream=buffer)
    logging.getLogger("assistant.test").warning("once")
    assert len(buffer.getvalue().splitlines()) == 1


def test_log_format_comes_from_settings(monkeypatch):
    monkeypatch.setenv("ASSISTANT_LOG__FORMAT", "plain")
    monkeypatch.setenv("ASSISTANT_LOG__LEVEL", "WARNING")
    settings = Settings(_env_file=None)
    assert (settings.log.format, settings.log.level) == ("plain", "WARNING")
    monkeypatch.setenv("ASSISTANT_LOG__FORMAT", "xml")
    with pytest.raises(ValueError):
        Settings(_env_file=None)


@pytest.mark.parametrize(("fmt", "formatter"), [("json", JsonFormatter), ("plain", PlainFormatter)])
def test_assistant_serve_installs_the_configured_logging(monkeypatch, restore_root, fmt, formatter):
    import assistant.api.server as server

    served = []
    monkeypatch.setattr(server, "serve", served.append)
    monkeypatch.setenv("ASSISTANT_LOG__FORMAT", fmt)
    assert cli.main(["serve", "--port", "7999"]) == 0
    assert served and served[0].server.port == 7999
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler.formatter, formatter)
