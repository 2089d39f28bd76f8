"""Ingest's faster embedding gives the vectors the earlier code gave: same ids, same batches, same int8 vectors.

With int8 a sentence's vector depends on its batch-mates (activations are quantised per batch), and the answer
models are trained on features of these vectors, so the reference below is the earlier implementation itself:
the tokenizer cutting and padding each batch, texts sorted by their token counts, one session on two threads.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from assistant.config import EmbeddingSettings, Settings
from assistant.embedding_onnx import OnnxSentenceEncoder, _pool, onnx_model_file
from assistant.embeddings import SentenceEmbedder, model_path
from assistant.ingest.chunking import chunk_document
from assistant.ingest.loaders import load_source
from tests.conftest import ARTICLE, DATA

pytestmark = pytest.mark.integration

BATCH = 32


class EarlierEncoder:
    """The embedding code before ingest tokenised once and ran batches in parallel, kept as the reference."""

    def __init__(self, graph, tokenizer_file, max_seq_length: int) -> None:
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        padding = self.tokenizer.padding or {}
        self.tokenizer.enable_padding(pad_id=padding.get("pad_id", 0), pad_token=padding.get("pad_token", "[PAD]"))
        self.tokenizer.enable_truncation(max_length=max_seq_length)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, min(os.cpu_count() or 1, 8))
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

    def batch_inputs(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        encoded = self.tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encoded], dtype=np.int64)
        return ids, np.asarray([e.attention_mask for e in encoded], dtype=np.int64)

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        ids, mask = self.batch_inputs(texts)
        (hidden,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
        pooled = _pool(hidden.astype(np.float32, copy=False), mask, "mean")
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def batches(self, texts: list[str]) -> list[list[int]]:
        encoded = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        order = np.argsort([sum(e.attention_mask) for e in encoded], kind="stable")
        return [list(order[i : i + BATCH]) for i in range(0, len(texts), BATCH)]

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), 384), dtype=np.float32)
        for rows in self.batches(texts):
            out[rows] = self.encode_batch([texts[i] for i in rows])
        return out


class Recorder:
    """A session that records what it is fed."""

    def __init__(self, session, feeds: list) -> None:
        self.session, self.feeds = session, feeds

    def run(self, outputs, feed):
        self.feeds.append(feed)
        return self.session.run(outputs, feed)


def texts() -> list[str]:
    """Sentences of the article and the runbook corpus (prose, commands), texts around the 128-token cut, an
    empty one, repeats and non-Latin script."""
    settings = Settings(_env_file=None)
    sentences = []
    for path in [ARTICLE, *sorted((DATA / "corpora" / "it-runbook").glob("*.md"))]:
        document = load_source(path, path.read_bytes())
        sentences += [s.text for c in chunk_document(path.name, document, settings.chunking) for s in c.sentences]
    around_the_cut = [" ".join(["alpha"] * n) for n in (1, 60, 125, 126, 127, 128, 129, 300)]
    odd = ["", "Übergrößenträger — naïve café", "小米汽车的海外扩张", "x" * 900, sentences[0], sentences[0]]
    return sentences + around_the_cut + odd


@pytest.fixture(scope="module")
def encoders():
    settings = EmbeddingSettings()  # the defaults ingest uses: int8, 128 tokens
    folder = model_path(settings.model)
    graph = onnx_model_file(folder, Settings(_env_file=None).paths.cache_dir / "onnx", settings.quantize)
    new = OnnxSentenceEncoder.from_folder(
        folder, graph.parent, quantize=settings.quantize, max_seq_length=settings.max_seq_length
    )
    return new, EarlierEncoder(graph, folder / "tokenizer.json", settings.max_seq_length)


def test_enough_texts_for_several_batches():
    assert len(texts()) > 3 * BATCH


def test_ids_are_cut_and_padded_as_the_tokenizer_did(encoders, monkeypatch):
    new, earlier = encoders
    sample = texts()
    ids = new._tokenize(sample)
    assert [new._length(one) for one in ids] == [sum(e.attention_mask) for e in
        earlier.tokenizer.encode_batch(sample, add_special_tokens=False)]  # fmt: skip
    for rows in earlier.batches(sample):
        expected_ids, expected_mask = earlier.batch_inputs([sample[i] for i in rows])
        feeds = []
        with monkeypatch.context() as patch:
            patch.setattr(new, "session", Recorder(new.session, feeds))  # the one-batch session
            new._embed([ids[i] for i in rows])
        (feed,) = feeds
        assert np.array_equal(feed["input_ids"], expected_ids)
        assert np.array_equal(feed["attention_mask"], expected_mask)


def test_ingest_vectors_equal_the_earlier_ones(encoders):
    new, earlier = encoders
    sample = texts()
    embedder = SentenceEmbedder(new, batch_size=BATCH)
    assert new.workers >= 1
    vectors, expected = embedder.encode(sample), earlier.encode(sample)
    cosine = (vectors * expected).sum(axis=1)
    assert cosine.min() > 1 - 1e-5, f"lowest cosine {cosine.min()}"
    one_batch = sample[:BATCH]  # a call of one batch keeps its order, as before
    cosine = (embedder.encode(one_batch) * earlier.encode_batch(one_batch)).sum(axis=1)
    assert cosine.min() > 1 - 1e-5


def test_parallel_batches_equal_serial_ones(encoders):
    new, _ = encoders
    sample = texts()
    workers = new.workers
    try:
        new.workers = 1
        serial = new.encode_by_length(sample, BATCH)
        new.workers = 3
        parallel = new.encode_by_length(sample, BATCH)
    finally:
        new.workers = workers
    assert np.array_equal(serial, parallel)
