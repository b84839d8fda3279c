"""Hardware truth: which inference backend can run on this machine, and why.

One rule table (``RULES``) drives ``emily doctor`` and is exported as JSON
(``nix/lib/gpu-rules.json``, ``emily doctor --rules-json``) so the Nix modules assert the same
facts:

* SGLang needs an NVIDIA GPU of compute capability sm_75+ (its flashinfer attention kernels),
  and sm_80+ is recommended: current wheels are built for CUDA 13, and the AWQ (Marlin) kernels
  need Ampere. The Tesla P4 is sm_61, so it cannot run SGLang.
* llama.cpp runs everywhere: with CUDA 12 on sm_50..sm_72 (CUDA 13 dropped Maxwell, Pascal and
  Volta), with CUDA 12 or 13 on sm_75+, and on the CPU otherwise.

The functions here are pure (text in, verdicts out); only ``probe_gpus`` and ``cpu_flags``
touch the machine.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ComputeCapability = tuple[int, int]

SGLANG_MIN: ComputeCapability = (7, 5)
SGLANG_RECOMMENDED: ComputeCapability = (8, 0)
CUDA12_MIN: ComputeCapability = (5, 0)
CUDA13_MIN: ComputeCapability = (7, 5)


def _dotted(capability: ComputeCapability) -> str:
    return f"{capability[0]}.{capability[1]}"


RULES: dict[str, Any] = {
    "version": 1,
    "sglang": {
        "min_compute_capability": _dotted(SGLANG_MIN),
        "recommended_compute_capability": _dotted(SGLANG_RECOMMENDED),
        "cuda": "13",
        "why": "flashinfer kernels need sm_75+; CUDA 13 wheels and AWQ Marlin kernels want sm_80+",
    },
    "llama-cpp": {
        "cuda12_min_compute_capability": _dotted(CUDA12_MIN),
        "cuda13_min_compute_capability": _dotted(CUDA13_MIN),
        "cpu": True,
        "why": "CUDA 13 dropped sm_50..sm_72 (Maxwell, Pascal, Volta): build those with CUDA 12",
    },
    "examples": {"Tesla P4": "6.1", "Tesla T4": "7.5", "A100": "8.0", "L4": "8.9", "H100": "9.0"},
}


RULES_FILE = "nix/lib/gpu-rules.json"


def rules_json() -> str:
    """The rule table as written to ``nix/lib/gpu-rules.json`` (a test keeps them in sync)."""
    return json.dumps(RULES, indent=2, ensure_ascii=False) + "\n"


class GpuInfo(BaseModel):
    name: str
    compute_capability: ComputeCapability | None
    driver_version: str | None = None


class BackendVerdict(BaseModel):
    backend: str
    ok: bool
    reason: str


def sm(capability: ComputeCapability) -> str:
    return f"sm_{capability[0]}{capability[1]}"


def parse_capability(text: str) -> ComputeCapability | None:
    match = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def parse_nvidia_smi_csv(text: str) -> list[GpuInfo]:
    """Lines of ``nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader``."""
    gpus = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [part.strip() for part in line.rsplit(",", 2)]
        if len(parts) != 3:
            continue
        name, capability, driver = parts
        gpus.append(
            GpuInfo(
                name=name,
                compute_capability=parse_capability(capability),
                driver_version=driver or None,
            )
        )
    return gpus


def parse_cuda_version(text: str) -> str | None:
    """The driver's CUDA version from plain ``nvidia-smi`` output (``CUDA Version: 12.2``)."""
    match = re.search(r"CUDA Version:\s*([0-9]+\.[0-9]+)", text)
    return match.group(1) if match else None


def backend_support(
    compute_capability: ComputeCapability | None, gpu_name: str = "this GPU"
) -> list[BackendVerdict]:
    """Which backends can serve on a GPU of this compute capability (None: no NVIDIA GPU)."""
    if compute_capability is None:
        return [
            BackendVerdict(
                backend="sglang",
                ok=False,
                reason=f"SGLang needs an NVIDIA GPU of {sm(SGLANG_MIN)}+; none found "
                "→ use llama.cpp on the CPU",
            ),
            BackendVerdict(backend="llama-cpp", ok=True, reason="no NVIDIA GPU: CPU build"),
        ]
    cc = compute_capability
    if cc < SGLANG_MIN:
        sglang = BackendVerdict(
            backend="sglang",
            ok=False,
            reason=f"SGLang needs {sm(SGLANG_MIN)}+; {gpu_name} is {sm(cc)} "
            f"→ use llama.cpp with CUDA 12",
        )
    elif cc < SGLANG_RECOMMENDED:
        sglang = BackendVerdict(
            backend="sglang",
            ok=True,
            reason=f"{sm(cc)} meets {sm(SGLANG_MIN)}, but {sm(SGLANG_RECOMMENDED)}+ is "
            "recommended (AWQ Marlin kernels need Ampere)",
        )
    else:
        sglang = BackendVerdict(
            backend="sglang", ok=True, reason=f"{sm(cc)} ≥ {sm(SGLANG_RECOMMENDED)}: AWQ OK"
        )
    if cc < CUDA12_MIN:
        llama = BackendVerdict(
            backend="llama-cpp",
            ok=True,
            reason=f"{sm(cc)} is older than CUDA 12 supports ({sm(CUDA12_MIN)}+): CPU build",
        )
    elif cc < CUDA13_MIN:
        llama = BackendVerdict(
            backend="llama-cpp",
            ok=True,
            reason=f"{sm(cc)}: build with CUDA 12 (CUDA 13 dropped {sm(CUDA12_MIN)}..sm_72)",
        )
    else:
        llama = BackendVerdict(backend="llama-cpp", ok=True, reason=f"{sm(cc)}: CUDA 12 or 13")
    return [sglang, llama]


def probe_gpus(timeout_s: float = 10.0) -> tuple[list[GpuInfo], str | None, str | None]:
    """(GPUs, CUDA version, why none) from ``nvidia-smi`` when it is installed."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return [], None, "nvidia-smi not found: no NVIDIA driver on this machine"
    try:
        query = subprocess.run(
            [
                binary,
                "--query-gpu=name,compute_cap,driver_version",
                "--format=csv,noheader",
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=True,
        )
        plain = subprocess.run(
            [binary], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return [], None, f"nvidia-smi failed: {exc}"
    return parse_nvidia_smi_csv(query.stdout), parse_cuda_version(plain.stdout), None


def parse_cpu_flags(cpuinfo: str) -> dict[str, bool]:
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags |= set(line.split(":", 1)[1].split())
            break
    return {
        "avx2": "avx2" in flags,
        "avx512": "avx512f" in flags,
        "amx": any(flag.startswith("amx") for flag in flags),
    }


def cpu_flags(cpuinfo_path: Path = Path("/proc/cpuinfo")) -> dict[str, bool]:
    try:
        return parse_cpu_flags(cpuinfo_path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return {"avx2": False, "avx512": False, "amx": False}
