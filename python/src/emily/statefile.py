"""What the local stack remembers between commands: ``<state_dir>/stack.json``, and the secrets
it generated (``<state_dir>/secrets/``).

Both reveal credentials (the state file holds DSNs with passwords), so the state directory is
private: mode 0700, every file written here 0600, and nothing adds search permission for other
users to it or its parents. This module sits in the bottom layer, beside the settings: the
service locator (``emily.locator``) reads it, the stack (``emily.stack``) writes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from emily.errors import StateFileError

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
STATE_FILE = "stack.json"


class ServiceRecord(BaseModel):
    """One started service: how to reach it and how to stop it."""

    name: str
    pid: int | None = None
    port: int | None = None
    url: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class StackState(BaseModel):
    services: dict[str, ServiceRecord] = Field(default_factory=dict)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed, private to its owner; returns it.

    Other users lose every permission and the group loses read/write; a group search bit is
    kept, because with a POSIX ACL it is the mask that lets the PostgreSQL service user (and
    only it) pass through (see ``emily.stack.process.grant_traverse``)."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o067:
        path.chmod(mode & ~0o067)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically to a 0600 file (never world-readable, not even briefly)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    tmp.replace(path)


class StateDir:
    """Layout, locking and secrets of a state directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def state_file(self) -> Path:
        return self.root / STATE_FILE

    @property
    def secrets_dir(self) -> Path:
        return self.root / "secrets"

    def ensure(self) -> Path:
        """The state directory, created private (an older 0755 one is tightened)."""
        return private_dir(self.root)

    def service_dir(self, name: str) -> Path:
        self.ensure()
        return private_dir(self.root / name)

    def read(self) -> StackState:
        """The recorded stack; empty when nothing was started. A corrupt file is a
        ``StateFileError`` saying how to repair it, never a traceback."""
        try:
            text = self.state_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return StackState()
        except OSError as exc:
            raise StateFileError(
                f"cannot read {self.state_file}: {exc.strerror}",
                hint="check its owner and mode (0600, owned by the user running emily)",
            ) from exc
        try:
            return StackState.model_validate_json(text)
        except ValidationError as exc:
            first = exc.errors()[0]
            reason = first["msg"] if text.strip() else "the file is empty"
            raise StateFileError(
                f"{self.state_file} is corrupt ({reason})",
                hint="`emily up` rebuilds it from the running services",
            ) from exc

    def read_or_recover(self) -> tuple[StackState, bool]:
        """The recorded stack, or an empty one when the file is corrupt (the corrupt copy is
        kept beside it as ``stack.json.corrupt``); the flag says whether it was corrupt."""
        try:
            return self.read(), False
        except StateFileError:
            if not self.state_file.exists():
                raise
            self.state_file.replace(self.state_file.with_name(f"{STATE_FILE}.corrupt"))
            return StackState(), True

    def write(self, state: StackState) -> None:
        self.ensure()
        write_private(self.state_file, json.dumps(state.model_dump(mode="json"), indent=2))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise concurrent ``emily up``/``down`` on one state directory."""
        self.ensure()
        fd = os.open(self.root / ".lock", os.O_WRONLY | os.O_CREAT, PRIVATE_FILE)
        with os.fdopen(fd, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def secret(self, name: str) -> str:
        """A generated secret, created once (mode 0600 in a 0700 directory) and reused."""
        self.ensure()
        private_dir(self.secrets_dir)
        path = self.secrets_dir / name
        with contextlib.suppress(FileNotFoundError):
            return path.read_text(encoding="utf-8").strip()
        value = secrets.token_urlsafe(24)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        except FileExistsError:  # another process created it a moment ago
            return path.read_text(encoding="utf-8").strip()
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value)
        return value

    def secret_path(self, name: str) -> Path:
        """The file holding secret ``name`` (created if needed), for ``*_FILE`` consumers."""
        self.secret(name)
        return self.secrets_dir / name
