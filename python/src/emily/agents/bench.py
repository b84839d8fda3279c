"""``emily agents bench``: loop latency with the local model, orchestration overhead without the
LLM call, and the cost of tracing, measured in one run by alternating a traced and an untraced
agent turn by turn (so both see the same machine load)."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from emily.agents.loop import Agent, TurnResult
from emily.agents.perception import Stimulus
from emily.config import Settings

SCRIPT = (
    "Good morning. The sun is warm on the window.",
    "A friend sends a message asking how I am.",
    "There is a loud crash and the smell of smoke from the kitchen!",
    "The alarm stops; it was burnt toast.",
    "A strange new device arrived in the post.",
    "Nobody has called all day; it feels lonely.",
    "My sister invites me to dinner on Friday.",
    "An unexpected error message appears on the screen.",
    "I am tired after a long day of work.",
    "Someone praised the idea I shared at the meeting.",
)

TARGETS = {"loop_p95_ms": 5000.0, "overhead_excl_llm_p95_ms": 50.0, "tracing_overhead_pct": 5.0}


def _stats(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    arr = np.asarray(values, dtype=np.float64)
    return {
        "n": len(values),
        "p50": round(float(np.percentile(arr, 50)), 3),
        "p95": round(float(np.percentile(arr, 95)), 3),
        "mean": round(float(arr.mean()), 3),
        "max": round(float(arr.max()), 3),
    }


def llm_share_ms(result: TurnResult) -> float:
    """Time on the critical path spent in the LLM call (the cognition node when it failed)."""
    if result.llm_ms is not None:
        return result.llm_ms
    return result.timings.get("cognition", 0.0) if result.degraded else 0.0


def traced_provider(exporter: SpanExporter | None = None) -> tuple[TracerProvider, SpanExporter]:
    exporter = exporter or InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "emily-agents-bench"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider, exporter


async def run_bench(
    settings: Settings,
    n: int,
    *,
    exporter: SpanExporter | None = None,
    warmup: int = 2,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """``n`` measured turns per arm (traced and untraced), after ``warmup`` turns each."""
    provider, used_exporter = traced_provider(exporter)
    on = await Agent.open(settings, tracer=provider.get_tracer("emily.agents"))
    off = await Agent.open(settings, tracer=trace.NoOpTracer(), embedder=on.deps.embedder)
    model = on.deps.llm_model
    stamp = time.strftime("%Y%m%d%H%M%S")
    results: dict[str, list[TurnResult]] = {"on": [], "off": []}
    try:
        for i in range(warmup + n):
            stimulus = Stimulus(text=SCRIPT[i % len(SCRIPT)], source="bench")
            # Alternate which arm goes first so neither always runs on a warmer cache.
            order = (("on", on), ("off", off)) if i % 2 == 0 else (("off", off), ("on", on))
            for arm, agent in order:
                result = await agent.step(f"bench-{stamp}-{arm}", stimulus)
                if i >= warmup:
                    results[arm].append(result)
            if progress is not None:
                progress(i + 1)
    finally:
        await on.close()
        await off.close()
        provider.force_flush()
        provider.shutdown()
    every = results["on"] + results["off"]
    loop = [r.latency_ms for r in every]
    llm = [llm_share_ms(r) for r in every if llm_share_ms(r) > 0]
    nodes = sorted({name for r in every for name in r.timings})
    overhead = [r.latency_ms - llm_share_ms(r) for r in every]
    on_loop = [r.latency_ms for r in results["on"]]
    off_loop = [r.latency_ms for r in results["off"]]
    on_over = [r.latency_ms - llm_share_ms(r) for r in results["on"]]
    off_over = [r.latency_ms - llm_share_ms(r) for r in results["off"]]
    tracing_pct = 100 * (statistics.median(on_loop) / statistics.median(off_loop) - 1)
    tracing_over_pct = 100 * (statistics.median(on_over) / statistics.median(off_over) - 1)
    report: dict[str, Any] = {
        "turns": len(every),
        "model": model,
        "durability": settings.agents.durability,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "cognition_used": sum(1 for r in every if r.appraisal is not None),
        "degraded": sum(1 for r in every if r.degraded),
        "degraded_reasons": sorted({r.degraded_reason or "" for r in every if r.degraded})[:5],
        "loop_ms": _stats(loop),
        "llm_ms": _stats(llm),
        "overhead_excl_llm_ms": _stats(overhead),
        "node_ms": {n: _stats([r.timings[n] for r in every if n in r.timings]) for n in nodes},
        "tracing": {
            "exporter": type(used_exporter).__name__,
            "on": {"loop_ms": _stats(on_loop), "overhead_excl_llm_ms": _stats(on_over)},
            "off": {"loop_ms": _stats(off_loop), "overhead_excl_llm_ms": _stats(off_over)},
            "overhead_pct": round(tracing_pct, 2),
            "overhead_excl_llm_pct": round(tracing_over_pct, 2),
        },
        "targets": TARGETS,
    }
    report["met"] = {
        "loop_p95": report["loop_ms"]["p95"] < TARGETS["loop_p95_ms"],
        "overhead_excl_llm_p95": report["overhead_excl_llm_ms"]["p95"]
        < TARGETS["overhead_excl_llm_p95_ms"],
        "tracing": tracing_pct < TARGETS["tracing_overhead_pct"],
    }
    return report
