"""structlog configuration: JSON lines in production (or when not on a terminal), a readable
console in a terminal; context bound with ``structlog.contextvars`` flows into every line, and an
active OpenTelemetry span adds ``trace_id``/``span_id`` so logs and traces join up.

structlog (which imports Rich's traceback machinery) and OpenTelemetry cost ~0.15 s to import:
loggers are bound on first use and structlog is configured then, so a command that never logs
(``emily status``, ``--help``) does not pay for them. The stdlib root handler is set at once.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import structlog

    from emily.config import Settings

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _add_trace_ids(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    from opentelemetry import trace  # cached after the first log line

    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict


def wants_json(settings: Settings, stream: Any = None) -> bool:
    """JSON unless asked for console, or auto-mode in development on a terminal."""
    if settings.log_format != "auto":
        return settings.log_format == "json"
    stream = stream if stream is not None else sys.stderr
    return settings.environment == "production" or not stream.isatty()


class _CurrentStderr:
    """Resolve ``sys.stderr`` at write time: test runners and Rich swap it after configuration."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


# The structlog configuration waiting for the first logger to be used (see the docstring).
_pending: tuple[Settings, Any] | None = None


def configure_logging(settings: Settings, stream: Any = None) -> None:
    """Configure the stdlib root logger now (library logs share the stream) and structlog now if
    it is loaded, else when the first of our loggers is used."""
    global _pending
    stream = stream if stream is not None else _CurrentStderr()
    level = _LEVELS[settings.log_level]
    handler = logging.StreamHandler(stream)
    # Library loggers (psycopg, httpx, uvicorn) keep the stdlib path; only warnings and up.
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(level, logging.WARNING))
    _pending = (settings, stream)
    if "structlog" in sys.modules:
        _apply_pending()


def _apply_pending() -> None:
    global _pending
    if _pending is None:
        return
    settings, stream = _pending
    _pending = None
    import structlog

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
    ]
    renderer: Any
    if wants_json(settings, stream):
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[settings.log_level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


class _LazyLogger:
    """Stands in for a structlog logger until first used (then imports and configures
    structlog, binds the logger and delegates to it)."""

    __slots__ = ("_context", "_logger")

    def __init__(self, context: dict[str, Any]) -> None:
        self._context = context
        self._logger: Any = None

    def __getattr__(self, attribute: str) -> Any:
        logger = self._logger
        if logger is None:
            import structlog

            _apply_pending()
            logger = self._logger = structlog.get_logger(**self._context)
        return getattr(logger, attribute)


def get_logger(name: str, **context: Any) -> structlog.stdlib.BoundLogger:
    """A logger with ``component=name`` and any extra context bound (on first use)."""
    return cast("structlog.stdlib.BoundLogger", _LazyLogger({"component": name, **context}))
