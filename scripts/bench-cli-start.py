#!/usr/bin/env python3
"""Wall time of CLI commands from process start to exit (what a user waits for).

Usage (from python/, the stack up for `status` and `memory search`):
    uv run python ../scripts/bench-cli-start.py --runs 10 --json ../docs/bench/cli-start.json

Each command runs ``--runs`` times after one warm-up run (bytecode compiled, page cache warm);
the JSON holds every sample and p50/p95 per command, plus the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {
    "--help": ["--help"],
    "status": ["status"],
    "memory search": ["memory", "search", "a quiet walk by the sea", "--k", "3"],
}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--emily", default=shutil.which("emily") or "emily")
    args = parser.parse_args()
    results = []
    for name, argv in COMMANDS.items():
        command = [args.emily, *argv]
        subprocess.run(command, capture_output=True, check=False)  # warm-up
        samples, codes = [], set()
        for _ in range(args.runs):
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, check=False)
            samples.append(time.perf_counter() - started)
            codes.add(done.returncode)
        results.append(
            {
                "command": f"emily {' '.join(argv)}",
                "runs": args.runs,
                "exit_codes": sorted(codes),
                "p50_s": round(statistics.median(samples), 3),
                "p95_s": round(_percentile(samples, 0.95), 3),
                "samples_s": [round(s, 3) for s in samples],
            }
        )
        print(f"{name:<14} p50 {results[-1]['p50_s']:.3f} s  p95 {results[-1]['p95_s']:.3f} s")
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "load_avg_1m": os.getloadavg()[0],
        },
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
