"""Hybrid retrieval: dense search in Chroma plus BM25 (bm25s), fused by reciprocal rank fusion."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import bm25s
import numpy as np
from langchain_chroma import Chroma
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from assistant.config import RetrievalSettings
from assistant.embeddings import SentenceEmbedder
from assistant.store import PassageStore
from assistant.text import terms


@dataclass(slots=True)
class Passage:
    """A retrieved passage with the evidence that ranked it."""

    id: str
    source: str
    title: str
    text: str
    start: int
    end: int
    source_hash: str = ""
    sentence_count: int = 0
    dense: float = 0.0
    lexical: float = 0.0
    fused: float = 0.0
    metadata: dict = field(default_factory=dict)

    def to_document(self) -> Document:
        """As a LangChain document (scores in the metadata)."""
        meta = {**self.metadata, "source": self.source, "title": self.title, "start": self.start, "end": self.end}
        meta.update(dense=self.dense, lexical=self.lexical, fused=self.fused)
        return Document(id=self.id, page_content=self.text, metadata=meta)


class Corpus:
    """The complete passages of the index, held for BM25 and term statistics.

    Built from the Chroma collection itself, so every replica sharing a Chroma server sees the same
    lexical index.
    """

    def __init__(self, store: PassageStore) -> None:
        states = {s.source: s for s in store.source_states().values() if s.complete}
        self.sources = states
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.metas: list[dict] = []
        for pid, text, meta in store.iter_passages():
            state = states.get(meta["source"])
            if state is None or state.hash != meta["source_hash"]:
                continue
            self.ids.append(pid)
            self.texts.append(text or "")
            self.metas.append(meta)
        self.row = {pid: i for i, pid in enumerate(self.ids)}
        tokens = [terms(text) for text in self.texts]
        self.bm25: bm25s.BM25 | None = None
        if self.ids:
            self.bm25 = bm25s.BM25()
            self.bm25.index(tokens, show_progress=False)

    def __len__(self) -> int:
        return len(self.ids)

    def knows(self, term: str) -> bool:
        """Whether any indexed passage uses ``term`` (a stemmed term)."""
        return self.bm25 is not None and term in self.bm25.vocab_dict

    def passage(self, pid: str) -> Passage:
        """The passage with this id."""
        i = self.row[pid]
        meta = self.metas[i]
        extra = json.loads(meta.get("extra") or "{}")
        return Passage(
            id=pid, source=meta["source"], title=meta.get("title", ""), text=self.texts[i],
            start=int(meta["start"]), end=int(meta["end"]), source_hash=meta["source_hash"],
            sentence_count=int(meta["sentences"]), metadata=extra,
        )  # fmt: skip

    def lexical_search(self, query_terms: list[str], k: int) -> list[tuple[str, float]]:
        """Top ``k`` passages by BM25 for already-tokenised query terms."""
        if self.bm25 is None or not query_terms:
            return []
        scores = self.bm25.get_scores(query_terms)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]


class HybridRetriever(BaseRetriever):
    """LangChain retriever fusing Chroma dense search with BM25 by reciprocal rank fusion."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    vectorstore: Chroma
    corpus: Corpus
    embedder: SentenceEmbedder
    settings: RetrievalSettings

    @classmethod
    def build(
        cls, store: PassageStore, embedder: SentenceEmbedder, settings: RetrievalSettings, corpus: Corpus | None = None
    ) -> HybridRetriever:
        """Wire the retriever to an existing store (the client is injected, never created here)."""
        vectorstore = Chroma(
            client=store.client, collection_name=store.name, embedding_function=embedder,
            create_collection_if_not_exists=False,
        )  # fmt: skip
        return cls(vectorstore=vectorstore, corpus=corpus or Corpus(store), embedder=embedder, settings=settings)

    def search(self, query: str, query_vector: np.ndarray | None = None, k: int | None = None) -> list[Passage]:
        """The top passages for ``query`` with their dense, lexical and fused scores."""
        if not len(self.corpus):
            return []
        k = k or self.settings.top_k
        n_candidates = max(self.settings.candidates, k)
        if query_vector is None:
            query_vector = self.embedder.encode_cached([query])[0]
        dense_hits = self.vectorstore.similarity_search_by_vector_with_relevance_scores(
            query_vector.tolist(), k=min(n_candidates * 2, len(self.corpus) + 8)
        )
        dense = [(doc.id, 1.0 - dist) for doc, dist in dense_hits if doc.id in self.corpus.row][:n_candidates]
        lexical = self.corpus.lexical_search(terms(query), n_candidates)
        fused: dict[str, float] = {}
        for weight, ranking in ((self.settings.dense_weight, dense), (self.settings.lexical_weight, lexical)):
            for rank, (pid, _) in enumerate(ranking):
                fused[pid] = fused.get(pid, 0.0) + weight / (self.settings.rrf_k + rank + 1)
        dense_score, lexical_score = dict(dense), dict(lexical)
        top = sorted(fused, key=lambda pid: (-fused[pid], pid))[:k]
        passages = []
        for pid in top:
            passage = self.corpus.passage(pid)
            passage.dense = dense_score.get(pid, 0.0)
            passage.lexical = lexical_score.get(pid, 0.0)
            passage.fused = fused[pid]
            passages.append(passage)
        return passages

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [p.to_document() for p in self.search(query)]
