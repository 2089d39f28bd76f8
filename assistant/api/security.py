"""Access control: API keys, the widget's public key, signed document links, rate limits, failed-auth throttling.

One policy covers every way in (the JSON API, the OpenAI routes and the gradio UI's action routes);
:mod:`assistant.api.middleware` applies it in the ASGI layer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from urllib.parse import parse_qs, urlencode

from assistant.config import SecuritySettings, split_csv

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "SAMEORIGIN",
}
#: Routes the widget's public key may call: asking, its settings, and its thumbs (feedback, POST only).
CHAT_ROUTES = frozenset({"/api/ask", "/api/ask/stream", "/api/widget/config", "/api/widget/feedback"})
#: Routes (and everything below them, every method) that only an admin key may call.
ADMIN_ROUTES = ("/api/documents",)
#: What the admin routes answer on a server without admin keys.
ADMIN_OFF = "document management is off on this server; set ASSISTANT_SECURITY__ADMIN_KEYS to enable it"

#: The one route a signed link opens: an indexed document, named by the rest of the path.
SIGNED_ROUTE = "/api/sources/"
#: An expiry as a link spells it: Unix seconds in ASCII digits (``str.isdigit`` would take other scripts' digits).
_EXPIRY = re.compile(r"[0-9]{1,12}")
#: How far a replica's clock may run behind the one that signed a link before the link looks too long-lived.
_CLOCK_SKEW_S = 60


def is_admin_route(path: str) -> bool:
    """Whether ``path`` is one of :data:`ADMIN_ROUTES` or below one."""
    return any(path == route or path.startswith(route + "/") for route in ADMIN_ROUTES)


class AccessError(Exception):
    """A request is not allowed; carries the HTTP status and a message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class RateLimiter:
    """Sliding one-minute windows of hits per bucket, in this process's memory.

    Buckets that saw no hit for a whole window are dropped, so a stream of new client addresses
    cannot grow the table without bound. Replicas behind one load balancer each count on their own.
    """

    def __init__(self, per_minute: int, *, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.window_s = window_s
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._next_sweep = clock() + window_s

    def __len__(self) -> int:
        return len(self._hits)

    def hit(self, bucket: str) -> float | None:
        """Count a hit; return the seconds to wait instead when the bucket is full (the hit is not counted)."""
        with self._lock:
            hits, now = self._current(bucket)
            if len(hits) >= self.per_minute:
                return self.window_s - (now - hits[0])
            hits.append(now)
            return None

    def wait(self, bucket: str) -> float | None:
        """The seconds to wait when the bucket is full, without counting a hit."""
        with self._lock:
            hits, now = self._current(bucket)
            return self.window_s - (now - hits[0]) if len(hits) >= self.per_minute else None

    def _current(self, bucket: str) -> tuple[deque[float], float]:
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        hits = self._hits.setdefault(bucket, deque())
        while hits and now - hits[0] >= self.window_s:
            hits.popleft()
        return hits, now

    def _sweep(self, now: float) -> None:
        idle = [name for name, hits in self._hits.items() if not hits or now - hits[-1] >= self.window_s]
        for name in idle:
            del self._hits[name]
        self._next_sweep = now + self.window_s


class LinkSigner:
    """Short-lived signed links that open one cited document without an API key.

    A browser follows an "Open document" link without the ``Authorization`` header the API needs, so each
    ``open_url`` the server hands out carries an expiry (Unix seconds) and an HMAC-SHA256, keyed by a server
    secret, over that source id and expiry: ``?exp=1764230000&sig=<base64url>``. The signature names one source
    and one route (:data:`SIGNED_ROUTE`); a link to any other file or route, a changed expiry and an expired link
    do not verify. Signatures are compared with :func:`hmac.compare_digest`.

    Args:
        secret: The signing secret; empty draws a random one, so links die when the process does (replicas
            behind one load balancer need the same configured secret).
        lifetime_s: Seconds a link stays valid. A link whose expiry lies further ahead than that (signed
            before the lifetime was shortened), give or take a minute of clock skew between replicas, is refused.
        clock: Unix time in seconds (tests pass their own).

    """

    def __init__(self, secret: str = "", lifetime_s: int = 3600, *, clock: Callable[[], float] = time.time) -> None:
        self._key = secret.encode("utf-8", "surrogatepass") if secret else secrets.token_bytes(32)
        self.lifetime_s = lifetime_s
        self._clock = clock

    def signature(self, source: str, expires: int) -> str:
        """The base64url signature (no padding) of a link to ``source`` that expires at ``expires``."""
        # The route is part of the message, so a signature made for documents means nothing anywhere else.
        message = f"{SIGNED_ROUTE}\n{expires}\n{source}".encode("utf-8", "surrogatepass")
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def query(self, source: str) -> str:
        """The query string (``exp=...&sig=...``) that lets a link open ``source`` for the next ``lifetime_s``."""
        expires = int(self._clock()) + self.lifetime_s
        return urlencode({"exp": expires, "sig": self.signature(source, expires)})

    def valid(self, source: str, query: str) -> bool:
        """Whether ``query`` (the raw query string) signs a link to ``source`` that has not expired.

        The query must hold exactly one ``exp`` and one ``sig`` and nothing else, so a link means one thing.
        """
        params = parse_qs(query, keep_blank_values=True)
        if not source or set(params) != {"exp", "sig"} or any(len(v) != 1 for v in params.values()):
            return False
        expires, signature = params["exp"][0], params["sig"][0]
        if not _EXPIRY.fullmatch(expires):
            return False
        expires_at = int(expires)
        expected = self.signature(source, expires_at)
        authentic = hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "surrogatepass"))
        now = self._clock()
        return authentic and now < expires_at <= now + self.lifetime_s + _CLOCK_SKEW_S


def _digest(secret: str | bytes) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass") if isinstance(secret, str) else secret).digest()


class AccessPolicy:
    """Decides whether a request may go on, and which rate bucket it is counted in.

    * With ``api_keys`` set, API routes need ``Authorization: Bearer <key>``. Keys are compared as SHA-256
      digests with :func:`hmac.compare_digest` over all keys (no early exit) and counted per whole key,
      named by its digest, never by a prefix that two keys could share.
    * The widget runs in visitors' browsers and cannot hold a secret: its public ``widget_key`` is accepted
      only on :data:`CHAT_ROUTES`, only with an ``Origin`` in ``allowed_origins``, and counted per
      visitor address, so one visitor cannot use up everyone's allowance.
    * Without a key, requests (and the UI's actions) are counted per client address. The address is the
      connecting peer's unless the server trusts a proxy (``server.trusted_proxies``) to name the client.
    * Admin keys (``admin_keys``) alone may call :data:`ADMIN_ROUTES` (and the routes that ask
      :meth:`admin_bucket` themselves); they work as API keys elsewhere. An API key or the widget key on an
      admin route gets 403, and without admin keys configured every admin route answers 403 with how to
      turn it on, so an open install never lets a visitor change the documents.
    * A signed link (:class:`LinkSigner`, :attr:`links`) opens the one document it names on
      ``GET /api/sources/<source>`` without a key, counted per client address; it grants nothing else.
    * An address that fails authentication ``failed_auth_per_minute`` times gets 429s until a minute has passed;
      a wrong or expired link counts as a failure like a wrong key.
    """

    def __init__(self, settings: SecuritySettings) -> None:
        self._keys = [_digest(k) for k in split_csv(settings.api_keys)]
        self._admin = [_digest(k) for k in split_csv(settings.admin_keys)]
        self._widget = _digest(settings.widget_key) if settings.widget_key else None
        self.origins = set(split_csv(settings.allowed_origins))
        self.requests = RateLimiter(settings.rate_limit_per_minute) if settings.rate_limit_per_minute else None
        self.failures = RateLimiter(settings.failed_auth_per_minute)
        self.links = LinkSigner(settings.link_secret, settings.link_lifetime_s)

    @property
    def keys_required(self) -> bool:
        """Whether API keys are configured (and so required on the API and the UI)."""
        return bool(self._keys)

    @property
    def admin_enabled(self) -> bool:
        """Whether admin keys are configured (and so document management is on)."""
        return bool(self._admin)

    def origin_allowed(self, origin: str | None) -> bool:
        """Whether a browser page from ``origin`` may call the API."""
        return bool(origin) and ("*" in self.origins or origin in self.origins)

    def key_valid(self, key: str) -> bool:
        """Whether ``key`` is one of the API or admin keys (the widget's public key is not one)."""
        return self._match(_digest(key)) is not None

    def _match(self, digest: bytes, keys: list[bytes] | None = None) -> bytes | None:
        """The key ``digest`` names, among ``keys`` (by default the API keys and then the admin keys)."""
        found = None
        for key in (self._keys + self._admin) if keys is None else keys:
            if hmac.compare_digest(digest, key):  # no early exit: the time taken does not reveal which key matched
                found = key
        return found

    @staticmethod
    def _bearer(headers: Mapping[str, str]) -> str:
        header = headers.get("authorization", "")
        return header[7:].strip() if header[:7].lower() == "bearer " else ""

    def authorize(
        self, path: str, headers: Mapping[str, str], client: str, *, method: str = "GET", query: str = ""
    ) -> str:
        """Check an API request's key (or signed link) and rate; return its bucket name or raise :class:`AccessError`.

        Args:
            path: The request's path, percent-decoded.
            headers: Its headers, names in lower case.
            client: The client's address.
            method: Its HTTP method; only ``GET`` can open a signed link.
            query: Its raw query string, where a signed link's ``exp`` and ``sig`` are.

        """
        if is_admin_route(path):
            return self.count(self.admin_bucket(headers, client))
        if not self._keys:
            return self.count(f"addr:{client}")
        self._refuse_if_failing(client)
        digest = _digest(self._bearer(headers))
        key = self._match(digest)
        if key is not None:
            return self.count(f"key:{key.hex()[:32]}")
        if self.signed_link(method, path, query):
            return self.count(f"addr:{client}")
        widget = self._widget is not None and hmac.compare_digest(digest, self._widget)
        if widget and path in CHAT_ROUTES and self.origin_allowed(headers.get("origin")):
            return self.count(f"widget:{self._widget.hex()[:16]}:{client}")
        self.failed(client)
        raise AccessError(401, "missing or invalid API key", {"WWW-Authenticate": "Bearer"})

    def signed_link(self, method: str, path: str, query: str) -> bool:
        """Whether a request is a ``GET`` of :data:`SIGNED_ROUTE` with a valid, unexpired link for that document."""
        if method != "GET" or not path.startswith(SIGNED_ROUTE) or "sig=" not in query:
            return False
        return self.links.valid(path[len(SIGNED_ROUTE) :], query)

    @property
    def link_signer(self) -> LinkSigner | None:
        """What signs "Open document" links: :attr:`links` when keys are required; ``None`` (plain links) else."""
        return self.links if self._keys else None

    def admin_bucket(self, headers: Mapping[str, str], client: str) -> str:
        """Check that a request carries an admin key; return its rate bucket (not counted) or raise.

        403 without admin keys configured (saying how to turn them on) and for an API or widget key; 401,
        counted as a failed authentication, for anything else.
        """
        if not self._admin:
            raise AccessError(403, ADMIN_OFF)
        self._refuse_if_failing(client)
        digest = _digest(self._bearer(headers))
        admin = self._match(digest, self._admin)
        if admin is not None:
            return f"admin:{admin.hex()[:32]}"
        widget = self._widget is not None and hmac.compare_digest(digest, self._widget)
        if self._match(digest, self._keys) is not None or widget:
            raise AccessError(403, "this route needs an admin key (ASSISTANT_SECURITY__ADMIN_KEYS); API keys and "
                                   "the widget key are not admin keys")  # fmt: skip
        self.failed(client)
        raise AccessError(401, "missing or invalid admin key", {"WWW-Authenticate": "Bearer"})

    def admit_ui(self, client: str) -> str:
        """Count one action of the chat UI (a question, a rating, a login) from ``client``."""
        self._refuse_if_failing(client)
        return self.count(f"addr:{client}")

    def failed(self, client: str) -> None:
        """Record a failed authentication from ``client``."""
        self.failures.hit(f"auth:{client}")

    def count(self, bucket: str) -> str:
        """Count a request in ``bucket``; raise a 429 :class:`AccessError` when it is full."""
        wait = self.requests.hit(bucket) if self.requests is not None else None
        if wait is not None:
            raise AccessError(429, "too many requests; slow down", {"Retry-After": str(max(1, math.ceil(wait)))})
        return bucket

    def _refuse_if_failing(self, client: str) -> None:
        wait = self.failures.wait(f"auth:{client}")
        if wait is not None:
            raise AccessError(
                429, "too many failed authentications; wait before trying again",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )  # fmt: skip
