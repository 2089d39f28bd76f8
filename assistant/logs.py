"""Log lines for a served assistant: JSON (or plain text), each carrying the id of the request it belongs to.

:func:`setup_logging` installs one handler on the root logger; :data:`request_id` is set by the request guard
(:class:`~assistant.api.middleware.RequestGuard`) for the length of each HTTP request, so every line logged
while serving it (in the request's task or in a worker thread started from it) names the request, and the
client gets the same id back in ``X-Request-ID``.

What goes in a line is the logger's message and the fields a caller passes in ``extra``: the request line
holds method, path (never the query string), status and duration. Question text and keys are never logged at
INFO; a test reads a server's lines to hold that.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO

from assistant.config import LogSettings

#: The id of the HTTP request being served, ``None`` outside one.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

#: An incoming ``X-Request-ID`` is kept when it looks like an id (a UUID, a proxy's trace id); anything else
#: (too long, spaces, quotes, control characters) is replaced, so a client cannot forge or break log lines.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=+/-]{0,127}")
#: Libraries that log chatter below WARNING (bm25s sets its own logger to DEBUG on import): their lines
#: below WARNING are dropped at the handler, which holds whatever level they set themselves.
QUIET_LIBRARIES = frozenset({"bm25s", "chromadb", "sentence_transformers", "httpx", "httpcore", "urllib3"})
#: Attributes every ``LogRecord`` has; anything else on a record came from ``extra=`` and goes in the line.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "request_id"}


def new_request_id(incoming: str | None) -> str:
    """The id of a new request: the client's ``X-Request-ID`` when it is a sane id, else a fresh random one."""
    if incoming and _SANE_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class _RequestIdFilter(logging.Filter):
    """Stamps each record with the current request's id and drops the quiet libraries' chatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING and record.name.split(".", 1)[0] in QUIET_LIBRARIES:
            return False
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, ``request_id``, extras, ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """``time LEVEL logger [request id] message key=value ...``, for reading in a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The record as text, with its extras appended as ``key=value``."""
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        text = super().format(record)
        extras = [f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")]
        if extras:
            first, newline, rest = text.partition("\n")  # a traceback stays below the line
            text = first + " " + " ".join(extras) + newline + rest
        return text


def setup_logging(settings: LogSettings, stream: IO[str] | None = None) -> logging.Handler:
    """Send every log line to ``stream`` (stderr) in the configured format and level; return the handler.

    Replaces the root logger's handlers, so calling it twice does not print lines twice.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else PlainFormatter())
    handler.setLevel(settings.level)
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    return handler
