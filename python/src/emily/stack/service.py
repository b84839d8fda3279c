"""The contract every local service implements, so ``Stack`` can start, stop and probe it."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from emily.stack.state import ServiceRecord


class ServiceStatus(BaseModel):
    name: str
    running: bool
    healthy: bool
    started: bool = True  # False: never started under this state directory
    pid: int | None = None
    url: str | None = None
    detail: str = ""


class LocalService(Protocol):
    """A real server process owned by the local stack."""

    name: str

    def start(self, previous: ServiceRecord | None) -> ServiceRecord:
        """Start (or adopt an already running instance) and wait until it is ready."""
        ...

    def stop(self, record: ServiceRecord) -> None:
        """Stop gracefully; must not fail if it is already stopped."""
        ...

    def probe(self, record: ServiceRecord) -> ServiceStatus:
        """Is it running, and does it answer?"""
        ...
