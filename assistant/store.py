"""The Chroma vector store: passages and their sentences, one source replaced at a time.

Chroma is the single record of what is indexed: every passage carries its source's content hash and
chunk count, so a source is *complete* when all its passages with that hash are present. Readers use
complete sources only, which is what keeps a killed ingest from serving half a file.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from assistant.config import Settings
from assistant.errors import IndexError_

_PAGE = 5000


@dataclass(slots=True)
class SourceState:
    """What the index holds for one source."""

    source: str
    hash: str
    title: str
    chunk_count: int
    present: int

    @property
    def complete(self) -> bool:
        """All passages of this version are stored."""
        return self.present == self.chunk_count


def make_client(settings: Settings) -> Any:
    """A Chroma client: embedded in ``index_dir/chroma`` or, when a host is set, a Chroma server."""
    import chromadb
    from chromadb.config import Settings as ChromaConfig

    config = ChromaConfig(anonymized_telemetry=False)
    if settings.chroma.host:
        try:
            return chromadb.HttpClient(host=settings.chroma.host, port=settings.chroma.port, settings=config)
        except Exception as exc:  # the client pings on construction; any failure means unreachable
            raise IndexError_(
                f"cannot reach the Chroma server at {settings.chroma.host}:{settings.chroma.port} ({exc})"
            ) from None
    path = settings.paths.index_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=config)


class PassageStore:
    """Two Chroma collections named after the index fingerprint: passages and sentences."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        cosine = {"hnsw": {"space": "cosine"}}
        self.passages = client.get_or_create_collection(name, configuration=cosine, embedding_function=None)
        self.sentences = client.get_or_create_collection(
            f"{name}-sentences", configuration=cosine, embedding_function=None
        )
        # One record whose value changes after every ingest that changed something: replicas sharing a
        # Chroma server poll it to know when to rebuild their lexical index.
        self.meta = client.get_or_create_collection(f"{name}-meta", embedding_function=None)

    def generation(self) -> str:
        """An opaque marker that changes whenever the indexed content changes."""
        found = self.meta.get(ids=["generation"], include=["metadatas"])
        return str(found["metadatas"][0]["value"]) if found["ids"] else ""

    def bump_generation(self) -> None:
        """Announce that the content changed."""
        import uuid

        self.meta.upsert(ids=["generation"], embeddings=[[0.0]], metadatas=[{"value": uuid.uuid4().hex}])

    # --- reading -----------------------------------------------------------------------------------

    def count(self) -> int:
        """Number of stored passages (all versions)."""
        return self.passages.count()

    def iter_passages(self, include_documents: bool = True) -> Iterator[tuple[str, str | None, dict]]:
        """Yield ``(id, text, metadata)`` of every stored passage, a page at a time."""
        include = ["metadatas", "documents"] if include_documents else ["metadatas"]
        offset = 0
        while True:
            page = self.passages.get(include=include, limit=_PAGE, offset=offset)
            ids = page["ids"]
            if not ids:
                return
            docs = page.get("documents") or [None] * len(ids)
            yield from zip(ids, docs, page["metadatas"], strict=True)
            offset += len(ids)

    def source_states(self) -> dict[str, SourceState]:
        """Per source, the newest version stored and whether it is complete."""
        counts: dict[tuple[str, str], int] = defaultdict(int)
        info: dict[tuple[str, str], tuple[str, int]] = {}
        for _, _, meta in self.iter_passages(include_documents=False):
            key = (meta["source"], meta["source_hash"])
            counts[key] += 1
            info[key] = (meta.get("title", ""), int(meta["chunk_count"]))
        states: dict[str, SourceState] = {}
        for (source, digest), present in counts.items():
            title, chunk_count = info[(source, digest)]
            state = SourceState(source, digest, title, chunk_count, present)
            best = states.get(source)
            if best is None or (state.complete and not best.complete):
                states[source] = state
        return states

    def sentences_of(self, passages: dict[str, tuple[str, int]]) -> dict[str, list[tuple[str, int, int, np.ndarray]]]:
        """The sentences of passages given as ``{chunk_id: (source_hash, sentence_count)}``.

        Sentence ids follow from the passage id, version and count, so this is a primary-key lookup.

        Returns:
            ``{chunk_id: [(text, start, end, vector), ...]}`` in reading order, for that version only.
        """
        if not passages:
            return {}
        ids = [f"{pid}:{m}@{digest}" for pid, (digest, count) in passages.items() for m in range(count)]
        page = self.sentences.get(ids=ids, include=["documents", "metadatas", "embeddings"])
        out: dict[str, list[tuple[str, int, int, np.ndarray]]] = defaultdict(list)
        for text, meta, vector in zip(page["documents"], page["metadatas"], page["embeddings"], strict=True):
            if passages[meta["chunk_id"]][0] != meta["source_hash"]:
                continue  # a newer or older version of the source is being written
            out[meta["chunk_id"]].append((text, int(meta["start"]), int(meta["end"]), np.asarray(vector)))
        for rows in out.values():
            rows.sort(key=lambda row: row[1])
        return out

    # --- writing -----------------------------------------------------------------------------------

    def replace_source(
        self,
        source: str,
        digest: str,
        title: str,
        extra: dict[str, str],
        passages: list[dict],
        passage_vectors: np.ndarray,
        sentences: list[dict],
        sentence_vectors: np.ndarray,
    ) -> None:
        """Store a new version of one source, then remove what is left of its previous version.

        ``passages`` items have ``id, text, start, end, n``; ``sentences`` items have
        ``id, chunk_id, text, start, end``. Sentence ids carry the content hash, so a new version's
        sentences never overwrite the version readers may still use. Until the last passage is written the
        source counts as incomplete and readers ignore it.
        """
        common = {"source": source, "source_hash": digest}
        for i in range(0, len(sentences), _PAGE):
            batch = sentences[i : i + _PAGE]
            self.sentences.upsert(
                ids=[f"{s['id']}@{digest}" for s in batch],
                documents=[s["text"] for s in batch],
                embeddings=sentence_vectors[i : i + len(batch)],
                metadatas=[{**common, "chunk_id": s["chunk_id"], "start": s["start"], "end": s["end"]} for s in batch],
            )
        meta = {**common, "title": title, "chunk_count": len(passages), "extra": json.dumps(extra)}
        for i in range(0, len(passages), _PAGE):
            batch = passages[i : i + _PAGE]
            self.passages.upsert(
                ids=[p["id"] for p in batch],
                documents=[p["text"] for p in batch],
                embeddings=passage_vectors[i : i + len(batch)],
                metadatas=[
                    {**meta, "n": p["n"], "start": p["start"], "end": p["end"], "sentences": p["sentences"]}
                    for p in batch
                ],
            )
        stale = {"$and": [{"source": source}, {"source_hash": {"$ne": digest}}]}
        self.passages.delete(where=stale)
        self.sentences.delete(where=stale)

    def delete_source(self, source: str) -> None:
        """Remove every passage and sentence of one source."""
        self.passages.delete(where={"source": source})
        self.sentences.delete(where={"source": source})
