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


class CrossEncoder:
    """Scores (question, sentence) pairs with the shipped ONNX graph.

    Args:
        graph: The int8 ONNX file.
        tokenizer: The ``tokenizer.json`` of the model it was fine-tuned from.
        labelled: Whether it was trained to read each sentence after its heading or FAQ question
            (:meth:`assistant.answer.features.CandidateTable.reader_texts`).

    """

    def __init__(self, graph: Path, tokenizer: Path, *, labelled: bool = False) -> None:
        self.labelled = labelled
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
        self.tokenizer.no_padding()  # tokenizer.json pads to 128; each pair runs alone, unpadded
        self._lock = threading.Lock()  # the tokenizer's truncation state is shared

    def score(self, question: str, sentences: list[str]) -> np.ndarray:
        """One logit per sentence: higher means it answers ``question``.

        Each pair runs on its own. The int8 graph quantises activations over its whole input, so in a batch
        a pair's score moved with its batch-mates' and their padding (by up to 2.8 logits on the dev set's
        shortlists): a sentence scored differently depending on what else was shortlisted, and calibration
        saw other scores than answering does. Alone, a pair needs no padding and scores the same wherever it
        is read; for the three pairs an answer reads that costs no more (21.2 vs 20.3 ms batched).
        """
        if not sentences:
            return np.zeros(0, dtype=np.float32)
        with self._lock:
            encoded = self.tokenizer.encode_batch([(question, s) for s in sentences])
        logits = np.empty(len(encoded), dtype=np.float32)
        for i, pair in enumerate(encoded):
            feeds = {
                "input_ids": np.asarray([pair.ids], dtype=np.int64),
                "attention_mask": np.asarray([pair.attention_mask], dtype=np.int64),
                "token_type_ids": np.asarray([pair.type_ids], dtype=np.int64),
            }
            (out,) = self.session.run(None, feeds)
            logits[i] = out.reshape(-1)[0]
        return logits
