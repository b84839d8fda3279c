#!/usr/bin/env python3
"""The appraisal model's speed: ``predict`` throughput and one appraisal inside the loop.

Usage (from python/, with a stack whose MLflow holds a champion, e.g. after `emily mlops train`):
    uv run python ../scripts/bench-appraisal.py --state-dir S --json ../docs/bench/appraisal.json

* ``predict``: texts/s of the registered champion over the held-out texts, embedding included
  (what ``emily mlops predict`` does after loading), in batches of ``--batch``;
* ``loop``: the latency of ``ChampionAppraiser`` for one stimulus with its embedding given (what
  ``perceive`` pays per turn, the model cached in process), ``--calls`` calls after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()

    from emily.agents.champion import ChampionAppraiser
    from emily.config import load_settings
    from emily.memory.embedding.factory import create_embedder
    from emily.mlops import lifecycle

    settings = load_settings(state_dir=args.state_dir)
    texts = lifecycle.held_out(settings)[0]
    model, info = lifecycle.load_model(settings, f"{settings.mlops.model_name}@champion")
    model.appraise(texts[:8])  # warm-up: the embedder loads here

    started = time.perf_counter()
    for start in range(0, len(texts), args.batch):
        model.appraise(texts[start : start + args.batch])
    predict_s = time.perf_counter() - started

    embedder = create_embedder(settings)
    appraiser = ChampionAppraiser(settings, None)
    if not appraiser.refresh():
        raise SystemExit(f"no champion: {appraiser.error}")
    stimuli = texts[: args.calls]
    vectors = np.asarray(embedder.embed(stimuli), dtype=np.float32)
    for text, vector in zip(stimuli[:20], vectors[:20], strict=True):
        appraiser(text, list(vector))
    samples: list[float] = []
    for text, vector in zip(stimuli, vectors, strict=True):
        embedding = list(vector)
        t0 = time.perf_counter()
        appraiser(text, embedding)
        samples.append((time.perf_counter() - t0) * 1000)

    report: dict[str, Any] = {
        "model": f"{settings.mlops.model_name}/{info.version}",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
        },
        "predict": {
            "texts": len(texts),
            "batch": args.batch,
            "seconds": round(predict_s, 3),
            "texts_per_s": round(len(texts) / predict_s, 1),
        },
        "loop_appraisal_ms": {
            "n": len(samples),
            "p50": round(statistics.median(samples), 4),
            "p95": round(percentile(samples, 95), 4),
            "p99": round(percentile(samples, 99), 4),
            "max": round(max(samples), 4),
        },
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
