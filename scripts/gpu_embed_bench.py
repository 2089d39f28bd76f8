"""Embedding throughput and vector agreement on a GPU, for ``ASSISTANT_EMBEDDING__DEVICE=cuda`` ingest.

Runs on a bare GPU machine: it needs only torch and sentence-transformers (no ``assistant`` import), so
it can run where the project is not installed. It embeds the given sentences with the model folder's
weights on the GPU, in float16 and float32, batched the way sentence-transformers batches (by length),
and compares each vector with reference vectors computed on the CPU by the assistant itself (the
shipped int8 ONNX path, and float32 PyTorch), so the figures say whether a GPU-built index can be served
by the CPU embedder or needs its own fingerprint.

    # on this machine: sentences and CPU reference vectors
    .venv/bin/python scripts/gpu_embed_bench.py prepare --corpus DIR --out JOB --count 30000 --reference 2000
    # on the GPU machine
    python3 scripts/gpu_embed_bench.py measure --model BASE --job JOB --out RESULT.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BATCHES = (64, 256, 1024)


def prepare(corpus: Path, out: Path, count: int, reference: int) -> None:
    """Sentences as ingest splits them (``assistant.text.sentences``) and the CPU's vectors for the first few."""
    sys.path.insert(0, str(ROOT))
    from assistant.config import Settings
    from assistant.embeddings import SentenceEmbedder, load_sentence_transformer
    from assistant.ingest.loaders import LOADERS, load_source
    from assistant.text import sentences

    texts: list[str] = []
    for path in sorted(p for p in corpus.rglob("*") if p.suffix.lower() in LOADERS):
        text = load_source(path, path.read_bytes()).text
        texts += [s.text for s in sentences(text) if s.text.strip()]
        if len(texts) >= count:
            break
    texts = texts[:count]
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(out / "sentences.txt.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(t.replace("\n", " ") for t in texts))
    settings = Settings(_env_file=None).embedding
    shipped = SentenceEmbedder.from_settings(settings, Settings(_env_file=None).paths.cache_dir / "onnx")
    head = [t.replace("\n", " ") for t in texts[:reference]]
    np.save(out / "reference_int8_onnx.npy", shipped.encode(head).astype(np.float16))
    plain = load_sentence_transformer(settings.model_copy(update={"quantize": "none"}))
    np.save(
        out / "reference_fp32_cpu.npy",
        plain.encode(head, batch_size=32, normalize_embeddings=True, convert_to_numpy=True).astype(np.float16),
    )
    print(f"{len(texts)} sentences, {reference} reference vectors in {out}")


def measure(model_dir: Path, job: Path, out: Path, device: str = "cuda") -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    with gzip.open(job / "sentences.txt.gz", "rt", encoding="utf-8") as f:
        texts = f.read().split("\n")
    references = {p.stem.removeprefix("reference_"): np.load(p).astype(np.float32) for p in job.glob("reference_*.npy")}
    head = texts[: min(len(r) for r in references.values())]
    cuda = device == "cuda"
    name = torch.cuda.get_device_name() if cuda else "cpu"
    result: dict = {"device": name, "torch": torch.__version__, "sentences": len(texts)}
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for dtype in ("float16", "float32"):
        model = SentenceTransformer(
            str(model_dir), device=device, local_files_only=True, model_kwargs={"dtype": getattr(torch, dtype)}
        )
        model.max_seq_length = 128
        model.encode(texts[:2048], batch_size=256)  # warm-up: kernels, allocator
        for batch in BATCHES:
            sync()
            started = time.perf_counter()
            model.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)
            sync()
            seconds = time.perf_counter() - started
            result[f"{dtype}/batch{batch}/sentences_per_s"] = round(len(texts) / seconds)
        vectors = model.encode(head, batch_size=256, normalize_embeddings=True, convert_to_numpy=True)
        for name, ref in references.items():
            ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
            cos = np.sum(vectors.astype(np.float32) * ref, axis=1) / np.linalg.norm(vectors, axis=1)
            result[f"{dtype}/cosine_vs_{name}"] = {
                "min": round(float(cos.min()), 5),
                "p01": round(float(np.quantile(cos, 0.01)), 5),
                "mean": round(statistics.fmean(cos.tolist()), 5),
            }
        del model
        if cuda:
            torch.cuda.empty_cache()
    out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps(result, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--count", type=int, default=30000)
    p.add_argument("--reference", type=int, default=2000)
    m = sub.add_parser("measure")
    m.add_argument("--model", type=Path, required=True)
    m.add_argument("--job", type=Path, required=True)
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--device", default="cuda", help="cuda, or cpu for a dry run")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.corpus, args.out, args.count, args.reference)
    else:
        measure(args.model, args.job, args.out, args.device)


if __name__ == "__main__":
    main()
