"""Hybrid retrieval: dense search in Chroma plus BM25 (bm25s), fused by reciprocal rank fusion."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import bm25s
import numpy as np
from langchain_chroma import Chroma
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from assistant.config import RetrievalSettings
from assistant.embeddings import SentenceEmbedder
from assistant.store import FINISHED_GENERATION, PassageStore, SourceState
from assistant.text import terms

log = logging.getLogger(__name__)


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


#: Bumped whenever the files of a saved lexical index change, so an old one is rebuilt, not misread.
LEXICAL_CACHE_VERSION = "1"


class Corpus:
    """The complete passages of the index, held for BM25 and term statistics.

    Built from the Chroma collection itself, so every replica sharing a Chroma server sees the same
    lexical index. Building means reading every passage and tokenising it (most of a restart at 100k
    passages), so the result is saved in ``store.lexical_dir`` under the collection name and the index
    generation, and a later ``Corpus`` over the same generation loads it instead (the BM25 arrays
    memory-mapped). A saved index that is missing, unreadable or inconsistent is rebuilt; one of
    another generation is never read.
    """

    def __init__(self, store: PassageStore) -> None:
        self.sources: dict[str, SourceState] = {}
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.metas: list[dict] = []
        self.bm25: bm25s.BM25 | None = None
        generation = store.generation()
        folder = self._folder(store, generation)
        # The generation says what an ingest finished; the stored count also catches passages removed
        # behind the store's back (by hand, or by a tool that does not announce its changes).
        key = {"collection": store.name, "generation": generation, "stored": store.count() if folder else 0}
        if folder is None or not self._load(folder, key):
            self._build(store)
            if folder is not None and store.generation() == generation:  # nothing changed while reading
                self._save(folder, key)
        self.row = {pid: i for i, pid in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    @staticmethod
    def _folder(store: PassageStore, generation: str) -> Path | None:
        # Only a finished generation names content that stays put; the pattern also keeps a value read
        # from a shared server from naming a path of its own.
        if store.lexical_dir is None or not FINISHED_GENERATION.fullmatch(generation):
            return None
        return store.lexical_dir / f"{store.name}-{generation}"

    def _build(self, store: PassageStore) -> None:
        states = {s.source: s for s in store.source_states().values() if s.complete}
        self.sources = states
        for pid, text, meta in store.iter_passages():
            state = states.get(meta["source"])
            if state is None or state.hash != meta["source_hash"]:
                continue
            self.ids.append(pid)
            self.texts.append(text or "")
            self.metas.append(meta)
        if self.ids:
            self.bm25 = bm25s.BM25()
            self.bm25.index([terms(text) for text in self.texts], show_progress=False)

    def _save(self, folder: Path, key: dict) -> None:
        """Write the lexical index to a temporary folder and rename it into place.

        A killed save leaves only a ``.tmp-`` folder, which no reader opens; two processes saving at once
        both end with one whole folder. Older generations of the collection are removed.
        """
        parent = folder.parent
        tmp = parent / f".tmp-{uuid.uuid4().hex}"
        try:
            tmp.mkdir(parents=True)
            passages = {
                "ids": self.ids, "texts": self.texts, "metas": self.metas,
                "sources": [[s.source, s.hash, s.title, s.chunk_count, s.present] for s in self.sources.values()],
            }  # fmt: skip
            (tmp / "passages.json").write_text(json.dumps(passages, ensure_ascii=False), encoding="utf-8")
            if self.bm25 is not None:
                self.bm25.save(tmp, show_progress=False)
            manifest = {
                "version": LEXICAL_CACHE_VERSION, **key, "passages": len(self.ids),
                "files": {p.name: p.stat().st_size for p in sorted(tmp.iterdir())},
            }  # fmt: skip
            (tmp / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
            if folder.exists():  # an unreadable one, found by _load: set it aside first
                stale = parent / f".tmp-{uuid.uuid4().hex}"
                os.replace(folder, stale)
                shutil.rmtree(stale, ignore_errors=True)
            os.replace(tmp, folder)
        except OSError as exc:  # a read-only index folder, a full disk, or another process got there first
            log.info("lexical index not saved to %s (%s)", folder, exc)
            shutil.rmtree(tmp, ignore_errors=True)
            return
        self._prune(parent, key["collection"], keep=folder.name)

    @staticmethod
    def _prune(parent: Path, collection: str, keep: str) -> None:
        # Earlier generations of this collection, and temporary folders of saves killed an hour ago or more.
        # A process that mapped the files of a removed folder keeps reading them (POSIX unlink semantics).
        old = time.time() - 3600
        for path in parent.iterdir():
            name = path.name
            try:
                earlier = name.startswith(f"{collection}-") and name != keep
                abandoned = name.startswith(".tmp-") and path.stat().st_mtime < old
            except OSError:  # removed by another process meanwhile
                continue
            if earlier or abandoned:
                shutil.rmtree(path, ignore_errors=True)

    def _load(self, folder: Path, key: dict) -> bool:
        """Read a saved lexical index; ``False`` (and a rebuild) when it is absent or does not check out."""
        try:
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            if manifest["version"] != LEXICAL_CACHE_VERSION or any(manifest[k] != v for k, v in key.items()):
                raise ValueError("saved from other content")
            for name, size in manifest["files"].items():
                if (folder / name).stat().st_size != size:
                    raise ValueError(f"{name} has the wrong size")
            passages = json.loads((folder / "passages.json").read_text(encoding="utf-8"))
            ids, texts, metas = passages["ids"], passages["texts"], passages["metas"]
            count = manifest["passages"]
            if not len(ids) == len(texts) == len(metas) == count:
                raise ValueError("passage lists of different lengths")
            bm25 = None
            if count:
                bm25 = bm25s.BM25.load(folder, mmap=True, show_progress=False)
                data, indices, indptr = (bm25.scores[k] for k in ("data", "indices", "indptr"))
                columns = max(bm25.vocab_dict.values(), default=0) + 1
                if bm25.scores["num_docs"] != count or not int(indptr[-1]) == len(indices) == len(data):
                    raise ValueError("BM25 arrays do not match the passages")
                if len(indptr) < columns or (len(indices) and int(indices.max()) >= count):
                    raise ValueError("BM25 arrays do not match the vocabulary")
        except FileNotFoundError:
            return False
        except Exception as exc:  # whatever a damaged file raises, the answer is to rebuild
            log.warning("saved lexical index at %s is unusable (%s); rebuilding it", folder, exc)
            return False
        self.ids, self.texts, self.metas, self.bm25 = ids, texts, metas, bm25
        self.sources = {row[0]: SourceState(*row) for row in passages["sources"]}
        return True

    def knows(self, term: str) -> bool:
        """Whether any indexed passage uses ``term`` (a stemmed term)."""
        return self.bm25 is not None and term in self.bm25.vocab_dict

    def passage(self, pid: str) -> Passage:
        """The passage with this id."""
        i = self.row[pid]
        meta = self.metas[i]
        # The passage's own location wins over a front-matter field of that name, which names no passage.
        extra = {**json.loads(meta.get("extra") or "{}"), "location": meta.get("location", "")}
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
