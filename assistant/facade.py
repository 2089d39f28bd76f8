"""``Assistant``: the one entry point the CLI, the HTTP API, the UI and the tests use."""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from assistant.answer.llm import make_chat_model
from assistant.answer.pipeline import AnswerPipeline
from assistant.answer.question import validate_history, validate_question
from assistant.answer.scorer import AnswerModels
from assistant.answer.types import Answer
from assistant.config import Settings
from assistant.embeddings import SentenceEmbedder
from assistant.errors import AssistantError
from assistant.ingest.documents import (
    DocumentNotFoundError,
    IndexedTimes,
    check_document,
    document_id,
    document_rows,
    max_file_bytes,
    read_source_file,
    write_document,
)
from assistant.ingest.pipeline import IngestReport, discover, ingest
from assistant.retrieval import Corpus, HybridRetriever
from assistant.store import PassageStore

log = logging.getLogger(__name__)


class Assistant:
    """Answers questions from the indexed sources with cited passages.

    Build it with :meth:`load` (settings from the environment, index refreshed) or pass the heavy parts
    in yourself (tests inject a fake embedder and a temporary Chroma client).
    """

    def __init__(
        self, settings: Settings, embedder: SentenceEmbedder, store: PassageStore, chat_model: Any | None = None,
        models: AnswerModels | None = None,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self._lock = threading.RLock()
        self._rebuild()
        self.pipeline = self._make_pipeline(chat_model, models)

    @classmethod
    def load(cls, settings: Settings | None = None, *, refresh: bool = True, progress: bool = False) -> Assistant:
        """Load the embedder and the index; build or refresh the index from the sources when stale.

        Args:
            settings: Settings; read from ``ASSISTANT_*`` variables and ``.env`` when omitted.
            refresh: Run an incremental ingest first (a no-op when nothing changed).
            progress: Show ingest progress on stderr.

        """
        settings = settings or Settings()
        embedder = SentenceEmbedder.from_settings(settings.embedding, settings.paths.cache_dir / "onnx")
        store = PassageStore.open(settings)
        assistant = cls(settings, embedder, store)
        if refresh:
            assistant.ingest(progress=progress)
        return assistant

    def _make_pipeline(self, chat_model: Any | None, models: AnswerModels | None) -> AnswerPipeline:
        chat_model = chat_model if chat_model is not None else make_chat_model(self.settings.llm)
        generator = None
        if chat_model is not None:  # imported here: LangChain's parsers and tracers cost a second at start-up
            from assistant.answer.generative import GenerativeAnswerer
            from assistant.answer.verify import Verifier

            generator = GenerativeAnswerer(chat_model, Verifier(self.embedder))
        return AnswerPipeline(
            self.embedder, self.store, models or AnswerModels.load(self.settings.answer.model_path), generator,
            backend=self.settings.llm.spec,
        )  # fmt: skip

    # --- index -------------------------------------------------------------------------------------

    def _rebuild(self) -> None:
        self._answers: OrderedDict[str, Answer] = OrderedDict()
        self._generation = self.store.generation()
        self._checked_at = time.monotonic()
        corpus = Corpus(self.store)
        self.retriever = HybridRetriever.build(self.store, self.embedder, self.settings.retrieval, corpus=corpus)
        self.corpus = corpus

    def refresh_if_changed(self) -> bool:
        """Rebuild the search structures if another process changed the index.

        Checked at most every ``retrieval.refresh_interval_s`` seconds; this is how replicas sharing a
        Chroma server stay current.
        """
        if time.monotonic() - self._checked_at < self.settings.retrieval.refresh_interval_s:
            return False
        self._checked_at = time.monotonic()
        if self.store.generation() == self._generation:
            return False
        with self._lock:
            self._rebuild()
        return True

    def ingest(self, *, progress: bool = False, lock_wait_s: float = 0.0) -> IngestReport:
        """Bring the index in line with the sources folder and reload the search structures."""
        report = ingest(self.settings, self.store, self.embedder, progress=progress, lock_wait_s=lock_wait_s)
        with self._lock:
            if report.changed or not len(self.corpus):
                self._rebuild()
        return report

    def sources(self) -> list[dict]:
        """The indexed sources: id, title, number of passages, extra metadata."""
        rows = []
        for source, state in sorted(self.corpus.sources.items()):
            rows.append({"source": source, "title": state.title, "chunks": state.chunk_count})
        return rows

    def health(self) -> dict:
        """Status for monitoring: counts and backend."""
        return {
            "status": "ok" if len(self.corpus) else "empty",
            "sources": len(self.corpus.sources),
            "chunks": len(self.corpus),
            "backend": self.settings.llm.spec,
            "embedding_model": self.settings.embedding.model,
            "collection": self.store.name,
        }

    # --- documents: the app's Documents tab, /api/documents and the sources-folder watcher --------------

    #: When the last :meth:`sync` ran and what it did; None before the first.
    last_sync: tuple[float, IngestReport] | None = None
    #: Whether :meth:`watch` is following the sources folder.
    watching: bool = False

    def sync(self, *, lock_wait_s: float = 60.0) -> IngestReport:
        """Index what changed in the sources folder now, and keep the report for :meth:`documents` and health.

        Calls in one process run one at a time, and each returns only once the search structures are
        rebuilt, so a caller that wrote a file and then syncs is answered from it, even when the watcher's
        sync indexed the file first. An index changed by another process (``assistant ingest``) is
        picked up too.
        """
        with self.__dict__.setdefault("_syncing", threading.Lock()):
            report = self.ingest(lock_wait_s=lock_wait_s)
            if self.store.generation() != self._generation:
                with self._lock:
                    self._rebuild()
            self.last_sync = (time.time(), report)
            self._indexed_times().note(self.corpus.sources)
        return report

    def _indexed_times(self) -> IndexedTimes:
        return self.__dict__.setdefault("_times", IndexedTimes(self.settings.paths.data_dir / "indexed.json"))

    def documents(self) -> list[dict]:
        """Every document in the sources folder: title, type, size, passages, indexed time and status.

        Status is ``indexed``, ``skipped`` with ingest's reason, ``pending`` or ``removing`` (see
        :func:`assistant.ingest.documents.document_rows`).
        """
        folder = self.settings.paths.sources_dir
        files, skipped = discover(folder)
        reasons = {s["source"]: s["reason"] for s in (self.last_sync[1].skipped if self.last_sync else [])}
        reasons.update({s["source"]: s["reason"] for s in skipped})
        with self._lock:
            indexed = dict(self.corpus.sources)
        return document_rows(folder, files, reasons, indexed, self._indexed_times().note(indexed))

    def source_file(self, source: str) -> bytes:
        """The bytes of an indexed source's file, to be read as it is (the HTTP API's "open document").

        Only sources the index holds now are served, and only from inside the sources folder; the bytes are
        the file's current content (a file edited since is served as edited, and re-indexed by the watcher).

        Raises:
            DocumentNotFoundError: ``source`` is not indexed, or its file is gone or leads out of the folder.
            SourceError: The file grew past ``chunking.max_file_mb``.

        """
        self.refresh_if_changed()
        with self._lock:
            indexed = source in self.corpus.sources
        if not indexed:
            raise DocumentNotFoundError(f"no indexed source named {source!r}; GET /api/sources lists them")
        return read_source_file(self.settings.paths.sources_dir, source, max_file_bytes(self.settings))

    def add_document(self, name: str, data: bytes) -> tuple[dict, bool]:
        """Check a document by ingest's rules, write it into the sources folder atomically and index it.

        Args:
            name: A safe file name (:func:`assistant.ingest.documents.document_name`).
            data: The file's bytes.

        Returns:
            The document's row as :meth:`documents` lists it, and whether it replaced a file of that name.

        Raises:
            SourceError: The file breaks an ingest rule (nothing is written; the reason says which).
            InputError: A folder or link of that name is in the way.

        """
        with self._lock:
            indexed = dict(self.corpus.sources)
        check_document(name, data, self.settings, indexed)
        replaced = write_document(self.settings.paths.sources_dir, name, data)
        self.sync()
        return next(row for row in self.documents() if row["name"] == name), replaced

    def remove_document(self, name: str) -> IngestReport:
        """Delete a listed document's file from the sources folder and drop it from the index.

        Raises:
            InputError: ``name`` is not a plain relative name (absolute, ``..``, hidden).
            DocumentNotFoundError: No document of that name is listed.

        """
        document_id(name)
        files, skipped = discover(self.settings.paths.sources_dir)
        if name not in {source for source, _ in files} | {s["source"] for s in skipped}:
            raise DocumentNotFoundError(f"no document named {name!r}; GET /api/documents lists them")
        (self.settings.paths.sources_dir / name).unlink(missing_ok=True)  # a link goes, never its target
        return self.sync()

    def watch(self, stop: threading.Event) -> None:
        """Follow the sources folder until ``stop`` is set; each burst of changes is indexed by one :meth:`sync`.

        Changes are gathered for ``server.watch_debounce_ms`` (``watchfiles``), hidden files (an upload's
        temporary file) are ignored, and a sync that fails is logged and retried at the next change.
        """
        from watchfiles import watch

        folder = self.settings.paths.sources_dir.resolve()

        def visible(_change: object, path: str) -> bool:
            parts = Path(path).relative_to(folder).parts if Path(path).is_relative_to(folder) else ()
            return not any(part.startswith(".") for part in parts)

        self.watching = True
        try:
            self._sync_logged()
            debounce = self.settings.server.watch_debounce_ms
            for _ in watch(folder, watch_filter=visible, debounce=debounce, step=100, stop_event=stop,
                           raise_interrupt=False):  # fmt: skip
                self._sync_logged()
        finally:
            self.watching = False

    def _sync_logged(self) -> None:
        try:
            report = self.sync()
        except AssistantError as exc:
            log.warning("the sources folder changed but could not be indexed: %s", exc.message)
        except Exception:  # the watcher must outlive one bad sync
            log.exception("the sources folder changed but could not be indexed")
        else:
            if report.changed:
                log.info("sources: %d added, %d updated, %d removed", report.added, report.updated, report.removed)

    def ingest_status(self) -> dict:
        """When the index last followed the sources folder, what changed then, and whether it is watched."""
        status: dict[str, Any] = {"watching": self.watching, "last_ingest": None}
        if self.last_sync is not None:
            at, report = self.last_sync
            status.update(
                last_ingest=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
                seconds=round(report.seconds, 3),
                added=report.added, updated=report.updated, removed=report.removed, unchanged=report.unchanged,
                skipped=len(report.skipped),
            )  # fmt: skip
        return status

    # --- answering ---------------------------------------------------------------------------------

    def ask(self, question: str, history: list[dict] | None = None) -> Answer:
        """Answer ``question`` from the sources, citing the passages used.

        Args:
            question: The question, in plain language.
            history: Earlier turns, ``[{"role": "user"|"assistant", "content": str}, ...]``, used to
                understand follow-ups such as "And what does it cost?".

        Returns:
            The answer; ``refused`` is true when the sources do not contain it.

        Raises:
            InputError: The question is empty or too long, or the history is malformed.
            BackendError: A generative backend failed.

        """
        started = time.perf_counter()
        text = validate_question(question, self.settings.answer.max_question_chars)
        turns = validate_history(history, self.settings.answer.max_history_turns)
        self.refresh_if_changed()
        key = json.dumps([text, turns], ensure_ascii=False)
        with self._lock:
            cached = self._answers.get(key)
            if cached is not None:
                self._answers.move_to_end(key)
            retriever, corpus = self.retriever, self.corpus
        if cached is not None:  # a copy: callers may change their Answer, the cache must not change
            answer = copy.deepcopy(cached)
            answer.timings_ms = {"cache": (time.perf_counter() - started) * 1000}
        else:
            answer = self.pipeline.answer(text, turns, retriever, corpus.knows)
            with self._lock:
                self._answers[key] = copy.deepcopy(answer)
                while len(self._answers) > self.settings.answer.cache_size:
                    self._answers.popitem(last=False)
        answer.timings_ms["total"] = (time.perf_counter() - started) * 1000
        return answer
