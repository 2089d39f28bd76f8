"""Access control for the HTTP API: API keys, the widget's origin allowlist, rate limits, headers."""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections import defaultdict, deque

from fastapi import Request

from assistant.config import SecuritySettings, split_csv

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "SAMEORIGIN",
}


class AccessError(Exception):
    """A request is not allowed; carries the HTTP status and a message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class AccessPolicy:
    """Decides whether a request may use the API.

    * With ``api_keys`` set, API routes need ``Authorization: Bearer <key>`` (compared in constant time).
    * The widget runs in visitors' browsers and cannot hold a secret: it sends the public, chat-only
      ``widget_key``, accepted only on the ask routes and only with an ``Origin`` in ``allowed_origins``.
    * Every client (key, or address without one) gets ``rate_limit_per_minute`` requests per minute.
    """

    def __init__(self, settings: SecuritySettings) -> None:
        self.keys = [k.encode() for k in split_csv(settings.api_keys)]
        self.widget_key = settings.widget_key.encode()
        self.origins = set(split_csv(settings.allowed_origins))
        self.rate = settings.rate_limit_per_minute
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def origin_allowed(self, origin: str | None) -> bool:
        """Whether a browser page from ``origin`` may call the API."""
        return bool(origin) and ("*" in self.origins or origin in self.origins)

    @staticmethod
    def _matches(candidate: bytes, keys: list[bytes]) -> bool:
        found = False
        for key in keys:  # no early exit: the time taken does not reveal which key matched
            found |= hmac.compare_digest(candidate, key)
        return found

    def check(self, request: Request, *, chat_route: bool) -> str:
        """Return the client identity for rate limiting, or raise :class:`AccessError`."""
        client = request.client.host if request.client else "unknown"
        if self.keys:
            header = request.headers.get("authorization", "")
            token = header[7:].strip().encode() if header.lower().startswith("bearer ") else b""
            widget = (
                chat_route
                and bool(self.widget_key)
                and hmac.compare_digest(token, self.widget_key)
                and self.origin_allowed(request.headers.get("origin"))
            )
            if not widget and not self._matches(token, self.keys):
                raise AccessError(401, "missing or invalid API key", {"WWW-Authenticate": "Bearer"})
            client = f"key:{token[:6].decode(errors='replace')}…" if token else client
        self._rate_limit(client)
        return client

    def _rate_limit(self, client: str) -> None:
        if not self.rate:
            return
        now = time.monotonic()
        with self._lock:
            hits = self._hits[client]
            while hits and now - hits[0] > 60:
                hits.popleft()
            if len(hits) >= self.rate:
                retry = max(1, math.ceil(60 - (now - hits[0])))
                raise AccessError(429, "too many requests; slow down", {"Retry-After": str(retry)})
            hits.append(now)
