"""The ONNX Runtime backend: exported locally from the bundled weights, cached, and faithful to PyTorch."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from assistant.config import EmbeddingSettings
from assistant.embeddings import SentenceEmbedder
from assistant.text import sentences as split_sentences
from tests.conftest import ARTICLE


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    return [span.text for span in split_sentences(ARTICLE.read_text(encoding="utf-8"))][:120]


@pytest.fixture(scope="module")
def torch_vectors(sentences) -> np.ndarray:
    embedder = SentenceEmbedder.from_settings(EmbeddingSettings(backend="torch", quantize="none"))
    return embedder.encode(sentences)


def test_onnx_float32_matches_pytorch(tmp_path, sentences, torch_vectors):
    embedder = SentenceEmbedder.from_settings(EmbeddingSettings(backend="onnx", quantize="none"), tmp_path)
    cosine = (embedder.encode(sentences) * torch_vectors).sum(axis=1)
    assert cosine.min() > 0.9999


def test_onnx_int8_stays_close_and_the_export_is_cached(tmp_path, sentences, torch_vectors, monkeypatch):
    settings = EmbeddingSettings(backend="onnx", quantize="int8")
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # as in a plain process (pytest installs its own)
    vectors = SentenceEmbedder.from_settings(settings, tmp_path).encode(sentences)
    assert logging.getLogger().handlers == [], "the export must not leave a root log handler behind"
    cosine = (vectors * torch_vectors).sum(axis=1)
    assert cosine.mean() > 0.985 and cosine.min() > 0.95, (cosine.mean(), cosine.min())
    (graph,) = tmp_path.glob("*.onnx")
    stamp = graph.stat().st_mtime_ns
    reloaded = SentenceEmbedder.from_settings(settings, tmp_path)
    assert graph.stat().st_mtime_ns == stamp and list(tmp_path.iterdir()) == [graph], "exported once, no leftovers"
    assert np.array_equal(reloaded.encode(sentences), vectors), "same texts, same batches: same vectors"
    # Activations are quantised per batch, so a text's vector moves a little with its batch-mates.
    alone = reloaded.encode(sentences[:5])
    assert (alone * vectors[:5]).sum(axis=1).min() > 0.95
