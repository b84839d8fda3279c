"""``emily up`` / ``down`` / ``status``: start, stop and inspect the local stack."""

from __future__ import annotations

from collections.abc import Iterable

from emily.config import Settings
from emily.errors import ConfigError
from emily.stack.registry import SERVICES
from emily.stack.service import LocalService, ServiceStatus
from emily.stack.state import ServiceRecord, StackState, StateDir
from emily.telemetry.logs import get_logger

log = get_logger("stack")


class Stack:
    """The local servers under one state directory. Idempotent: ``up`` twice is one stack."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state_dir = StateDir(settings.state_dir)

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

    def up(self, names: Iterable[str] | None = None) -> StackState:
        with self.state_dir.locked():
            state = self.state_dir.read()
            for service in self._services(names):
                log.info("starting", service=service.name, state_dir=str(self.settings.state_dir))
                record = service.start(state.services.get(service.name))
                state.services[service.name] = record
                self.state_dir.write(state)
                log.info("ready", service=service.name, url=record.url, pid=record.pid)
            return state

    def down(self, names: Iterable[str] | None = None) -> StackState:
        with self.state_dir.locked():
            state = self.state_dir.read()
            for service in reversed(self._services(names)):
                record = state.services.get(service.name)
                if record is None:
                    continue
                log.info("stopping", service=service.name)
                service.stop(record)
                record.pid = None
                self.state_dir.write(state)
            return state

    def status(self) -> list[ServiceStatus]:
        state = self.state_dir.read()
        result = []
        for service in self._services(None):
            record = state.services.get(service.name)
            if record is None:
                result.append(
                    ServiceStatus(
                        name=service.name,
                        running=False,
                        healthy=False,
                        started=False,
                        detail="not started",
                    )
                )
            else:
                result.append(service.probe(record))
        return result

    def record(self, name: str) -> ServiceRecord | None:
        return self.state_dir.read().services.get(name)
