"""Ingest target for the kill test: real Chroma on disk, a slowed fake embedder so kills land mid-write."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from assistant.config import Settings
from assistant.embeddings import SentenceEmbedder
from assistant.ingest import pipeline
from assistant.ingest.pipeline import ingest
from assistant.store import PassageStore, make_client
from tests.conftest import FakeSentenceModel


class SlowModel(FakeSentenceModel):
    def encode(self, texts, **kwargs):
        time.sleep(0.02 * len(texts))  # a slow embedder, so a run is killed long before it ends
        return super().encode(texts, **kwargs)


def main(sources: str, index: str) -> None:
    settings = Settings(sources_dir=Path(sources), index_dir=Path(index), _env_file=None)
    store = PassageStore(make_client(settings), settings.collection_name)
    pipeline.EMBED_BATCH_SENTENCES = 1  # write after every file, so kills also land between and inside writes
    print("started", flush=True)
    report = ingest(settings, store, SentenceEmbedder(SlowModel(), name="fake"), lock_wait_s=30)
    print(report.summary(), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
