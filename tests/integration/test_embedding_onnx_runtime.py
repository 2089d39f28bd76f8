"""The query-time embedder: tokenizers + ONNX Runtime + numpy pooling, the same vectors as sentence-transformers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assistant.config import EmbeddingSettings
from assistant.embedding_onnx import onnx_model_file
from assistant.embeddings import SentenceEmbedder, load_sentence_transformer, model_path
from assistant.text import sentences as split_sentences
from tests.conftest import ARTICLE, ROOT

HEAVY = ("sentence_transformers", "torch", "transformers", "sklearn")  # scipy.sparse comes with bm25s


@pytest.fixture(scope="module")
def texts() -> list[str]:
    article = [span.text for span in split_sentences(ARTICLE.read_text(encoding="utf-8"))]
    return [
        *article[:30],
        "  leading and trailing spaces  ",
        "Ünïcödé, emoji 🚗 and 中文字符 in one line.",
        "x",
        "How many cars did Xiaomi deliver?",
        " ".join(article[:12]),  # longer than max_seq_length: cut at the same token
        "API_KEY_ROTATION_INTERVAL=30d; see runbook §4.2 (ops/secrets.md).",
    ]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    """``<paths.cache_dir>/onnx``, as the facade names it, under a cache folder of this module's own."""
    return tmp_path_factory.mktemp("cache") / "onnx"


def sentence_transformers_onnx(settings: EmbeddingSettings, cache_dir: Path) -> SentenceEmbedder:
    """The path this replaces: a SentenceTransformer whose transformer runs the same graph in ONNX Runtime."""
    import onnxruntime as ort
    import torch

    model = load_sentence_transformer(EmbeddingSettings(**{**settings.model_dump(), "quantize": "none"}))
    session = ort.InferenceSession(
        str(onnx_model_file(model_path(settings.model), cache_dir, settings.quantize)),
        providers=["CPUExecutionProvider"],
    )

    class OnnxTransformer(torch.nn.Module):
        def __init__(self, config) -> None:
            super().__init__()
            self.config = config

        def forward(self, input_ids, attention_mask, **_):
            feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
            return {"last_hidden_state": torch.from_numpy(session.run(None, feeds)[0])}

    model[0].model = OnnxTransformer(model[0].model.config)
    return SentenceEmbedder(model, batch_size=settings.batch_size)


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_vectors_match_the_sentence_transformers_path(texts, cache_dir, quantize):
    settings = EmbeddingSettings(backend="onnx", quantize=quantize)
    new = SentenceEmbedder.from_settings(settings, cache_dir)
    assert type(new.model).__name__ == "OnnxSentenceEncoder"
    reference = sentence_transformers_onnx(settings, cache_dir)
    many = texts * 2  # more than one batch, so the token-length ordering and batching are compared too
    new_vectors, old_vectors = new.encode(many), reference.encode(many)
    assert new_vectors.shape == old_vectors.shape == (len(many), 384)
    cosine = (new_vectors * old_vectors).sum(axis=1)
    assert cosine.min() > 0.999, (cosine.min(), many[int(cosine.argmin())])
    assert np.allclose(np.linalg.norm(new_vectors, axis=1), 1.0, atol=1e-5)
    one_by_one = np.stack([new.encode([t])[0] for t in texts[:5]])
    assert (one_by_one * np.stack([reference.encode([t])[0] for t in texts[:5]])).sum(axis=1).min() > 0.999


def test_the_index_name_does_not_depend_on_how_vectors_are_computed():
    # Same vectors (above), so an index built before this encoder stays valid: the fingerprint rules name the
    # model, backend, quantisation and token limit, never the code path that runs them.
    from assistant.config import Settings

    basis = Settings(_env_file=None)
    assert basis.collection_name == Settings(_env_file=None, embedding={"batch_size": 8}).collection_name
    assert basis.collection_name != Settings(_env_file=None, embedding={"max_seq_length": 256}).collection_name


def test_answering_imports_no_torch_once_the_graph_is_cached(tmp_path, cache_dir):
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / ARTICLE.name).write_bytes(ARTICLE.read_bytes())
    env = {
        **os.environ, "HF_HUB_OFFLINE": "1", "ASSISTANT_SOURCES_DIR": str(sources),
        "ASSISTANT_INDEX_DIR": str(tmp_path / "index"), "ASSISTANT_PATHS__CACHE_DIR": str(cache_dir.parent),
    }  # fmt: skip
    onnx_model_file(model_path("bundled:all-MiniLM-L6-v2"), cache_dir, "int8")  # cached before the process starts
    script = (
        "import json, sys\n"
        "from assistant.facade import Assistant\n"
        "answer = Assistant.load().ask('When will Xiaomi sell cars in Europe?')\n"
        f"print(json.dumps({{'loaded': sorted(m for m in {HEAVY!r} if m in sys.modules), 'answer': answer.answer}}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["answer"], "an answer (or a refusal) came back"
    assert result["loaded"] == [], f"the query path imported {result['loaded']}"
