"""Fine-tune a cross-encoder from the bundled all-MiniLM-L6-v2 weights and ship it as int8 ONNX.

Input: question-sentence pairs with 0/1 labels (JSONL: ``{"question", "sentence", "label"}``), written by
``scripts/train_answerer.py`` from the *training* split only. The model reads "question [SEP] sentence"
and gives one logit: does this sentence answer this question? Runs on CPU (about 25 pairs/s on 2 cores)
or on a GPU when one is present.

    .venv/bin/python scripts/train_reranker.py PAIRS.jsonl --out assistant/models/reranker.onnx
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.embeddings import BUNDLED_PREFIX, model_path  # noqa: E402

SEED = 0
MAX_TOKENS = 128


def train(pairs: list[dict], out: Path, *, epochs: float = 1.0, batch_size: int = 16, lr: float = 4e-5) -> dict:
    """Fine-tune, export to ONNX, quantise to int8; return what the model card needs."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    started = time.perf_counter()
    source = model_path(f"{BUNDLED_PREFIX}all-MiniLM-L6-v2")
    tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    model = BertForSequenceClassification.from_pretrained(
        str(source), num_labels=1, local_files_only=True, attn_implementation="eager"
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).train()
    lengths = [len(e) for e in tokenizer([p["question"] for p in pairs], [p["sentence"] for p in pairs],
                                         truncation=True, max_length=MAX_TOKENS)["input_ids"]]  # fmt: skip
    batches = [b for _ in range(math.ceil(epochs)) for b in length_batches(lengths, batch_size)]
    steps = int(len(pairs) * epochs) // batch_size
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, 1 - s / max(1, steps))
    )
    positives = sum(p["label"] for p in pairs)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(pairs) - positives) / max(positives, 1)))
    for step in range(steps):
        batch = [pairs[i] for i in batches[step]]
        enc = tokenizer([b["question"] for b in batch], [b["sentence"] for b in batch], truncation=True,
                        max_length=MAX_TOKENS, padding=True, return_tensors="pt").to(device)  # fmt: skip
        logits = model(**enc).logits.squeeze(-1)
        loss = loss_fn(logits, torch.tensor([float(b["label"]) for b in batch], device=device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        optimiser.zero_grad()
        if step % 100 == 0:
            print(f"step {step}/{steps} loss {loss.item():.4f} {time.perf_counter() - started:.0f}s", file=sys.stderr)
    model.to("cpu").eval()
    export(model, out)
    return {"pairs": len(pairs), "positives": positives, "epochs": epochs, "batch_size": batch_size, "lr": lr,
            "seconds": round(time.perf_counter() - started, 1), "device": device}  # fmt: skip


def length_batches(lengths: list[int], batch_size: int, pool: int = 50) -> list[list[int]]:
    """One epoch of batches in random order, each of pairs of similar length.

    Pairs are shuffled, cut into pools of ``pool`` batches, and sorted by length inside a pool, so a
    batch pads to little more than its own pairs (about twice the pairs per second on CPU than
    padding random pairs to the longest) while every epoch still mixes the data.
    """
    order = list(range(len(lengths)))
    random.shuffle(order)
    size = batch_size * pool
    batches = []
    for start in range(0, len(order), size):
        chunk = sorted(order[start : start + size], key=lengths.__getitem__)
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    random.shuffle(batches)
    return batches


def export(model: torch.nn.Module, out: Path) -> None:
    """Trace to ONNX (dynamic batch and length); int8 weights: MatMuls per channel, then the embedding table."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class Logit(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits

    sample = torch.ones(2, 8, dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        plain = Path(tmp) / "plain.onnx"
        torch.onnx.export(
            Logit(model), (sample, sample, sample), str(plain),
            input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logit"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "logit": {0: "batch"}},
            opset_version=17, dynamo=False,
        )  # fmt: skip
        matmuls = Path(tmp) / "int8-matmul.onnx"
        quantize_dynamic(str(plain), str(matmuls), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])  # fmt: skip
        # The word-embedding table (a Gather) is half the model: int8 too, or the file is 59 MB, not 23.
        quantized = Path(tmp) / "int8.onnx"
        quantize_dynamic(str(matmuls), str(quantized), weight_type=QuantType.QInt8, op_types_to_quantize=["Gather"])
        os.replace(quantized, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "assistant" / "models" / "reranker.onnx")
    parser.add_argument("--epochs", type=float, default=1.0)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    pairs = [json.loads(line) for line in args.pairs.read_text(encoding="utf-8").splitlines() if line.strip()]
    print(json.dumps(train(pairs, args.out, epochs=args.epochs)))


if __name__ == "__main__":
    main()
