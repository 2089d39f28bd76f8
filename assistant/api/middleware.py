"""The ASGI layers every request passes through, whichever route (API, OpenAI, widget or gradio UI) it is for.

Pure ASGI rather than ``BaseHTTPMiddleware``: the body limit has to count the bytes as the app reads them,
and the headers have to land on every response, including those these layers write themselves.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from assistant.api.security import AccessError, AccessPolicy
from assistant.logs import new_request_id, request_id

log = logging.getLogger(__name__)
#: One line per request, on a logger of its own so a deployment can route or silence it.
access_log = logging.getLogger("assistant.access")

#: Gradio routes the UI does not need: it has no file or media components, so nothing is uploaded, served
#: from disk or proxied, and the development, monitoring and run-history pages stay off.
DISABLED_PREFIXES = (
    "/gradio_api/upload", "/gradio_api/file=", "/gradio_api/file/", "/file=", "/gradio_api/proxy=",
    "/gradio_api/process_recording", "/gradio_api/vibe", "/gradio_api/undo-vibe", "/gradio_api/run-history",
    "/gradio_api/runs", "/gradio_api/profiling", "/gradio_api/dev/", "/gradio_api/mcp", "/monitoring",
)  # fmt: skip
#: Gradio routes that run something on the server: counted like API requests.
UI_ACTION_PREFIXES = (
    "/gradio_api/queue/join", "/gradio_api/call/", "/gradio_api/run/", "/gradio_api/api/", "/gradio_api/stream/",
    "/gradio_api/reset", "/gradio_api/cancel", "/login",
)  # fmt: skip


def names_a_file(value: object) -> bool:
    """Whether a gradio event's JSON names a file or a component (which gradio would copy, fetch or build)."""
    if isinstance(value, dict):
        meta = value.get("meta")
        if value.get("type") in ("file", "component") or (
            isinstance(meta, dict) and meta.get("_type") == "gradio.FileData"
        ):
            return True
        return any(names_a_file(item) for item in value.values())
    if isinstance(value, list):
        return any(names_a_file(item) for item in value)
    return False


def error_body(status: int, message: str) -> bytes:
    """The documented error shape: ``{"error": {"message": ..., "status": ...}}``."""
    return json.dumps({"error": {"message": message, "status": status}}).encode()


async def send_error(send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    """Write a whole JSON error response."""
    body = error_body(status, message)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BodyTooLargeError(Exception):
    """Raised from ``receive`` once a request body passes the limit."""


class RequestGuard:
    """The outermost layer: names each request, bounds request bodies, marks every response, hides every traceback.

    * Each request gets an id (the client's ``X-Request-ID`` when it is a sane one), set in
      :data:`assistant.logs.request_id` for every line logged while it is served, echoed in the response's
      ``X-Request-ID`` and logged once at INFO with method, path (no query string), status and duration.
    * A declared ``Content-Length`` over the limit is refused before the body is read; without one (chunked
      bodies) the bytes are counted as the app reads them and the request ends with 413 as soon as the
      count passes the limit, whatever the route does with the error.
    * Every response gets the security headers (``nosniff``, ``no-referrer``, the frame policy), errors too.
    * An exception that escapes the app becomes a JSON 500; the traceback goes to the log only.
    """

    def __init__(
        self, app, *, max_body_bytes: int, headers: dict[str, str], origin_allowed: Callable[[str | None], bool]
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.headers = headers
        self.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.origin_allowed = origin_allowed

    async def __call__(self, scope, receive, send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = new_request_id(incoming)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def named_send(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", rid.encode("latin-1"))]}
            await send(message)

        try:
            await self._guarded(scope, receive, named_send)
        finally:
            access_log.info(
                "request", extra={"method": scope["method"], "path": scope["path"], "status": status,
                                  "duration_ms": round((time.perf_counter() - started) * 1000, 1)},
            )  # fmt: skip
            request_id.reset(token)

    async def _guarded(self, scope, receive, send) -> None:
        request_headers = dict(scope["headers"])
        origin = request_headers.get(b"origin", b"").decode("latin-1")
        # Our own answers skip the CORS layer, so they carry its header themselves.
        own = {
            **self.headers,
            **({"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if self.origin_allowed(origin) else {}),
        }
        too_large = f"request body larger than {self.max_body_bytes} bytes"
        declared = request_headers.get(b"content-length")
        if declared is not None and not declared.strip().isdigit():
            await send_error(send, 400, "invalid Content-Length header", own)
            return
        if declared is not None and int(declared) > self.max_body_bytes:
            await send_error(send, 413, too_large, own)
            return

        read, over, started, replaced = 0, False, False, False

        async def bounded_receive():
            nonlocal read, over
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > self.max_body_bytes:
                    over = True
                    raise BodyTooLargeError
            return message

        async def marked_send(message) -> None:
            nonlocal started, replaced
            if replaced:
                return
            if message["type"] == "http.response.start":
                if over:  # the app answered the interrupted read its own way (often a 400); the answer is 413
                    replaced = True
                    await send_error(send, 413, too_large, own)
                    return
                started = True
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.raw_headers if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, bounded_receive, marked_send)
        except Exception as exc:  # the last line of defence: no traceback ever reaches a client
            if started or replaced:
                if not isinstance(exc, BodyTooLargeError):
                    log.exception("error after the response began")
            elif over:
                await send_error(send, 413, too_large, own)
            else:
                log.exception("unexpected error")
                await send_error(send, 500, "internal error; the server log has details", own)
            return
        if over and not (started or replaced):
            await send_error(send, 413, too_large, own)


class AccessControl:
    """Applies the :class:`AccessPolicy` to the API routes and the UI's action routes; turns off unused ones.

    API requests are judged by path, method and query string (a signed "Open document" link), never by body.
    """

    def __init__(self, app, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope, receive, send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        client = scope["client"][0] if scope.get("client") else "unknown"
        try:
            if path.startswith(("/api/", "/v1/")):
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
                query = scope.get("query_string", b"").decode("latin-1")  # only a signed link reads it
                self.policy.authorize(path, headers, client, method=scope["method"], query=query)
            elif path.startswith(DISABLED_PREFIXES):
                await send_error(send, 404, "not available on this server")
                return
            elif scope["method"] == "POST" and path.startswith(UI_ACTION_PREFIXES):
                self.policy.admit_ui(client)
                if path.startswith("/login"):
                    send = self._watch_login(send, client)
                else:
                    receive = await self._text_only(receive)
        except AccessError as exc:
            await send_error(send, exc.status, exc.message, exc.headers)
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _text_only(receive):
        """Read a UI event's body and refuse it if it names files; return a ``receive`` that replays it.

        The UI takes text only. Gradio copies any server path named as a file input into its cache, fetches
        any URL named so, and builds any component a chat message names, all before the handler runs.
        """
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            refused = names_a_file(json.loads(body))
        except (ValueError, RecursionError):
            refused = False  # not JSON: gradio answers that itself
        if refused:
            raise AccessError(400, "the chat UI accepts text only; files and components are refused")
        pending = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay():
            return pending.pop() if pending else await receive()

        return replay

    def _watch_login(self, send, client: str):
        async def watched(message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                self.policy.failed(client)
            await send(message)

        return watched
