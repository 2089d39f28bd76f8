"""Document management over HTTP: list, upload, replace and delete the files of the sources folder (admin only).

Every route here is below ``/api/documents``, which :class:`~assistant.api.security.AccessPolicy` reserves for
admin keys in the ASGI layer, before a byte of the body is read; each route also asks the policy itself
(:func:`admin_only`), so the router stays admin-only wherever it is mounted. Uploads may be larger than other
requests: :class:`BodyLimits` gives ``POST /api/documents`` its own cap (``chunking.max_file_mb`` plus room for
the multipart framing), counted on the bytes read like the usual one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from assistant.api.middleware import RequestGuard
from assistant.api.security import AccessError, AccessPolicy
from assistant.config import Settings
from assistant.facade import Assistant
from assistant.ingest.documents import document_name, max_file_bytes
from assistant.ingest.loaders import LOADERS

UPLOAD_PATH = "/api/documents"
#: Room for the multipart boundary and part headers around an uploaded file.
MULTIPART_ROOM = 64 * 1024


def upload_limit(settings: Settings) -> int:
    """The body cap of ``POST /api/documents``: the largest document plus the multipart framing."""
    return max_file_bytes(settings) + MULTIPART_ROOM


class BodyLimits:
    """The request guard, with the upload cap on ``POST /api/documents`` and the usual cap everywhere else.

    Keyword arguments other than ``upload_bytes`` are :class:`~assistant.api.middleware.RequestGuard`'s.
    """

    def __init__(self, app, *, upload_bytes: int, **guard: object) -> None:
        self.default = RequestGuard(app, **guard)
        self.upload = RequestGuard(app, **{**guard, "max_body_bytes": upload_bytes})

    async def __call__(self, scope, receive, send) -> None:
        """Serve one ASGI connection scope through the guard for its route."""
        uploading = scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == UPLOAD_PATH
        await (self.upload if uploading else self.default)(scope, receive, send)


def admin_only(policy: AccessPolicy) -> Callable[[Request], None]:
    """A route dependency: the request must carry an admin key (403 when none are configured)."""

    def check(request: Request) -> None:
        try:
            policy.admin_bucket(request.headers, request.client.host if request.client else "unknown")
        except AccessError as exc:
            raise HTTPException(exc.status, exc.message, exc.headers) from None

    return check


def documents_router(assistant: Assistant, policy: AccessPolicy) -> APIRouter:
    """The ``/api/documents`` routes over the facade."""
    router = APIRouter(prefix=UPLOAD_PATH, tags=["documents"], dependencies=[Depends(admin_only(policy))])
    settings = assistant.settings

    @router.get("")
    def list_documents() -> dict:
        """Every document with title, type, size, passages, indexed time and status (admin keys only)."""
        return {
            "documents": assistant.documents(),
            "max_file_mb": settings.chunking.max_file_mb,
            "types": sorted(LOADERS),
        }

    @router.post("", status_code=201)
    async def upload_document(
        file: Annotated[UploadFile, File(description="The document, in the multipart field 'file'.")],
    ) -> JSONResponse:
        """Add or replace a document and index it; 201 when new, 200 when it replaced one (admin keys only).

        The file is judged by ingest's rules first (type, size, empty, binary, not UTF-8, corrupt, no text,
        a copy of another document): a bad one gets a 4xx with the reason and nothing is written.
        """
        name = document_name(file.filename or "")
        data = await file.read(max_file_bytes(settings) + 1)
        row, replaced = await run_in_threadpool(assistant.add_document, name, data)
        return JSONResponse({"document": row, "replaced": replaced}, status_code=200 if replaced else 201)

    @router.delete("/{name:path}")
    async def delete_document(name: str) -> dict:
        """Delete a listed document and drop it from the index (admin keys only)."""
        report = await run_in_threadpool(assistant.remove_document, name)
        return {"deleted": name, "ingest": report.summary()}

    return router
