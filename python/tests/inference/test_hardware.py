"""Hardware rules from real nvidia-smi output samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emily.inference.hardware import (
    RULES_FILE,
    backend_support,
    cpu_flags,
    parse_cpu_flags,
    parse_cuda_version,
    parse_nvidia_smi_csv,
    probe_gpus,
    rules_json,
)

REPO = Path(__file__).resolve().parents[3]

P4 = "Tesla P4, 6.1, 535.183.01\n"
A100 = "NVIDIA A100-SXM4-80GB, 8.0, 550.54.15\nNVIDIA A100-SXM4-80GB, 8.0, 550.54.15\n"
T4 = "Tesla T4, 7.5, 570.86.10"
HEADER = "| NVIDIA-SMI 535.183.01   Driver Version: 535.183.01   CUDA Version: 12.2     |"


def verdicts(text: str) -> dict[str, tuple[bool, str]]:
    gpu = parse_nvidia_smi_csv(text)[0]
    return {v.backend: (v.ok, v.reason) for v in backend_support(gpu.compute_capability, gpu.name)}


def test_tesla_p4_refuses_sglang_with_reason() -> None:
    gpus = parse_nvidia_smi_csv(P4)
    assert gpus[0].name == "Tesla P4" and gpus[0].compute_capability == (6, 1)
    assert gpus[0].driver_version == "535.183.01"
    result = verdicts(P4)
    assert result["sglang"] == (
        False,
        "SGLang needs sm_75+; Tesla P4 is sm_61 → use llama.cpp with CUDA 12",
    )
    assert result["llama-cpp"][0] and "CUDA 12" in result["llama-cpp"][1]


def test_a100_runs_both() -> None:
    assert len(parse_nvidia_smi_csv(A100)) == 2
    result = verdicts(A100)
    assert result["sglang"][0] and "AWQ" in result["sglang"][1]
    assert result["llama-cpp"] == (True, "sm_80: CUDA 12 or 13")


def test_turing_runs_sglang_with_caveat_and_old_gpus_fall_back_to_cpu() -> None:
    result = verdicts(T4)
    assert result["sglang"][0] and "recommended" in result["sglang"][1]
    old = {v.backend: v for v in backend_support((3, 5), "Tesla K40")}
    assert not old["sglang"].ok and old["llama-cpp"].ok and "CPU" in old["llama-cpp"].reason


def test_no_gpu_means_cpu_llama_cpp() -> None:
    result = {v.backend: v for v in backend_support(None)}
    assert not result["sglang"].ok and "none found" in result["sglang"].reason
    assert result["llama-cpp"].ok and "CPU" in result["llama-cpp"].reason


def test_parsers_tolerate_noise() -> None:
    assert parse_cuda_version(HEADER) == "12.2"
    assert parse_cuda_version("no driver") is None
    gpus = parse_nvidia_smi_csv("\ngarbage\nWeird GPU, [N/A], \n")
    assert len(gpus) == 1 and gpus[0].compute_capability is None
    assert gpus[0].driver_version is None
    flags = parse_cpu_flags("processor: 0\nflags\t: fpu avx2 avx512f amx_tile\n")
    assert flags == {"avx2": True, "avx512": True, "amx": True}
    assert cpu_flags(Path("/nonexistent")) == {"avx2": False, "avx512": False, "amx": False}


def test_nix_rule_file_is_in_sync() -> None:
    on_disk = (REPO / RULES_FILE).read_text(encoding="utf-8")
    assert on_disk == rules_json(), "run `emily doctor --rules-json > nix/lib/gpu-rules.json`"
    assert json.loads(on_disk)["sglang"]["min_compute_capability"] == "7.5"


def test_probe_reads_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No GPU on the development machine: a stand-in prints recorded Tesla P4 output.
    script = tmp_path / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        'if [ -n "$1" ]; then printf "Tesla P4, 6.1, 535.183.01\\n"; '
        f"else printf '%s\\n' '{HEADER}'; fi\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    gpus, cuda, note = probe_gpus()
    assert [g.name for g in gpus] == ["Tesla P4"] and cuda == "12.2" and note is None
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert probe_gpus()[2] is not None and "not found" in str(probe_gpus()[2])
