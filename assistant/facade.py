"""``Assistant``: the one entry point the CLI, the HTTP API, the UI and the tests use."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import OrderedDict
from typing import Any

from assistant.answer.generative import GenerativeAnswerer
from assistant.answer.llm import make_chat_model
from assistant.answer.pipeline import AnswerPipeline
from assistant.answer.question import validate_history, validate_question
from assistant.answer.scorer import AnswerModels
from assistant.answer.types import Answer
from assistant.answer.verify import Verifier
from assistant.config import Settings
from assistant.embeddings import SentenceEmbedder
from assistant.ingest.pipeline import IngestReport, ingest
from assistant.retrieval import Corpus, HybridRetriever
from assistant.store import PassageStore, make_client


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
        store = PassageStore(make_client(settings), settings.collection_name)
        assistant = cls(settings, embedder, store)
        if refresh:
            assistant.ingest(progress=progress)
        return assistant

    def _make_pipeline(self, chat_model: Any | None, models: AnswerModels | None) -> AnswerPipeline:
        chat_model = chat_model if chat_model is not None else make_chat_model(self.settings.llm)
        generator = GenerativeAnswerer(chat_model, Verifier(self.embedder)) if chat_model is not None else None
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
