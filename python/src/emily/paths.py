"""Default filesystem locations."""

from __future__ import annotations

from pathlib import Path

import platformdirs


def default_state_dir() -> Path:
    """Per-user state directory (``~/.local/state/emily`` on Linux)."""
    return Path(platformdirs.user_state_path("emily"))


def default_cache_dir() -> Path:
    """Per-user cache directory (``~/.cache/emily``): built binaries, converted models."""
    return Path(platformdirs.user_cache_path("emily"))
