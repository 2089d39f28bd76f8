"""The cross-encoder: reads a question and a candidate sentence together and scores the pair.

Fine-tuned from the bundled all-MiniLM-L6-v2 weights by ``scripts/train_reranker.py`` and shipped as an
int8 ONNX graph, so answering needs only ``tokenizers`` and ONNX Runtime. It scores the few candidates
the feature model ranks highest (see :data:`assistant.answer.features.CROSS_CANDIDATES`); its logit is one
more feature of the sentence and answerability models.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from assistant.errors import AssistantError

MAX_TOKENS = 128
#: Pairs per ONNX run (see :meth:`CrossEncoder.score`).
BATCH = 4
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class CrossEncoder:
    """Scores (question, sentence) pairs with the shipped ONNX graph.

    Args:
        graph: The int8 ONNX file.
        tokenizer: The ``tokenizer.json`` of the model it was fine-tuned from.

    """

    def __init__(self, graph: Path, tokenizer: Path) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer

            self.tokenizer = Tokenizer.from_file(str(tokenizer))
            options = ort.SessionOptions()
            options.intra_op_num_threads = max(1, min(os.cpu_count() or 1, 4))
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # a missing or corrupt file must name itself, not fail deep inside ORT
            raise AssistantError(f"cannot load the answer reranker {graph.name}: {exc}") from None
        self.tokenizer.enable_truncation(MAX_TOKENS, strategy="longest_first")
        self.tokenizer.no_padding()  # tokenizer.json pads to 128; each batch is padded to its own longest below
        self._lock = threading.Lock()  # the tokenizer's truncation state is shared

    def score(self, question: str, sentences: list[str]) -> np.ndarray:
        """One logit per sentence: higher means it answers ``question``.

        Pairs are run :data:`BATCH` at a time, shortest first, each batch padded only to its own longest
        pair: padding every pair to the longest of all cost about a third more time for the same scores.
        """
        if not sentences:
            return np.zeros(0, dtype=np.float32)
        with self._lock:
            encoded = self.tokenizer.encode_batch([(question, s) for s in sentences])
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].ids))
        logits = np.zeros(len(encoded), dtype=np.float32)
        for start in range(0, len(order), BATCH):
            part = order[start : start + BATCH]
            width = max(len(encoded[i].ids) for i in part)
            feeds = {name: np.zeros((len(part), width), dtype=np.int64) for name in _INPUTS}
            for row, i in enumerate(part):
                n = len(encoded[i].ids)
                feeds["input_ids"][row, :n] = encoded[i].ids
                feeds["attention_mask"][row, :n] = 1
                feeds["token_type_ids"][row, :n] = encoded[i].type_ids
            (out,) = self.session.run(None, feeds)
            logits[part] = out.reshape(-1)
        return logits
