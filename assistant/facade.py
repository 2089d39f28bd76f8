"""``Assistant``: the one entry point the CLI, the HTTP API, the UI and the tests use."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from assistant.answer.extractive import ExtractiveAnswerer, SentenceRef
from assistant.answer.generative import GenerativeAnswerer
from assistant.answer.llm import make_chat_model
from assistant.answer.question import Question, analyse, validate_history, validate_question
from assistant.answer.types import Answer, Citation
from assistant.answer.verify import Verifier
from assistant.config import Settings
from assistant.embeddings import SentenceEmbedder
from assistant.ingest.pipeline import IngestReport, ingest
from assistant.prompts import refusal_text
from assistant.retrieval import Corpus, HybridRetriever, Passage
from assistant.store import PassageStore, make_client
from assistant.text import terms


@dataclass(slots=True)
class _Evidence:
    passages: list[Passage]
    sentences: list[list[SentenceRef]]


class Assistant:
    """Answers questions from the indexed sources with cited passages.

    Build it with :meth:`load` (settings from the environment, index refreshed) or pass the heavy parts
    in yourself (tests inject a fake embedder and a temporary Chroma client).
    """

    def __init__(
        self, settings: Settings, embedder: SentenceEmbedder, store: PassageStore, chat_model: Any | None = None
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self._lock = threading.RLock()
        self._rebuild()
        self.generator = self._make_generator(chat_model)

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

    def _make_generator(self, chat_model: Any | None) -> GenerativeAnswerer | None:
        chat_model = chat_model if chat_model is not None else make_chat_model(self.settings.llm)
        if chat_model is None:
            return None

        def retrieve(question: str) -> list[Passage]:
            with self._lock:
                retriever = self.retriever
            return retriever.search(question)

        return GenerativeAnswerer(chat_model, Verifier(self.embedder), retrieve)

    # --- index -------------------------------------------------------------------------------------

    def _rebuild(self) -> None:
        self._answers: OrderedDict[str, Answer] = OrderedDict()
        self._generation = self.store.generation()
        self._checked_at = time.monotonic()
        corpus = Corpus(self.store)
        self.retriever = HybridRetriever.build(self.store, self.embedder, self.settings.retrieval, corpus=corpus)
        self.answerer = ExtractiveAnswerer(self.settings.answer)
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

    def _evidence(self, retriever: HybridRetriever, question: Question, q_vec: np.ndarray) -> _Evidence:
        passages = retriever.search(question.search_text, query_vector=q_vec)
        by_chunk = self.store.sentences_of({p.id: p.source_hash for p in passages})
        sentences = []
        for i, passage in enumerate(passages):
            refs = []
            for start, end, vec in by_chunk.get(passage.id, []):
                text = passage.text[start - passage.start : end - passage.start]
                refs.append(SentenceRef(i, text, start, end, vec, frozenset(terms(text))))
            sentences.append(refs)
        return _Evidence(passages, sentences)

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
        if cached is not None:  # a copy: callers may change their Answer, the cache must not change
            answer = copy.deepcopy(cached)
            answer.timings_ms = {"cache": (time.perf_counter() - started) * 1000}
        else:
            generative = self.generator is not None
            answer = self._ask_generative(text, turns) if generative else self._ask_extractive(text, turns)
            with self._lock:
                self._answers[key] = copy.deepcopy(answer)
                while len(self._answers) > self.settings.answer.cache_size:
                    self._answers.popitem(last=False)
        answer.timings_ms["total"] = (time.perf_counter() - started) * 1000
        return answer

    def _ask_extractive(self, text: str, turns: list[dict[str, str]]) -> Answer:
        timings: dict[str, float] = {}
        parsed = analyse(text, turns)
        with self._lock:
            retriever, answerer = self.retriever, self.answerer
        chosen: list[tuple[Passage, SentenceRef]] = []
        retrieved: list[str] = []
        confidence = 1.0
        notes: list[str] = []
        for part in parsed.parts:
            t0 = time.perf_counter()
            q_vec = self.embedder.encode_cached([part.search_text])[0]
            timings["embed"] = timings.get("embed", 0.0) + (time.perf_counter() - t0) * 1000
            t0 = time.perf_counter()
            evidence = self._evidence(retriever, part, q_vec)
            timings["retrieve"] = timings.get("retrieve", 0.0) + (time.perf_counter() - t0) * 1000
            t0 = time.perf_counter()
            selection = answerer.select(part, evidence.sentences, q_vec)
            timings["answer"] = timings.get("answer", 0.0) + (time.perf_counter() - t0) * 1000
            retrieved.extend(p.id for p in evidence.passages if p.id not in retrieved)
            confidence = min(confidence, selection.confidence)
            if not selection.sentences and len(parsed.parts) > 1:
                notes.append(f"not in the sources: {part.text}")
            for sentence in selection.sentences:
                if all(sentence.text != s.text for _, s in chosen):
                    chosen.append((evidence.passages[sentence.passage], sentence))
        if not chosen:
            answer = Answer(refusal_text(), refused=True, confidence=confidence, retrieved=retrieved, notes=notes)
        else:
            citations = _Citations()
            parts = [f"{s.text} {citations.cite(p, [(s.start, s.end)])}" for p, s in chosen]
            answer = Answer(" ".join(parts), refused=False, citations=citations.all(), confidence=confidence,
                            retrieved=retrieved, notes=notes)  # fmt: skip
        answer.timings_ms = timings
        return answer

    def _ask_generative(self, text: str, turns: list[dict[str, str]]) -> Answer:
        t0 = time.perf_counter()
        draft = self.generator.draft(text, turns)
        generate_ms = (time.perf_counter() - t0) * 1000
        spec = self.settings.llm.spec
        verification = draft.verification
        extractive = self._ask_extractive(text, turns)
        floor = EVIDENCE_FLOOR * self.settings.answer.min_confidence
        if extractive.refused and extractive.confidence < floor:
            # Grounded is not the same as relevant: a model can cite true sentences that do not answer.
            # When the sources hold too little evidence for the question at all, refuse.
            extractive.backend = spec
            extractive.notes = ["the sources hold too little evidence for this question", *extractive.notes]
            answer = extractive
        elif verification is None or not verification.sentences:
            why = "the model found no answer" if draft.refused_by_model else "verification removed every sentence"
            answer = extractive
            answer.backend = f"extractive (fallback: {why} with {spec})"
            answer.notes = [*(verification.notes if verification else []), *answer.notes]
        else:
            citations = _Citations()
            parts = []
            for sentence in verification.sentences:
                marks = "".join(
                    citations.cite(draft.passages[i], sentence.support if i == sentence.passages[0] else [])
                    for i in sentence.passages
                )
                parts.append(f"{sentence.text} {marks}")
            kept = len(verification.sentences)
            answer = Answer(
                " ".join(parts), refused=False, citations=citations.all(), backend=spec,
                confidence=kept / (kept + sum(n.startswith("removed") for n in verification.notes)),
                retrieved=[p.id for p in draft.passages], notes=verification.notes,
            )  # fmt: skip
        answer.timings_ms["generate"] = generate_ms
        return answer


#: A generated answer needs at least this share of the extractive confidence threshold as evidence.
EVIDENCE_FLOOR = 0.8


class _Citations:
    """Numbers passages in order of first use and collects the sentences each one supports."""

    def __init__(self) -> None:
        self._by_id: dict[str, Citation] = {}

    def cite(self, passage: Passage, highlights: list[tuple[int, int]]) -> str:
        citation = self._by_id.get(passage.id)
        if citation is None:
            citation = Citation(
                n=len(self._by_id) + 1, source=passage.source, title=passage.title, text=passage.text,
                start=passage.start, end=passage.end, chunk_id=passage.id,
            )  # fmt: skip
            self._by_id[passage.id] = citation
        for span in highlights:
            if span not in citation.highlights:
                citation.highlights.append(span)
        return f"[{citation.n}]"

    def all(self) -> list[Citation]:
        return list(self._by_id.values())
