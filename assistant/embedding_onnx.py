"""Embed with a sentence-transformers model folder in ONNX Runtime: ``tokenizers``, one graph, numpy pooling.

Only the transformer's forward pass is a graph; tokenising (the folder's ``tokenizer.json``), padding each
batch to its longest text, pooling over the attention mask (as the folder's ``1_Pooling`` config says) and
L2 normalisation are done here, so answering a question imports neither PyTorch nor sentence-transformers
(importing them took 8-11 s of a cold ``assistant ask`` on the 2-core machine).

The graph is exported from the folder's weights on first use (no download; this is the only step that
needs PyTorch and transformers) and cached in ``paths.cache_dir``. ``int8`` quantises the weights of the
matrix multiplications per output channel, which measured 3.6x faster than PyTorch on the 2-core CPU with a
mean cosine of 0.993 to the float32 vectors (per-tensor int8 was 0.957, too lossy for answer selection).
Activations are quantised per batch, so a text's vector moves slightly with its batch-mates (cosine
> 0.95 between batchings); ``quantize=none`` gives exact, batch-independent float32 vectors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import ConfigError

#: Bumped when the export recipe changes, so an old cached graph is not reused.
EXPORT_VERSION = "1"
#: The sentence-transformers modules this encoder reproduces; a folder with others needs backend=torch.
_SUPPORTED_MODULES = {"Transformer", "Pooling", "Normalize"}
_POOLING_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max"}


def onnx_model_file(model_dir: Path, cache_dir: Path, quantize: str) -> Path:
    """The cached ONNX graph for a model folder, exporting (and quantising) it first if needed.

    The file is written under a temporary name and renamed into place, so a killed export leaves no
    half-written graph behind and two processes exporting at once both end with a whole file.
    """
    weights = sorted(p for p in model_dir.iterdir() if p.suffix in {".safetensors", ".bin"})
    basis = [EXPORT_VERSION, str(model_dir.resolve())] + [f"{p.name}:{p.stat().st_size}" for p in weights]
    stamp = hashlib.sha256("|".join(basis).encode()).hexdigest()[:12]
    target = cache_dir / f"{model_dir.name}-{stamp}-{quantize}.onnx"
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".export-") as tmp, _quiet_root_logger():
        plain = Path(tmp) / "model.onnx"
        _export(model_dir, plain)
        if quantize == "int8":
            quantized = Path(tmp) / "model-int8.onnx"
            _quantize(plain, quantized)
            plain = quantized
        os.replace(plain, target)
    return target


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Silence the exporter's and quantiser's root-logger chatter, and undo their ``basicConfig``.

    The quantiser installs a root handler; left in place, every library's DEBUG records (bm25s logs
    at DEBUG) would reach stderr for the rest of the process.
    """
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers


def _export(model_dir: Path, out: Path) -> None:
    try:
        import onnx  # noqa: F401  (the exporter needs it; fail with a clear message rather than deep inside)
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        message = f"the ONNX backend needs the 'onnx' package ({exc}); or use embedding.backend=torch"
        raise ConfigError(message) from None

    # Eager attention traces to plain ops; the fused kernels do not export with dynamic shapes.
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager", local_files_only=True).eval()

    class LastHidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            token_types = torch.zeros_like(input_ids)
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_types)[0]

    sample = torch.ones(2, 8, dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    dynamic = {"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter about the TorchScript exporter
        torch.onnx.export(
            LastHidden(model), (sample, sample), str(out), input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"], dynamic_axes=dynamic,
            opset_version=17, dynamo=False,
        )  # fmt: skip


def _quantize(source: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source), str(out), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"]
    )


class OnnxSentenceEncoder:
    """A sentence-transformers model (transformer, pooling, normalisation) run by ONNX Runtime and numpy.

    It gives the vectors sentence-transformers gives with the same graph: each call's texts are one padded
    batch, as sentence-transformers pads them, which matters with ``int8`` (activations are quantised per
    batch). A test compares the two.

    Texts are tokenised once, uncut and unpadded; each batch is cut to ``max_seq_length`` and padded to its
    longest text here, giving the ids the tokenizer's own truncation and padding give (a test compares them).
    On the CPU, :meth:`encode_by_length` (ingest) runs ``threads`` batches at once, one thread each, on a
    second session made on first use: a batch of short sentences is too small to split across threads without
    the threads waiting on each other (one thread per batch used 10-25 % less CPU for the same, bit-identical,
    vectors). A single question is one small batch, which the first session splits across ``threads``
    (8.6 ms instead of 13-19 ms on one thread, on the loaded 2-core VM).

    Args:
        graph: The exported ONNX graph (inputs ``input_ids``, ``attention_mask``; output ``last_hidden_state``).
        tokenizer_file: The model folder's ``tokenizer.json``.
        max_seq_length: Tokens per text, special tokens included; longer texts are cut.
        pooling: ``"mean"`` over the attention mask, ``"cls"`` or ``"max"``.
        threads: ONNX Runtime's threads for one batch, and batches run at once by :meth:`encode_by_length` on the CPU.
        device: ``"cpu"`` or ``"cuda"`` (ONNX Runtime's CUDA provider; see :func:`execution_providers`).

    """

    def __init__(
        self, graph: Path, tokenizer_file: Path, *, max_seq_length: int, pooling: str, threads: int,
        device: str = "cpu",
    ) -> None:  # fmt: skip
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._pad_id = (self.tokenizer.padding or {}).get("pad_id", 0)
        self.tokenizer.no_padding()  # the file may pin padding to a fixed width; batches are padded here
        self.tokenizer.no_truncation()  # cut here, so the uncut length still orders texts for batching
        # Special tokens the post-processor puts before and after a text: [CLS] and [SEP] for BERT models.
        marks = self.tokenizer.encode("a").special_tokens_mask
        self._front = marks.index(0) if 0 in marks else len(marks)
        self._back = len(marks) - self._front - marks.count(0)
        self._specials = self._front + self._back
        self.max_seq_length = max_seq_length
        self.pooling = pooling
        self.device = device
        self.graph = graph
        self.session = self._session(threads)
        self.workers = threads if device == "cpu" else 1
        self._bulk_session: Any = None
        self._bulk_lock = threading.Lock()
        self._dimension: int | None = None

    def _session(self, threads: int) -> Any:  # an onnxruntime.InferenceSession (imported lazily)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Busy-waiting worker threads steal the cores the tokenizer and pooling need between batches.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = execution_providers(self.device)
        session = ort.InferenceSession(str(self.graph), options, providers=providers)
        if session.get_providers()[0] != providers[0]:
            raise ConfigError(
                f"ONNX Runtime could not start its {providers[0]} (its warning above says why: usually a missing "
                "CUDA or cuDNN library); set ASSISTANT_EMBEDDING__DEVICE=cpu to embed on the CPU"
            )
        return session

    @classmethod
    def from_folder(
        cls, model_dir: Path, cache_dir: Path, *, quantize: str, max_seq_length: int, device: str = "cpu"
    ) -> OnnxSentenceEncoder:
        """The encoder for a sentence-transformers model folder, exporting its graph first if none is cached.

        Raises:
            ConfigError: The folder has no ``tokenizer.json`` or uses modules this encoder does not reproduce,
                or ``device`` is ``"cuda"`` and ONNX Runtime has no working CUDA provider.

        """
        tokenizer_file = model_dir / "tokenizer.json"
        if not tokenizer_file.exists():
            raise ConfigError(f"{model_dir} has no tokenizer.json; use embedding.backend=torch for this model")
        pooling = _pooling_mode(model_dir)
        execution_providers(device)  # a missing provider fails before the export, not after
        graph = onnx_model_file(model_dir, cache_dir, quantize)
        threads = max(1, min(os.cpu_count() or 1, 8))
        return cls(
            graph, tokenizer_file, max_seq_length=max_seq_length, pooling=pooling, threads=threads, device=device
        )

    def get_embedding_dimension(self) -> int:
        """Length of the vectors."""
        if self._dimension is None:
            self._dimension = int(self.encode([""]).shape[1])
        return self._dimension

    def token_counts(self, texts: list[str]) -> list[int]:
        """Word pieces per text (without special tokens, cut at ``max_seq_length``), for batching by length."""
        return [self._length(ids) for ids in self._tokenize(texts)]

    def encode(self, texts: list[str], batch_size: int = 32, **_: object) -> np.ndarray:
        """Unit vectors ``(len(texts), dim)``, float32, embedding ``batch_size`` texts at a time in the given order."""
        ids = self._tokenize(texts)
        parts = [self._embed(ids[i : i + batch_size]) for i in range(0, len(ids), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.get_embedding_dimension()), dtype=np.float32)

    def encode_by_length(self, texts: list[str], batch_size: int) -> np.ndarray:
        """Unit vectors in the order of ``texts``, embedded in batches of texts of similar token counts.

        The batches are those ``SentenceEmbedder`` has always made (a stable sort by :meth:`token_counts`,
        then ``batch_size`` at a time), so with ``int8`` every text gets the vector it got before.
        """
        ids = self._tokenize(texts)
        order = np.argsort([self._length(one) for one in ids], kind="stable")
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        out = np.empty((len(texts), self.get_embedding_dimension()), dtype=np.float32)

        if self.workers > 1 and len(batches) > 1:
            with self._bulk_lock:
                if self._bulk_session is None:
                    self._bulk_session = self._session(1)
            session = self._bulk_session

            def run(rows: np.ndarray) -> None:
                out[rows] = self._embed([ids[i] for i in rows], session)

            with ThreadPoolExecutor(self.workers, thread_name_prefix="embed") as pool:
                list(pool.map(run, batches))  # list(): re-raise a batch's error here
        else:
            for rows in batches:
                out[rows] = self._embed([ids[i] for i in rows])
        return out

    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self.tokenizer.encode_batch(texts)]

    def _length(self, ids: list[int]) -> int:
        return min(len(ids) - self._specials, self.max_seq_length)

    def _embed(self, batch: list[list[int]], session: Any = None) -> np.ndarray:
        """Cut each text's ids as the tokenizer's truncation would (keeping the closing special tokens), pad, run."""
        limit, back = self.max_seq_length, self._back
        cut = [ids if len(ids) <= limit else ids[: limit - back] + ids[len(ids) - back :] for ids in batch]
        width = max(len(ids) for ids in cut)
        input_ids = np.full((len(cut), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(cut), width), dtype=np.int64)
        for row, ids in enumerate(cut):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        (hidden,) = (session or self.session).run(None, {"input_ids": input_ids, "attention_mask": mask})
        pooled = _pool(hidden.astype(np.float32, copy=False), mask, self.pooling)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def execution_providers(device: str) -> list[str]:
    """ONNX Runtime's providers for a device, best first.

    Raises:
        ConfigError: ``device`` is ``"cuda"`` and the installed ONNX Runtime has no CUDA provider.

    """
    if device == "cpu":
        return ["CPUExecutionProvider"]
    import onnxruntime as ort

    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise ConfigError(
            "embedding.device=cuda needs ONNX Runtime's CUDA provider, and the installed onnxruntime has only "
            f"{', '.join(available)}: install the gpu extra (pip uninstall onnxruntime; pip install -e '.[gpu]', "
            "which brings onnxruntime-gpu; it needs an NVIDIA driver with CUDA 12 and cuDNN 9), "
            "or set ASSISTANT_EMBEDDING__DEVICE=cpu"
        )
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


def _pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Token vectors ``(batch, tokens, dim)`` to one vector per text, as sentence-transformers' Pooling does."""
    if mode == "cls":
        return hidden[:, 0]
    weights = mask[:, :, None].astype(np.float32)
    if mode == "max":
        return np.where(weights > 0, hidden, -1e9).max(axis=1)
    return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


def _pooling_mode(model_dir: Path) -> str:
    """The pooling a sentence-transformers folder declares (mean when it declares none, as sentence-transformers)."""
    modules_file = model_dir / "modules.json"
    modules = json.loads(modules_file.read_text(encoding="utf-8")) if modules_file.exists() else []
    kinds = {m["type"].rsplit(".", 1)[-1]: m for m in modules}
    unsupported = set(kinds) - _SUPPORTED_MODULES
    if unsupported:
        raise ConfigError(
            f"the onnx backend does not reproduce {', '.join(sorted(unsupported))} modules; "
            "use embedding.backend=torch for this model"
        )
    if "Pooling" not in kinds:
        return "mean"
    config = json.loads((model_dir / kinds["Pooling"]["path"] / "config.json").read_text(encoding="utf-8"))
    modes = [mode for key, mode in _POOLING_MODES.items() if config.get(key)]
    others = [k for k, v in config.items() if k.startswith("pooling_mode") and v and k not in _POOLING_MODES]
    if len(modes) != 1 or others:
        raise ConfigError(f"the onnx backend supports one of mean, cls or max pooling, not {config}")
    return modes[0]
