"""Facts about where a model came from, recorded as tags: the code (git commit), the data (the
md5 DVC records for every input), the machine, and the run that trained it."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

PROJECT = "emily-sovereign"
COMPONENT = "appraisal"
MODEL_TYPE = "kernel-ridge-rbf"
DATASET = "vader-lexicon"


def git_commit(directory: Path) -> str:
    """``<sha>`` or ``<sha>-dirty``; ``unknown`` outside a git checkout."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def hardware() -> str:
    return f"{platform.machine()} {os.cpu_count()} cpus, {platform.system()} {platform.release()}"


def structured_tags(directory: Path, md5s: dict[str, str]) -> dict[str, str]:
    """The tags every training run and model version carries."""
    tags = {
        "project": PROJECT,
        "component": COMPONENT,
        "model_type": MODEL_TYPE,
        "dataset": DATASET,
        "git_commit": git_commit(directory),
        "hardware": hardware(),
    }
    tags.update({f"dvc_md5.{name}": value for name, value in sorted(md5s.items())})
    return tags
