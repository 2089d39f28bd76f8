"""Documents managed from the app: names made safe, content checked by ingest's own rules, files written atomically.

An upload is judged exactly as ingest would judge the file (type, size, empty, binary, non-UTF-8, corrupt, no
text, duplicate) *before* anything is written, so a bad upload is refused with ingest's reason and the sources
folder, and with it the index, stays as it was. A good one is written to a hidden temporary file in the sources
folder (which ingest ignores) and renamed over its final name, so ingest and the folder watcher only ever see a
whole file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
import time
import unicodedata
from collections.abc import Mapping
from pathlib import Path

from assistant.config import Settings
from assistant.errors import InputError, SourceError
from assistant.ingest.chunking import chunk_document
from assistant.ingest.loaders import LOADERS, load_source
from assistant.store import SourceState

#: Longest accepted document name, in characters.
MAX_NAME_CHARS = 150
# Letters and digits of any script, space and a few harmless marks stay; anything else becomes "-".
_UNSAFE = re.compile(r"[^\w .,()+-]")


class DocumentNotFoundError(InputError):
    """No document of that name is in the sources folder."""

    status = 404


class DocumentTooLargeError(SourceError):
    """The upload is larger than ``chunking.max_file_mb``."""

    status = 413


def max_file_bytes(settings: Settings) -> int:
    """The largest document, in bytes: ``chunking.max_file_mb``, the limit ingest applies to files."""
    return int(settings.chunking.max_file_mb * 2**20)


def _reject_path(name: str) -> None:
    if "/" in name or "\\" in name:
        raise InputError(f"{name!r}: a document name is a file name, without folders ('/' or '\\')")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InputError("a document name must not hold control characters")
    if name.startswith("."):
        raise InputError(f"{name!r}: names starting with '.' are hidden files, which ingest ignores")


def document_name(filename: str) -> str:
    """The name an uploaded file is stored under in the sources folder.

    Folders, ``..``, hidden names and control characters are refused (a name that tries to leave the
    folder is an error, not something to repair); other unusual characters become ``-``.

    Raises:
        InputError: The name is empty, names a path, is hidden, too long or of an unsupported type.

    """
    name = unicodedata.normalize("NFC", filename or "").strip()
    if not name:
        raise InputError("the uploaded file has no name")
    _reject_path(name)
    name = re.sub(r"\s+", " ", _UNSAFE.sub("-", name)).strip(" .")
    if len(name) > MAX_NAME_CHARS:
        raise InputError(f"document names are limited to {MAX_NAME_CHARS} characters")
    suffix = Path(name).suffix.lower()
    if not Path(name).stem or suffix not in LOADERS:
        raise InputError(f"{name!r}: unsupported file type {suffix or '(none)'}; use {' '.join(sorted(LOADERS))}")
    return name


def document_id(name: str) -> str:
    """Check a document id given to delete (a path relative to the sources folder, as listed).

    Raises:
        InputError: The id is absolute, climbs out with ``..``, is hidden or holds control characters.

    """
    parts = name.split("/")
    if not name or name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
        raise InputError(f"{name!r} is not a document name; use a name from GET /api/documents")
    for part in parts:
        _reject_path(part)
    return name


def read_source_file(folder: Path, source: str, max_bytes: int) -> bytes:
    """The bytes of the file of an indexed source, for reading it as it is ("open document").

    The caller has checked that ``source`` is indexed; this checks the path anyway, as ingest does: a
    name that is absolute, climbs with ``..`` or is hidden, a link that leads out of the sources folder,
    and anything but a regular file are not found.

    Raises:
        DocumentNotFoundError: No regular file of that name inside the sources folder.
        SourceError: The file grew past ``max_bytes`` since it was indexed.

    """
    missing = DocumentNotFoundError(f"no indexed source named {source!r}; GET /api/sources lists them")
    try:
        document_id(source)
        resolved = (folder / source).resolve(strict=True)
    except (InputError, OSError, RuntimeError):
        raise missing from None
    if not resolved.is_relative_to(folder.resolve()):
        raise missing
    try:  # the resolved path holds no link; O_NOFOLLOW keeps one swapped in since from being followed
        handle = os.open(resolved, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        raise missing from None
    if not stat.S_ISREG(os.fstat(handle).st_mode):  # a folder, a device, a pipe
        os.close(handle)
        raise missing
    with os.fdopen(handle, "rb") as file:
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SourceError(f"{source}: larger than the {max_bytes / 2**20:g} MB limit (chunking.max_file_mb)")
    return data


def content_digest(data: bytes) -> str:
    """The content hash ingest stores for a source (so a duplicate upload can be recognised)."""
    return hashlib.sha256(data).hexdigest()[:16]


def check_document(name: str, data: bytes, settings: Settings, indexed: Mapping[str, SourceState]) -> int:
    """Judge an upload by ingest's rules before it touches the sources folder; return its passage count.

    Args:
        name: The document's name (from :func:`document_name`).
        data: Its bytes.
        settings: The size limit and chunking.
        indexed: The sources indexed now, to refuse a copy of another document's content (ingest would keep
            only one of the two, and might drop the other).

    Raises:
        SourceError: The file is too large, empty, binary, not UTF-8, corrupt, has no text or duplicates
            another document; the message is the reason ingest would give.

    """
    if len(data) > max_file_bytes(settings):
        raise DocumentTooLargeError(
            f"{name}: larger than the {settings.chunking.max_file_mb:g} MB limit (chunking.max_file_mb)"
        )
    digest = content_digest(data)
    twin = next((source for source, state in indexed.items() if state.hash == digest and source != name), None)
    if twin is not None:
        raise SourceError(f"{name}: duplicate of {twin}, which is already indexed")
    document = load_source(Path(name), data)
    chunks = chunk_document(name, document, settings.chunking)
    if not chunks:
        raise SourceError(f"{name}: no text to index")
    return len(chunks)


def write_document(folder: Path, name: str, data: bytes) -> bool:
    """Write ``data`` to ``folder/name`` atomically; return whether it replaced a file.

    The bytes go to a hidden temporary file in the same folder (ingest and the watcher skip hidden files),
    are flushed to disk, and the file is renamed over ``name``: readers see the old file or the new one.
    """
    target = folder / name
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise InputError(f"{name}: a link or folder of that name is in the sources folder; remove it first")
    replaced = target.exists()
    handle, temporary = tempfile.mkstemp(prefix=".upload-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return replaced


class IndexedTimes:
    """When each indexed version of a source was first seen indexed, kept in a small JSON file.

    The index itself keeps no times. Versions indexed while this file did not exist (or by another
    process) get the time this server first saw them.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._times: dict[str, str] | None = None

    def note(self, indexed: Mapping[str, SourceState]) -> dict[str, str]:
        """Record the versions in ``indexed`` not seen before; return each source's indexed time (ISO, UTC)."""
        if self._times is None:
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
                self._times = {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self._times = {}
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        current = {f"{source}@{state.hash}": self._times.get(f"{source}@{state.hash}", now) for source, state in
                   indexed.items()}  # fmt: skip
        if current != self._times:
            self._times = current
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                handle, temporary = tempfile.mkstemp(prefix=".indexed-", dir=self.path.parent)
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    json.dump(current, out)
                os.replace(temporary, self.path)
            except OSError:
                pass  # the times are a convenience; an unwritable data folder must not stop indexing
        return {key.rsplit("@", 1)[0]: value for key, value in current.items()}


def document_rows(
    folder: Path,
    files: list[tuple[str, Path]],
    reasons: Mapping[str, str],
    indexed: Mapping[str, SourceState],
    times: Mapping[str, str],
) -> list[dict]:
    """One row per document: the files in the sources folder, and indexed sources whose file is gone.

    Args:
        folder: The sources folder.
        files: The supported files found there (``discover``).
        reasons: Why a source was skipped, by source id (``discover`` and the last ingest).
        indexed: What the index holds now.
        times: When each indexed source's version was indexed.

    Returns:
        ``{name, title, type, size, passages, indexed_at, status, reason}`` sorted by name; ``status`` is
        ``indexed``, ``skipped`` (with ``reason``; a previously indexed version may still be served),
        ``pending`` (not indexed yet) or ``removing`` (the file is gone; the next ingest drops it).

    """
    rows = []
    for name in sorted({source for source, _ in files} | set(reasons) | set(indexed)):
        path, state, reason = folder / name, indexed.get(name), reasons.get(name)
        present = path.exists() or path.is_symlink()
        if not present and state is None:  # skipped by the last ingest, and gone since
            continue
        if not present:
            status, reason = "removing", "the file is gone; the next ingest drops it from the index"
        elif reason:
            status = "skipped"
        elif state is not None:
            status = "indexed"
        else:
            status, reason = "pending", "not indexed yet"
        rows.append({
            "name": name,
            "title": state.title if state is not None else Path(name).name,
            "type": Path(name).suffix.lower().lstrip("."),
            "size": path.lstat().st_size if present else None,
            "passages": state.chunk_count if state is not None else 0,
            "indexed_at": times.get(name) if state is not None else None,
            "status": status,
            "reason": reason,
        })  # fmt: skip
    return rows
