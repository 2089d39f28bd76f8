"""Bring the index in line with the sources folder: add, update and remove sources by content hash.

Embedding is the expensive step, so each *sentence* is embedded once (identical sentences once per run)
and a passage's vector is the normalised mean of its sentences' vectors: the answerer needs sentence
vectors anyway, and the passage vector then costs nothing more. Three stages overlap: reading and hashing
files, parsing them (worker threads), and embedding and writing batches that span several files.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout
from tqdm import tqdm

from assistant.config import ChunkingSettings, Settings
from assistant.embeddings import SentenceEmbedder
from assistant.errors import IndexError_, SourceError
from assistant.ingest.chunking import Chunk, chunk_document
from assistant.ingest.loaders import LOADERS, SourceDocument, load_source
from assistant.store import PassageStore, SourceState


@dataclass(slots=True)
class IngestReport:
    """What an ingest run did; counts are of source files."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks: int = 0
    seconds: float = 0.0
    skipped: list[dict[str, str]] = field(default_factory=list)

    def summary(self) -> dict:
        """The machine-readable summary line of ``assistant ingest --json``."""
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        return data

    @property
    def changed(self) -> bool:
        """Whether the index was modified."""
        return bool(self.added or self.updated or self.removed)


def discover(sources_dir: Path) -> tuple[list[tuple[str, Path]], list[dict[str, str]]]:
    """List the source files under ``sources_dir`` as ``(source_id, path)``, and the files skipped.

    Hidden files are ignored. Symlinks that lead outside the folder and unsupported extensions are
    skipped with a reason.
    """
    if not sources_dir.is_dir():
        raise SourceError(f"sources folder not found: {sources_dir}")
    root = sources_dir.resolve()
    found: list[tuple[str, Path]] = []
    skipped: list[dict[str, str]] = []
    folders: dict[Path, Path] = {}  # each folder resolved once, not once per file (10k files: ~1 s at start-up)
    for path in sorted(sources_dir.rglob("*")):
        rel = path.relative_to(sources_dir)
        if any(part.startswith(".") for part in rel.parts) or path.is_dir():
            continue
        source_id = rel.as_posix()
        try:
            if path.is_symlink():
                resolved = path.resolve(strict=True)
            else:
                if path.parent not in folders:
                    folders[path.parent] = path.parent.resolve(strict=True)
                resolved = folders[path.parent] / path.name
        except (OSError, RuntimeError):
            skipped.append({"source": source_id, "reason": "broken symlink"})
            continue
        if not resolved.is_relative_to(root):
            skipped.append({"source": source_id, "reason": "symlink points outside the sources folder"})
            continue
        if path.suffix.lower() not in LOADERS:
            supported = " ".join(sorted(LOADERS))
            skipped.append({"source": source_id, "reason": f"unsupported file type; use {supported}"})
            continue
        found.append((source_id, path))
    return found, skipped


@contextmanager
def ingest_lock(settings: Settings, wait_s: float) -> Iterator[None]:
    """Hold the index lock, so two ingests never interleave their writes."""
    settings.paths.index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(settings.paths.index_dir / ".ingest.lock"))
    try:
        lock.acquire(timeout=wait_s)
    except Timeout:
        raise IndexError_("another ingest is running on this index; try again when it finishes") from None
    try:
        yield
    finally:
        lock.release()


#: Sentences gathered from several files before one call to the embedder (bigger batches run faster).
EMBED_BATCH_SENTENCES = 2048


@dataclass(slots=True)
class _Pending:
    source_id: str
    digest: str
    document: SourceDocument
    chunks: list[Chunk]
    previous: bool


def _write_batch(batch: list[_Pending], store: PassageStore, embedder: SentenceEmbedder) -> None:
    """Embed every distinct sentence of the batch once, then write each source in turn."""
    unique = list(dict.fromkeys(s.text for item in batch for c in item.chunks for s in c.sentences))
    vectors = embedder.encode(unique)
    row = {text: i for i, text in enumerate(unique)}
    for item in batch:
        passage_vectors = np.zeros((len(item.chunks), vectors.shape[1]), dtype=np.float32)
        sentence_vectors = []
        for ci, chunk in enumerate(item.chunks):
            own = vectors[[row[s.text] for s in chunk.sentences]]
            mean = own.mean(axis=0)
            passage_vectors[ci] = mean / (np.linalg.norm(mean) or 1.0)
            sentence_vectors.append(own)
        passages = [
            {"id": c.id, "text": c.text, "start": c.start, "end": c.end, "n": c.n, "location": c.location,
             "spans": [[s.start, s.end] for s in c.sentences]}
            for c in item.chunks
        ]  # fmt: skip
        store.replace_source(
            item.source_id, item.digest, item.document.title, item.document.metadata,
            passages, passage_vectors, sentence_vectors, previous=item.previous,
        )  # fmt: skip


@dataclass(slots=True)
class _Changed:
    """A source whose bytes differ from what is indexed (or that is new), read but not yet parsed."""

    source_id: str
    path: Path
    data: bytes
    digest: str
    state: SourceState | None


def _parse(item: _Changed, chunking: ChunkingSettings) -> tuple[SourceDocument, list[Chunk]] | SourceError:
    try:
        document = load_source(item.path, item.data)
        chunks = chunk_document(item.source_id, document, chunking)
        if not chunks:
            raise SourceError(f"{item.path.name}: no text to index")
    except SourceError as exc:
        return exc
    return document, chunks


def _parsed_in_order(
    items: Iterator[_Changed], chunking: ChunkingSettings, workers: int
) -> Iterator[tuple[_Changed, tuple[SourceDocument, list[Chunk]] | SourceError]]:
    """Parse sources on worker threads a few files ahead of the consumer, yielding in input order.

    Parsing (lxml, pypdf, the splitter) overlaps embedding, which runs in ONNX Runtime or PyTorch with the
    GIL released. The look-ahead is bounded, so memory stays flat however many files there are.
    """
    if workers <= 0:
        for item in items:
            yield item, _parse(item, chunking)
        return
    window: deque[tuple[_Changed, Future]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="parse") as pool:
        for item in items:
            window.append((item, pool.submit(_parse, item, chunking)))
            if len(window) > 4 * workers:
                done, future = window.popleft()
                yield done, future.result()
        while window:
            done, future = window.popleft()
            yield done, future.result()


def ingest(
    settings: Settings,
    store: PassageStore,
    embedder: SentenceEmbedder,
    *,
    progress: bool = False,
    lock_wait_s: float = 0.0,
) -> IngestReport:
    """Index new and changed sources, drop deleted ones, leave unchanged ones alone.

    A file that cannot be read is skipped with its reason; if an earlier version of it is indexed,
    that version is kept, so a bad edit never loses content.

    Args:
        settings: Paths and chunking.
        store: The Chroma store to update.
        embedder: The sentence embedder.
        progress: Show a progress bar on stderr.
        lock_wait_s: How long to wait for another ingest to finish.

    Returns:
        Counts of added, updated, removed and unchanged sources, and files skipped with reasons.

    """
    started = time.perf_counter()
    report = IngestReport()
    with ingest_lock(settings, lock_wait_s):
        files, report.skipped = discover(settings.paths.sources_dir)
        recorded = store.states_recorded()
        states = store.source_states()
        if not recorded:
            store.owe_records(states)
        seen = {source for source, _ in files} | {s["source"] for s in report.skipped}
        for source in sorted(set(states) - seen):
            store.delete_source(source)
            report.removed += 1
        bar = tqdm(files, desc="ingest", unit="file", disable=not progress, leave=False)
        changed = _changed_sources(bar, settings, store, states, report)
        batch: list[_Pending] = []
        batch_sentences = 0
        for item, parsed in _parsed_in_order(changed, settings.chunking, settings.chunking.parse_workers):
            if isinstance(parsed, SourceError):
                kept = " (previous version kept)" if item.state and item.state.complete else ""
                report.skipped.append({"source": item.source_id, "reason": parsed.message + kept})
                continue
            document, chunks = parsed
            batch.append(_Pending(item.source_id, item.digest, document, chunks, previous=item.state is not None))
            batch_sentences += sum(len(c.sentences) for c in chunks)
            report.chunks += len(chunks)
            if item.state:
                report.updated += 1
            else:
                report.added += 1
            if batch_sentences >= EMBED_BATCH_SENTENCES:
                _write_batch(batch, store, embedder)
                batch, batch_sentences = [], 0
        if batch:
            _write_batch(batch, store, embedder)
        if report.changed or not recorded:
            # Unrecorded states (a killed ingest, an index from before the records) were just scanned and
            # checked against every file: writing them and a finished generation spares the next start the scan.
            store.bump_generation()
    report.seconds = time.perf_counter() - started
    return report


def _changed_sources(
    files: Iterable[tuple[str, Path]],
    settings: Settings,
    store: PassageStore,
    states: dict[str, SourceState],
    report: IngestReport,
) -> Iterator[_Changed]:
    """Read and hash each file; count unchanged ones and skip unreadable, oversized and duplicate ones."""
    first_with_digest: dict[str, str] = {}
    limit = settings.chunking.max_file_mb * 2**20
    for source_id, path in files:
        try:
            if path.stat().st_size > limit:
                reason = f"larger than the {settings.chunking.max_file_mb:g} MB limit (chunking.max_file_mb)"
                report.skipped.append({"source": source_id, "reason": reason})
                continue
            data = path.read_bytes()
        except OSError as exc:
            report.skipped.append({"source": source_id, "reason": f"cannot read: {exc.strerror}"})
            continue
        digest = hashlib.sha256(data).hexdigest()[:16]
        if digest in first_with_digest:  # the same text twice would only crowd out other passages
            report.skipped.append({"source": source_id, "reason": f"duplicate of {first_with_digest[digest]}"})
            if source_id in states:
                store.delete_source(source_id)
                report.removed += 1
            continue
        first_with_digest[digest] = source_id
        state = states.get(source_id)
        if state and state.hash == digest and state.complete:
            report.unchanged += 1
            report.chunks += state.chunk_count
            continue
        yield _Changed(source_id, path, data, digest, state)
