"""What the local stack remembers between commands: ``<state_dir>/stack.json``."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field


class ServiceRecord(BaseModel):
    """One started service: how to reach it and how to stop it."""

    name: str
    pid: int | None = None
    port: int | None = None
    url: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class StackState(BaseModel):
    services: dict[str, ServiceRecord] = Field(default_factory=dict)


class StateDir:
    """Layout and locking of a state directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def state_file(self) -> Path:
        return self.root / "stack.json"

    @property
    def secrets_dir(self) -> Path:
        return self.root / "secrets"

    def service_dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def read(self) -> StackState:
        if not self.state_file.exists():
            return StackState()
        return StackState.model_validate_json(self.state_file.read_text(encoding="utf-8"))

    def write(self, state: StackState) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state.model_dump(mode="json"), indent=2), encoding="utf-8")
        tmp.replace(self.state_file)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise concurrent ``emily up``/``down`` on one state directory."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def secret(self, name: str) -> str:
        """A generated secret, created once (mode 0600) and reused afterwards."""
        self.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.secrets_dir / name
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        value = secrets.token_urlsafe(24)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value)
        return value
