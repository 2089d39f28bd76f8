"""Open a cited document: ``GET /api/sources/{source}`` serves an indexed source's file, read-only.

Only sources the index holds are served, from inside the sources folder (see
:meth:`~assistant.facade.Assistant.source_file`); the route sits below ``/api/``, so it takes the same API keys
and rate limits as every other API route, or a short-lived link signed for that one document (``open_url``,
see :class:`~assistant.api.security.LinkSigner`), since a browser following a link sends no key. How each type
is served:

* PDF inline (the browser's viewer) and Word as a download: both are documents a browser does not run;
* every text format (``.txt``, ``.md``, ``.html``) as ``text/plain; charset=utf-8``, so a stored HTML page is
  shown as its source and never runs in this server's origin, and with a sandboxing
  ``Content-Security-Policy`` besides;
* always ``X-Content-Type-Options: nosniff`` and ``Cache-Control: no-store`` (the documents may be private).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from assistant.api.security import SIGNED_ROUTE, LinkSigner
from assistant.facade import Assistant

#: The one route a signed link opens (the access policy checks signatures against it).
SOURCES_PATH = SIGNED_ROUTE.rstrip("/")
#: ``(media type, disposition)`` by extension; anything else indexed is text.
_BINARY = {
    ".pdf": ("application/pdf", "inline"),
    ".docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "attachment"),
}
_TEXT = ("text/plain; charset=utf-8", "inline")
#: No script, no plugin, no request of its own; a sandboxed page with an opaque origin besides.
_SANDBOX = "default-src 'none'; sandbox"


def source_url(source: str, links: LinkSigner | None = None) -> str:
    """The path that serves ``source``'s file, relative to the server's base URL (each segment percent-encoded).

    Args:
        source: The source id.
        links: Signs the link (``?exp=...&sig=...``) so a browser opens it without an API key, until it
            expires; ``None`` (a server without keys) leaves it plain.

    """
    url = f"{SOURCES_PATH}/{quote(source, safe='/')}"
    return f"{url}?{links.query(source)}" if links is not None else url


def content_disposition(kind: str, filename: str) -> str:
    """A ``Content-Disposition`` value; a name that is not plain ASCII goes in RFC 6266's ``filename*``."""
    quoted = quote(filename)
    if quoted == filename:
        return f'{kind}; filename="{filename}"'
    return f"{kind}; filename*=utf-8''{quoted}"


def sources_router(assistant: Assistant, *, frame_policy: str = "frame-ancestors 'self'") -> APIRouter:
    """The route that opens indexed documents.

    Args:
        assistant: The facade, which decides what is indexed and reads the file.
        frame_policy: The server's ``frame-ancestors`` directive, kept in the stricter policy text files get.

    """
    router = APIRouter(prefix=SOURCES_PATH, tags=["api"])

    @router.get("/{source:path}")
    async def open_source(source: str) -> Response:
        """An indexed source's file as it is: PDF inline, Word as a download, text formats as plain text.

        404 for anything not indexed (a path outside the sources folder never is); each citation's
        ``open_url`` names this route.
        """
        data = await run_in_threadpool(assistant.source_file, source)
        media, kind = _BINARY.get(PurePosixPath(source).suffix.lower(), _TEXT)
        headers = {
            "Content-Disposition": content_disposition(kind, PurePosixPath(source).name),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        }
        if media != "application/pdf":  # a browser's PDF viewer does not run in a sandboxed document
            headers["Content-Security-Policy"] = f"{_SANDBOX}; {frame_policy}"
        return Response(data, media_type=media, headers=headers)

    return router
