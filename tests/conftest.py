"""Shared fixtures: a deterministic fake embedder for unit tests, the real stack for integration tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from assistant.config import Settings
from assistant.embeddings import SentenceEmbedder

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
ARTICLE = ROOT / "sources" / "xiaomi-overseas-ev-expansion.md"


class FakeSentenceModel:
    """Stands in for a SentenceTransformer: hash-seeded vectors, same text -> same vector."""

    def __init__(self, size: int = 32) -> None:
        self.fake = DeterministicFakeEmbedding(size=size)
        self.size = size
        self.calls = 0

    def get_embedding_dimension(self) -> int:
        return self.size

    def encode(self, texts, **_: object) -> np.ndarray:
        self.calls += len(texts)
        vectors = np.asarray(self.fake.embed_documents(list(texts)), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def fake_embedder() -> SentenceEmbedder:
    return SentenceEmbedder(FakeSentenceModel(), name="fake")


@pytest.fixture
def workspace(tmp_path: Path) -> Settings:
    """Settings over a temporary sources folder holding the article, and a temporary index."""
    sources = tmp_path / "sources"
    sources.mkdir()
    shutil.copy(ARTICLE, sources / ARTICLE.name)
    return Settings(sources_dir=sources, index_dir=tmp_path / "index", _env_file=None)


@pytest.fixture
def count_calls(monkeypatch):
    """``count_calls(owner, "method")`` wraps a method for the test and returns ``{"n": calls so far}``."""

    def wrap(owner: type, name: str) -> dict[str, int]:
        count = {"n": 0}
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            count["n"] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)
        return count

    return wrap
