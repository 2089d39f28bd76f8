"""The HTTP server: JSON API, server-sent events, OpenAI-compatible routes, the widget and the UI."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from importlib import resources
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from assistant.answer.types import Answer
from assistant.api.documents import BodyLimits, admin_only, documents_router, upload_limit
from assistant.api.middleware import AccessControl
from assistant.api.security import SECURITY_HEADERS, AccessError, AccessPolicy, LinkSigner
from assistant.api.sources import source_url, sources_router
from assistant.config import Settings, split_csv
from assistant.errors import AssistantError, InputError
from assistant.facade import Assistant
from assistant.feedback import LIMITS, FeedbackLog, export_feedback
from assistant.metrics import CONTENT_TYPE, Metrics, RequestMetrics
from assistant.ui.cards import passage_url

log = logging.getLogger(__name__)
MODEL_ID = "assistant"


def _valid_unicode(text: str) -> str:
    # JSON may spell lone surrogates (\ud800); they are not text and cannot be encoded back out.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text holds a lone surrogate, which is not valid Unicode") from None
    return text


#: A string field of a request body: any valid Unicode text.
Text = Annotated[str, AfterValidator(_valid_unicode)]


class Message(BaseModel):
    """A conversation turn."""

    model_config = ConfigDict(extra="forbid")
    role: Text = Field(description="'user' or 'assistant'.")
    content: Text = Field(description="The text of the turn.")


class AskRequest(BaseModel):
    """Body of ``POST /api/ask``."""

    model_config = ConfigDict(extra="forbid")
    question: Text = Field(description="The question.")
    history: list[Message] | None = Field(None, description="Earlier turns, oldest first.")


class FeedbackCitation(BaseModel):
    """The part of a citation that feedback keeps; other keys of a returned citation are ignored."""

    model_config = ConfigDict(extra="ignore")
    n: int | None = Field(None, description="The citation's number in the answer.")
    source: Text | None = Field(None, max_length=LIMITS["source"], description="Source id.")
    start: int | None = Field(None, description="Offset of the passage in the source.")
    end: int | None = Field(None, description="Offset one past the passage's end.")


class FeedbackRequest(BaseModel):
    """Body of ``POST /api/feedback``."""

    model_config = ConfigDict(extra="forbid")
    rating: str = Field(pattern="^(up|down)$", description="'up' or 'down'.")
    question: Text = Field(max_length=LIMITS["question"], description="The question asked.")
    answer: Text = Field(max_length=LIMITS["answer"], description="The answer rated.")
    citations: list[FeedbackCitation] = Field(
        default_factory=list, max_length=LIMITS["citations"], description="The answer's citations."
    )
    comment: Text = Field("", max_length=LIMITS["comment"], description="Optional free text.")


class TextPart(BaseModel):
    """An OpenAI content part; only text parts are understood."""

    type: Literal["text"] = Field(description="Always 'text'.")
    text: Text = Field(description="The text.")


class ChatMessage(BaseModel):
    """An OpenAI chat message (text content only)."""

    role: Text
    content: Text | list[TextPart] | None = None


class ChatRequest(BaseModel):
    """Body of ``POST /v1/chat/completions``; unknown OpenAI parameters are accepted and ignored."""

    model: Text = MODEL_ID
    messages: list[ChatMessage]
    stream: bool = False


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "status": status}}, status_code=status, headers=headers)


def _stream_pieces(answer: Answer) -> Iterator[str]:
    """The answer text in sentence-sized pieces (each with its [n] markers)."""
    import re

    pieces = re.split(r"(?<=\])\s+", answer.answer)
    for i, piece in enumerate(pieces):
        yield piece if i == len(pieces) - 1 else piece + " "


def _answer_json(answer: Answer, links: LinkSigner | None) -> dict:
    """``Answer.to_dict()``, each citation with ``open_url``: where ``GET /api/sources/...`` serves its file.

    The URL points at the passage where a browser can (a PDF's ``#page=3``, a text file's ``#:~:text=``
    fragment). With keys required the link is signed (``links``), so a browser opens it without a key
    until it expires.
    """
    data = answer.to_dict()
    for citation in data["citations"]:
        citation["open_url"] = passage_url(citation, lambda source: source_url(source, links))
    return data


def _openai_messages(body: ChatRequest) -> tuple[str, list[dict]]:
    turns = []
    for m in body.messages:
        content = m.content
        if isinstance(content, list):
            content = " ".join(part.text for part in content)
        if m.role in ("user", "assistant"):
            turns.append({"role": m.role, "content": content or ""})
    if not turns or turns[-1]["role"] != "user":
        raise InputError("the last message must be from the user")
    return turns[-1]["content"], turns[:-1]


def create_app(assistant: Assistant, settings: Settings | None = None, *, with_ui: bool = True) -> FastAPI:
    """Build the FastAPI app around an already loaded :class:`Assistant`.

    Args:
        assistant: The facade every route calls.
        settings: Server and security settings (the assistant's own by default).
        with_ui: Mount the gradio chat UI at ``/``.

    """
    settings = settings or assistant.settings
    policy = AccessPolicy(settings.security)
    feedback = FeedbackLog(settings.paths.data_dir / "feedback.jsonl")
    app = FastAPI(
        title="Assistant API",
        description="Grounded answers with citations. Errors are JSON: {error: {message, status}}.",
        version="0.1.0",
    )
    origins = split_csv(settings.security.allowed_origins)
    frame_ancestors = " ".join(["'self'", *[o for o in origins if o != "*"]]) if "*" not in origins else "*"
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": f"frame-ancestors {frame_ancestors}"}
    if frame_ancestors != "'self'":
        del headers["X-Frame-Options"]
    # Outermost last: the guard sees every request first and every response last.
    app.add_middleware(AccessControl, policy=policy)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
    )
    app.add_middleware(
        BodyLimits,  # the RequestGuard, with document uploads capped at their own size
        upload_bytes=upload_limit(settings),
        max_body_bytes=settings.server.max_body_bytes,
        headers=headers,
        origin_allowed=policy.origin_allowed,
    )
    # Outermost of all, so the guards' refusals are counted and timed too.
    metrics = Metrics.of(assistant)
    app.add_middleware(RequestMetrics, metrics=metrics, routes=app.router.routes)

    @app.exception_handler(AssistantError)
    async def assistant_error(_: Request, exc: AssistantError) -> JSONResponse:
        return _error(exc.status if exc.status < 500 else 503, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        if first.get("type") == "json_invalid":
            return _error(400, "request body is not valid JSON")
        return _error(422, f"invalid request: {where or 'body'}: {first.get('msg', 'malformed')}")

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        # FastAPI answers bodies it cannot decode (not UTF-8, nested too deeply) with a bare 400.
        message = "request body is not valid JSON" if exc.status_code == 400 else str(exc.detail)
        return _error(exc.status_code, message, getattr(exc, "headers", None))

    @app.get("/healthz", tags=["status"])
    def healthz() -> dict:
        """Liveness, index size, and when the index last followed the sources folder."""
        return {**assistant.health(), "ingest": assistant.ingest_status()}

    @app.get("/api/sources", tags=["api"])
    def sources() -> dict:
        """The indexed sources."""
        return {"sources": assistant.sources()}

    @app.post("/api/ask", tags=["api"])
    async def ask(body: AskRequest) -> dict:
        """Answer a question: ``Answer.to_dict()``, each citation with the ``open_url`` of its document."""
        history = [m.model_dump() for m in body.history] if body.history else None
        answer = await run_in_threadpool(assistant.ask, body.question, history)
        return _answer_json(answer, policy.link_signer)

    @app.post("/api/ask/stream", tags=["api"])
    async def ask_stream(body: AskRequest) -> EventSourceResponse:
        """Server-sent events: ``token`` events with text, then one ``done`` event with the full answer."""
        history = [m.model_dump() for m in body.history] if body.history else None
        answer = await run_in_threadpool(assistant.ask, body.question, history)

        async def events():
            for piece in _stream_pieces(answer):
                yield {"event": "token", "data": json.dumps({"text": piece})}
            yield {"event": "done", "data": json.dumps(_answer_json(answer, policy.link_signer))}

        return EventSourceResponse(events(), ping=15)

    @app.get("/api/widget/config", tags=["widget"])
    def widget_config() -> dict:
        """Settings the widget needs; reachable cross-origin only from allowed origins (CORS)."""
        from assistant.ui.chat import example_questions

        return {"title": "Ask the sources", "greeting": settings.server.widget_greeting,
                "examples": example_questions(assistant)}  # fmt: skip

    @app.post("/api/feedback", tags=["api"])
    @app.post("/api/widget/feedback", tags=["widget"])  # the same, on a path the widget's public key may call
    def post_feedback(body: FeedbackRequest) -> dict:
        """Store a thumbs up/down with the question, answer and citations."""
        feedback.record(**body.model_dump())
        return {"stored": True}

    @app.get("/api/feedback", tags=["admin"], dependencies=[Depends(admin_only(policy))])
    def read_feedback(
        fmt: Literal["json", "jsonl", "csv"] = Query("json", alias="format", description="json, jsonl or csv."),
    ) -> Response:
        """The stored feedback, oldest first (admin keys only; POST stays open to every API key)."""
        entries = feedback.entries()
        if fmt == "json":
            return JSONResponse({"feedback": entries, "count": len(entries)})
        media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
        disposition = f'attachment; filename="feedback.{fmt}"'
        return Response(export_feedback(entries, fmt), media_type=media, headers={"Content-Disposition": disposition})

    app.include_router(documents_router(assistant, policy))
    app.include_router(sources_router(assistant, frame_policy=headers["Content-Security-Policy"]))

    @app.get("/v1/models", tags=["openai"])
    def models() -> dict:
        """OpenAI-compatible model list (one model: the assistant)."""
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "assistant"}]}

    @app.post("/v1/chat/completions", tags=["openai"])
    async def chat_completions(body: ChatRequest):
        """OpenAI-compatible chat. Extra fields ``citations`` and ``refused`` carry the grounding."""
        question, history = _openai_messages(body)
        answer = await run_in_threadpool(assistant.ask, question, history)
        data = _answer_json(answer, policy.link_signer)
        ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if not body.stream:
            return {
                "id": ident, "object": "chat.completion", "created": created, "model": body.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.answer},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                "citations": data["citations"], "refused": answer.refused,
            }  # fmt: skip

        def chunk(delta: dict, finish: str | None = None, **extra: object) -> str:
            return json.dumps({
                "id": ident, "object": "chat.completion.chunk", "created": created, "model": body.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra,
            })  # fmt: skip

        async def events():
            yield {"data": chunk({"role": "assistant", "content": ""})}
            for piece in _stream_pieces(answer):
                yield {"data": chunk({"content": piece})}
            yield {"data": chunk({}, "stop", citations=data["citations"], refused=answer.refused)}
            yield {"data": "[DONE]"}

        return EventSourceResponse(events())

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        """Prometheus text format; with API keys set, an API key is needed (the widget's key is refused)."""
        try:  # the API routes' policy: outside /api/ the access layer leaves the check to the route
            policy.authorize(request.url.path, request.headers, request.client.host if request.client else "unknown")
        except AccessError as exc:
            return _error(exc.status, exc.message, exc.headers)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    @app.get("/widget.js", include_in_schema=False)
    def widget() -> Response:
        """The embeddable chat widget (self-contained, no third-party requests)."""
        script = resources.files("assistant").joinpath("static/widget.js").read_text(encoding="utf-8")
        return Response(script, media_type="text/javascript", headers={"Cache-Control": "public, max-age=300"})

    @app.api_route("/api/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
    @app.api_route("/v1/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
    def no_such_route(rest: str) -> JSONResponse:
        """Unknown API paths answer in the API's error shape, not the UI's."""
        return _error(404, "no such API route")

    if with_ui:
        import gradio as gr

        from assistant.ui.chat import build_ui

        ui = build_ui(
            assistant, feedback, documents=policy.admin_enabled,
            document_link=lambda source: source_url(source, policy.link_signer),
        )  # fmt: skip
        app = gr.mount_gradio_app(
            app, ui, path="/", footer_links=["api"], run_history=False, max_file_size=0, show_error=False, css=ui.css,
            # The UI neither takes nor makes files: no path on this machine is one gradio may copy or serve.
            blocked_paths=[os.path.abspath(os.sep)],
            # With keys configured the UI asks for one (any user name, a key as password), as the API does.
            auth=(lambda _user, key: policy.key_valid(key)) if policy.keys_required else None,
            auth_message="Sign in with any name and an API key as the password." if policy.keys_required else None,
        )  # fmt: skip
        # Gradio checks the files named in requests and responses only for apps it launched itself
        # (processing_utils._check_allowed); a mounted app has to say it is being served.
        ui.has_launched = True
    return app


def uvicorn_options(settings: Settings) -> dict:
    """How uvicorn serves the app: address, and whose ``X-Forwarded-For`` to believe (nobody's by default)."""
    proxies = split_csv(settings.server.trusted_proxies)
    return {
        "host": settings.server.host,
        "port": settings.server.port,
        "log_level": "warning",
        "log_config": None,  # uvicorn's own lines go through the root handler: JSON with the rest
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or [],
    }


def serve(settings: Settings) -> None:
    """Load the assistant (building the index on first run) and serve everything on one port."""
    import uvicorn

    assistant = Assistant.load(settings, refresh=False)
    Metrics.of(assistant)  # before the first ingest, so that /metrics counts it
    assistant.ingest(progress=sys.stderr.isatty())  # a bar is for a terminal, not for a log collector
    # Gradio keeps the files it handles in the folder GRADIO_TEMP_DIR names (the only way to choose it);
    # a private one means it can serve nothing another process left in a shared /tmp/gradio, and it goes
    # when the server stops. SIGTERM becomes SystemExit so the folder is removed then too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with tempfile.TemporaryDirectory(prefix="assistant-ui-") as cache:
        os.environ["GRADIO_TEMP_DIR"] = cache
        app = create_app(assistant, settings)
        stop = threading.Event()
        if settings.server.watch_sources:  # new, edited and removed files are answered from within seconds
            threading.Thread(target=assistant.watch, args=(stop,), name="watch-sources", daemon=True).start()
        print(f"assistant: serving on http://{settings.server.host}:{settings.server.port}", flush=True)
        try:
            uvicorn.run(app, **uvicorn_options(settings))
        finally:
            stop.set()
