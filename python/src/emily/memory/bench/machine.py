"""The machine a run measured on, for the report (CPU model and memory from ``/proc``)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def _proc_field(path: Path, key: str) -> str | None:
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover - not Linux
        return None
    return None  # pragma: no cover - every Linux has both fields


def machine_info() -> dict[str, str]:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": str(os.cpu_count()),
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    for name, path, key in (
        ("cpu", Path("/proc/cpuinfo"), "model name"),
        ("memory", Path("/proc/meminfo"), "MemTotal"),
    ):
        value = _proc_field(path, key)
        if value is not None:
            info[name] = value
    return info
