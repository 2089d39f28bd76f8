"""The Chroma vector store: passages and their sentences, one source replaced at a time.

Chroma is the single record of what is indexed: every passage carries its source's content hash and
chunk count, so a source is *complete* when all its passages with that hash are present. Readers use
complete sources only, which is what keeps a killed ingest from serving half a file.

Finding each source's complete version that way reads every passage's metadata (8.7 s at 95k passages,
on every start-up ingest). So a finished change also leaves one small record per source in the meta
collection, and a marker naming the generation those records describe: while the marker matches a
finished generation, :meth:`PassageStore.source_states` reads the records; after a killed ingest (the
generation still says ``changing-``) or on an index written before the records existed, it scans the
passages, and the next ingest writes the records again.

Sentence vectors are only ever looked up by passage, never searched, so they are not Chroma records of
their own (that built an unused HNSW graph: 3.7x slower writes, 1.8x the disk). Each passage has one
companion record holding its sentences' character spans and their vectors packed as int8 with a
per-sentence scale (cosine to the float32 vector > 0.9999).
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.config import Settings
from assistant.errors import IndexError_

_PAGE = 5000
#: What a finished change leaves as the generation (a change in progress, or a killed one, says ``changing-…``).
FINISHED_GENERATION = re.compile(r"[0-9a-f]{32}")
_SOURCE_RECORD = "source:"  # id prefix of the per-source records in the meta collection


def pack_vectors(vectors: np.ndarray) -> str:
    """Unit vectors ``(n, dim)`` as one ASCII string: float32 scales, then int8 components."""
    vectors = np.asarray(vectors, dtype=np.float32)
    scales = np.abs(vectors).max(axis=1) / 127.0
    scales[scales == 0] = 1.0
    quantized = np.round(vectors / scales[:, None]).astype(np.int8)
    return base64.b64encode(scales.astype("<f4").tobytes() + quantized.tobytes()).decode("ascii")


def unpack_vectors(packed: str, count: int) -> np.ndarray:
    """The ``(count, dim)`` float32 unit vectors stored by :func:`pack_vectors`."""
    raw = base64.b64decode(packed)
    scales = np.frombuffer(raw[: 4 * count], dtype="<f4")
    quantized = np.frombuffer(raw[4 * count :], dtype=np.int8).reshape(count, -1)
    vectors = quantized.astype(np.float32) * scales[:, None]
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


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


def lexical_dir_of(client: Any) -> Path | None:
    """Where readers keep their saved lexical index for an embedded Chroma: ``<index_dir>/lexical``.

    ``None`` for an in-memory client or a Chroma server, whose readers have no index folder of their own.
    """
    try:
        config = client.get_settings()
    except Exception:  # a stand-in client in a test
        return None
    if not getattr(config, "is_persistent", False) or not getattr(config, "persist_directory", None):
        return None
    return Path(config.persist_directory).parent / "lexical"


class PassageStore:
    """Chroma collections named after the index fingerprint: passages, their sentences, and a marker.

    Args:
        client: The Chroma client (embedded or server).
        name: The passages collection's name (:attr:`Settings.collection_name`).
        lexical_dir: Where readers may save the lexical index they build from this store, keyed by
            generation; by default beside an embedded index and nowhere for a Chroma server
            (:meth:`open` puts a server's under ``paths.cache_dir``).

    """

    def __init__(self, client: Any, name: str, *, lexical_dir: Path | None = None) -> None:
        self.client = client
        self.name = name
        self.lexical_dir = lexical_dir if lexical_dir is not None else lexical_dir_of(client)
        self._changing = False
        cosine = {"hnsw": {"space": "cosine"}}
        self.passages = client.get_or_create_collection(name, configuration=cosine, embedding_function=None)
        # One record per passage; its one-number embedding is a placeholder Chroma requires.
        self.sentences = client.get_or_create_collection(f"{name}-sentences", embedding_function=None)
        # One record whose value changes after every ingest that changed something: replicas sharing a
        # Chroma server poll it to know when to rebuild their lexical index.
        self.meta = client.get_or_create_collection(f"{name}-meta", embedding_function=None)
        # Per-source records owed to the meta collection, written when the change is finished.
        self._owed: dict[str, SourceState] = {}
        self._other_versions: list[tuple[str, str]] = []  # (source, hash) the last scan did not choose

    @classmethod
    def open(cls, settings: Settings) -> PassageStore:
        """The store for these settings; a Chroma server's readers save their lexical index in ``paths.cache_dir``."""
        client = make_client(settings)
        lexical_dir = settings.paths.cache_dir / "lexical" if settings.chroma.host else None
        return cls(client, settings.collection_name, lexical_dir=lexical_dir)

    def generation(self) -> str:
        """An opaque marker that changes whenever the indexed content changes.

        A finished change leaves 32 hex digits; while a change is being written (or after one was
        killed) the marker starts with ``changing-``, which tells readers not to save what they read.
        """
        found = self.meta.get(ids=["generation"], include=["metadatas"])
        return str(found["metadatas"][0]["value"]) if found["ids"] else ""

    def bump_generation(self) -> None:
        """Announce that the content changed, or was checked whole.

        Writes the per-source records owed, then a new finished generation and the marker saying the
        records describe it.
        """
        owed = list(self._owed.values())
        for i in range(0, len(owed), _PAGE):
            batch = owed[i : i + _PAGE]
            self.meta.upsert(
                ids=[_SOURCE_RECORD + s.source for s in batch],
                embeddings=[[0.0]] * len(batch),
                metadatas=[
                    {"kind": "source", "source": s.source, "source_hash": s.hash, "title": s.title,
                     "chunk_count": s.chunk_count}
                    for s in batch
                ],
            )  # fmt: skip
        self._owed.clear()
        value = uuid.uuid4().hex
        self._set_generation(value)
        self.meta.upsert(ids=["states"], embeddings=[[0.0]], metadatas=[{"value": value}])
        self._changing = False

    def states_recorded(self) -> bool:
        """The per-source records describe the current, finished generation (no scan needed)."""
        found = self.meta.get(ids=["generation", "states"], include=["metadatas"])
        values = {i: m["value"] for i, m in zip(found["ids"], found["metadatas"], strict=True)}
        generation = str(values.get("generation", ""))
        return bool(FINISHED_GENERATION.fullmatch(generation)) and values.get("states") == generation

    def _announce_change(self) -> None:
        # Before the first write of a change: a reader that keys a saved lexical index by generation
        # must not file content that is still moving (or that a killed ingest left half-replaced)
        # under the generation that was finished before it.
        if not self._changing:
            self._set_generation(f"changing-{uuid.uuid4().hex}")
            self._changing = True

    def _set_generation(self, value: str) -> None:
        self.meta.upsert(ids=["generation"], embeddings=[[0.0]], metadatas=[{"value": value}])

    # --- reading -----------------------------------------------------------------------------------

    def count(self) -> int:
        """Number of stored passages (all versions): part of what a saved lexical index is checked against."""
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
        """Per source, the newest version stored and whether it is complete.

        Read from the per-source records when they describe the current generation, else scanned from
        every passage's metadata (an ingest then owes them as records: :meth:`owe_records`).
        """
        if self.states_recorded():
            states = {}
            offset = 0
            while True:
                page = self.meta.get(where={"kind": "source"}, include=["metadatas"], limit=_PAGE, offset=offset)
                for m in page["metadatas"]:
                    count = int(m["chunk_count"])
                    states[m["source"]] = SourceState(m["source"], m["source_hash"], m["title"], count, count)
                if not page["ids"]:
                    break
                offset += len(page["ids"])
            # A finished change leaves exactly the recorded passages; any other count means passages were
            # removed (or left) behind the store's back, and only the scan can say which sources are whole.
            if sum(s.chunk_count for s in states.values()) == self.count():
                return states
        return self._scanned_states()

    def owe_records(self, states: dict[str, SourceState]) -> None:
        """Record these states' complete versions at the next :meth:`bump_generation` (a writer's call).

        Other versions of those sources (what a killed ingest left half-written) are removed now, so
        the stored passages are exactly the recorded ones again.
        """
        self._owed = {k: s for k, s in states.items() if s.complete}
        for source, digest in self._other_versions:
            if source in self._owed:
                self._announce_change()
                leftover = {"$and": [{"source": source}, {"source_hash": digest}]}
                self.passages.delete(where=leftover)
                self.sentences.delete(where=leftover)

    def _scanned_states(self) -> dict[str, SourceState]:
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
        self._other_versions = [(src, digest) for src, digest in counts if states[src].hash != digest]
        return states

    def sentences_of(self, passages: dict[str, str]) -> dict[str, list[tuple[int, int, np.ndarray]]]:
        """The sentences of passages given as ``{chunk_id: source_hash}``: a primary-key lookup.

        Returns:
            ``{chunk_id: [(start, end, vector), ...]}`` in reading order, character spans in the source.

        """
        if not passages:
            return {}
        page = self.sentences.get(ids=[f"{pid}@{digest}" for pid, digest in passages.items()], include=["metadatas"])
        out: dict[str, list[tuple[int, int, np.ndarray]]] = {}
        for meta in page["metadatas"]:
            spans = json.loads(meta["spans"])
            vectors = unpack_vectors(meta["vectors"], len(spans))
            out[meta["chunk_id"]] = [(start, end, vector) for (start, end), vector in zip(spans, vectors, strict=True)]
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
        sentence_vectors: list[np.ndarray],
        *,
        previous: bool = True,
    ) -> None:
        """Store a new version of one source, then remove what is left of its previous version.

        ``passages`` items have ``id, text, start, end, n, spans`` (``spans``: the sentences' character
        spans) and optionally ``location`` (page or section, for people); ``sentence_vectors[i]`` holds
        passage ``i``'s sentence vectors. Companion records are keyed by passage id and content hash, so a
        new version never overwrites the one readers may still use, and they are written first: until the
        last passage is written the source counts as incomplete and readers ignore it. ``previous=False``
        (a source never indexed) skips the clean-up query, which costs tens of milliseconds per source on a
        large index.
        """
        self._announce_change()
        common = {"source": source, "source_hash": digest}
        for i in range(0, len(passages), _PAGE):
            batch = passages[i : i + _PAGE]
            self.sentences.upsert(
                ids=[f"{p['id']}@{digest}" for p in batch],
                embeddings=[[0.0]] * len(batch),
                metadatas=[
                    {**common, "chunk_id": p["id"], "spans": json.dumps(p["spans"]),
                     "vectors": pack_vectors(sentence_vectors[i + j])}
                    for j, p in enumerate(batch)
                ],
            )  # fmt: skip
        meta = {**common, "title": title, "chunk_count": len(passages), "extra": json.dumps(extra)}
        for i in range(0, len(passages), _PAGE):
            batch = passages[i : i + _PAGE]
            self.passages.upsert(
                ids=[p["id"] for p in batch],
                documents=[p["text"] for p in batch],
                embeddings=passage_vectors[i : i + len(batch)],
                metadatas=[
                    {**meta, "n": p["n"], "start": p["start"], "end": p["end"], "sentences": len(p["spans"]),
                     "location": p.get("location", "")}
                    for p in batch
                ],
            )  # fmt: skip
        if previous:
            stale = {"$and": [{"source": source}, {"source_hash": {"$ne": digest}}]}
            self.passages.delete(where=stale)
            self.sentences.delete(where=stale)
        self._owed[source] = SourceState(source, digest, title, len(passages), len(passages))

    def delete_source(self, source: str) -> None:
        """Remove every passage and sentence of one source."""
        self._announce_change()
        self.passages.delete(where={"source": source})
        self.sentences.delete(where={"source": source})
        self.meta.delete(ids=[_SOURCE_RECORD + source])
        self._owed.pop(source, None)
