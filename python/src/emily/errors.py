"""Typed errors. Every failure a user can cause or meet is an ``EmilyError`` that says what went
wrong, where (field and row when there is one) and, when we know it, what to do about it."""

from __future__ import annotations


class EmilyError(Exception):
    """Base class of every error this package raises on purpose."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        row: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.field = field
        self.row = row
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        text = f"{', '.join(where)}: {self.message}" if where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class ConfigError(EmilyError):
    """Settings are missing, malformed or contradictory."""


class StackError(EmilyError):
    """A local server could not be started, reached or stopped."""


class BinaryNotFoundError(StackError):
    """A server binary we need is not installed."""


class PortInUseError(StackError):
    """The configured port is already bound by another process."""


class StackNotRunningError(StackError):
    """A command needs the local stack, and it is not up (and no external DSN is configured)."""


class StateFileError(StackError):
    """The local stack's state file is unreadable or corrupt."""
