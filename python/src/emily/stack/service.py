"""The contract every local service implements, so ``Stack`` can start, stop and probe it.

A base class rather than a ``Protocol``: stopping, probing and remembering a service are the
same for every server we run, so they are written once here; each service only says how to
start and how to tell that it answers.
"""

from __future__ import annotations

import json
import subprocess
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ValidationError

from emily.errors import StackError
from emily.stack.health import http_healthy
from emily.stack.process import (
    pid_alive,
    private_log,
    terminate,
    terminate_group,
    wait_until,
)
from emily.statefile import ServiceRecord, StateDir, write_private

if TYPE_CHECKING:
    from emily.config import Settings

RUNTIME_FILE = "service.json"


class ServiceStatus(BaseModel):
    name: str
    running: bool
    healthy: bool
    started: bool = True  # False: never started under this state directory
    pid: int | None = None
    url: str | None = None
    detail: str = ""


class LocalService(ABC):
    """A real server process owned by the local stack, living in ``<state_dir>/<name>/``."""

    name: ClassVar[str]

    def __init__(self, settings: Settings, state: StateDir) -> None:
        self.settings = settings
        self.state = state
        self.home = state.root / self.name  # created by ``Stack.up``, not by a probe
        self.warnings: list[str] = []

    @property
    def logfile(self) -> Path:
        """The server's own log (services name theirs)."""
        return self.home / f"{self.name}.log"

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's log, for the error when it does not start."""
        try:
            return "\n".join(self.logfile.read_text(encoding="utf-8").splitlines()[-lines:])
        except OSError:
            return ""

    def spawn_until_healthy(
        self,
        command: list[str],
        env: dict[str, str],
        url: str,
        timeout_s: float,
        *,
        what: str,
        hint: str,
    ) -> subprocess.Popen[bytes]:
        """Start ``command`` in a session of its own (0600 log, umask 077) and wait until
        ``<url>/health`` answers; ``StackError`` with the log's tail when it exits first, and
        the process group stopped when it never answers."""
        with private_log(self.logfile) as log:
            process = subprocess.Popen(
                command,
                cwd=self.home,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                umask=0o077,
            )
        ready = wait_until(lambda: process.poll() is not None or http_healthy(url), timeout_s, 0.5)
        if process.poll() is not None:
            raise StackError(
                f"{what} exited with code {process.returncode}:\n{self.log_tail()}",
                hint=f"full log: {self.logfile}" + (f"; {hint}" if hint else ""),
            )
        if not ready:
            terminate_group(process.pid)
            raise StackError(
                f"{what} did not answer on {url}/health within {timeout_s:.0f} s",
                hint=f"see {self.logfile}",
            )
        return process

    @abstractmethod
    def start(self, previous: ServiceRecord | None) -> ServiceRecord:
        """Start (or adopt an already running instance) and wait until it is ready."""

    @abstractmethod
    def answers(self, record: ServiceRecord) -> bool:
        """Does the server behind ``record`` answer its health check now?"""

    def pid_of(self, record: ServiceRecord) -> int | None:
        """The live process of ``record`` (services with their own pid files override)."""
        return record.pid if pid_alive(record.pid) else None

    def stop(self, record: ServiceRecord) -> None:
        """Stop gracefully; never fails when it is already stopped."""
        pid = self.pid_of(record)
        if pid is not None:
            terminate(pid)

    def probe(self, record: ServiceRecord) -> ServiceStatus:
        pid = self.pid_of(record)
        return ServiceStatus(
            name=self.name,
            running=pid is not None,
            healthy=pid is not None and self.answers(record),
            pid=pid,
            url=record.url,
            detail=str(self.home),
        )

    # -- remembering, so a lost stack.json can be rebuilt from what runs ------------------
    def remember(self, record: ServiceRecord) -> ServiceRecord:
        """Keep a copy of the record beside the service's data (mode 0600)."""
        write_private(self.home / RUNTIME_FILE, record.model_dump_json(indent=2))
        return record

    def recover(self) -> ServiceRecord | None:
        """The record this service left when it last started, if it still runs."""
        try:
            record = ServiceRecord.model_validate_json(
                (self.home / RUNTIME_FILE).read_text(encoding="utf-8")
            )
        except (OSError, ValidationError, json.JSONDecodeError):
            return None
        return record if self.pid_of(record) is not None else None

    def warn(self, message: str) -> None:
        self.warnings.append(f"{self.name}: {message}")
