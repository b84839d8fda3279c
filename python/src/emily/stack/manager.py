"""``emily up`` / ``down`` / ``status``: start, stop and inspect the local stack."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from emily.errors import ConfigError
from emily.locator import is_external
from emily.stack.registry import SERVICES
from emily.stack.service import LocalService, ServiceStatus
from emily.statefile import ServiceRecord, StackState, StateDir
from emily.telemetry.logs import get_logger

if TYPE_CHECKING:
    from emily.config import Settings

log = get_logger("stack")


class Stack:
    """The local servers under one state directory. Idempotent: ``up`` twice is one stack."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state_dir = StateDir(settings.state_dir)
        self.warnings: list[str] = []

    def _services(self, names: Iterable[str] | None) -> list[LocalService]:
        wanted = list(SERVICES) if names is None else list(names)
        unknown = [name for name in wanted if name not in SERVICES]
        if unknown:
            raise ConfigError(
                f"unknown service(s) {', '.join(unknown)}; known: {', '.join(SERVICES)}",
                field="service",
            )
        ordered = [name for name in SERVICES if name in wanted]
        return [SERVICES[name](self.settings, self.state_dir) for name in ordered]

    def external(self, name: str) -> bool:
        """Configured to run elsewhere: ``up`` leaves it alone."""
        return is_external(self.settings, name)

    def up(self, names: Iterable[str] | None = None) -> StackState:
        """Start the named services (default: all not configured elsewhere). A corrupt state
        file is rebuilt from the services' own records of what runs."""
        with self.state_dir.locked():
            state, corrupt = self.state_dir.read_or_recover()
            if corrupt:
                self._warn(
                    f"{self.state_dir.state_file} was corrupt (kept as stack.json.corrupt); "
                    "rebuilt from the running services"
                )
            for service in self._services(names):
                if names is None and self.external(service.name):
                    continue
                self.state_dir.service_dir(service.name)
                previous = state.services.get(service.name) or service.recover()
                log.info("starting", service=service.name, state_dir=str(self.settings.state_dir))
                try:
                    record = service.start(previous)
                finally:
                    for warning in service.warnings:
                        self._warn(warning)
                state.services[service.name] = record
                self.state_dir.write(state)
                log.info("ready", service=service.name, url=record.url, pid=record.pid)
            return state

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning("stack_warning", message=message)

    def down(self, names: Iterable[str] | None = None) -> StackState:
        with self.state_dir.locked():
            state, _ = self.state_dir.read_or_recover()
            for service in reversed(self._services(names)):
                record = state.services.get(service.name) or service.recover()
                if record is None:
                    continue
                log.info("stopping", service=service.name)
                service.stop(record)
                record.pid = None
                state.services[service.name] = record
                service.remember(record)
                self.state_dir.write(state)
            return state

    def status(self) -> list[ServiceStatus]:
        state = self.state_dir.read()
        result = []
        for service in self._services(None):
            record = state.services.get(service.name)
            if record is None:
                detail = "external (configured)" if self.external(service.name) else "not started"
                result.append(
                    ServiceStatus(
                        name=service.name,
                        running=False,
                        healthy=False,
                        started=False,
                        detail=detail,
                    )
                )
            else:
                result.append(service.probe(record))
        return result

    def record(self, name: str) -> ServiceRecord | None:
        return self.state_dir.read().services.get(name)
